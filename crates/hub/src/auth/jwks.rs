//! Token keys published by an identity provider at a JWKS URL: fetched at start,
//! refreshed every `token_jwks_refresh`, and fetched again at once (at most every
//! [`MIN_REFETCH`]) when a token names a key id the cache does not have, which is how a
//! key rotation is picked up without waiting for the next refresh. A failed fetch keeps
//! the keys already cached: tokens keep verifying while the provider is down.

use crate::backend::HttpClient;
use http::Uri;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The shortest time between two fetches caused by unknown key ids: a stream of tokens
/// with made-up key ids cannot turn the hub into a load generator against the provider.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);

/// The cached keys of one JWKS URL.
pub struct Jwks {
    url: Uri,
    client: HttpClient,
    keys: RwLock<HashMap<String, (Algorithm, DecodingKey)>>,
    /// When the last fetch for an unknown key id started; held while fetching, so
    /// fetches never overlap.
    last_on_demand: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    /// An empty cache for `url`; each fetch takes at most `timeout`.
    pub fn new(url: Uri, timeout: Duration) -> Self {
        Jwks {
            url,
            client: HttpClient::new(timeout),
            keys: RwLock::new(HashMap::new()),
            last_on_demand: tokio::sync::Mutex::new(None),
        }
    }

    /// The key with id `kid` and the algorithm it is for.
    pub fn key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kid)
            .cloned()
    }

    /// Fetches the set and replaces the cache with it; the number of usable keys.
    pub async fn fetch(&self) -> Result<usize, String> {
        let _fetching = self.last_on_demand.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<usize, String> {
        let body = self
            .client
            .get(&self.url)
            .await
            .map_err(|e| format!("fetching {}: {e}", self.url))?;
        let keys = parse(&body)?;
        let count = keys.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        tracing::info!(url = %self.url, keys = count, "JWKS fetched");
        Ok(count)
    }

    /// Makes sure the key `token` names is cached if the provider has it: fetches
    /// when the key id is unknown, unless another unknown key id did so less than
    /// [`MIN_REFETCH`] ago.
    pub async fn prepare(&self, token: &str) {
        let Some(kid) = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid) else {
            return;
        };
        if self.key(&kid).is_some() {
            return;
        }
        let mut last = self.last_on_demand.lock().await;
        // Another session may have fetched while this one waited for the lock.
        if self.key(&kid).is_some() || last.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.fetch_locked().await {
            tracing::warn!(error = %e, "JWKS refetch for an unknown key id failed; the cached keys stay");
        }
    }
}

/// The RS256 and ES256 (P-256) keys with a key id in a JWKS document; other keys are
/// skipped, a document that is not a JWKS is an error.
pub fn parse(body: &[u8]) -> Result<HashMap<String, (Algorithm, DecodingKey)>, String> {
    let set: JwkSet =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not a JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            _ => continue,
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid, (algorithm, key));
            }
            Err(e) => tracing::warn!(%kid, error = %e, "JWKS key skipped"),
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_and_p256_keys_with_ids_are_kept() {
        let rsa = include_str!("../../tests/keys/rsa-1.jwks.json");
        let ec = include_str!("../../tests/keys/ec-1.jwks.json");
        assert_eq!(parse(rsa.as_bytes()).unwrap()["rsa-1"].0, Algorithm::RS256);
        assert_eq!(parse(ec.as_bytes()).unwrap()["ec-1"].0, Algorithm::ES256);
        let without_id =
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
        assert!(parse(without_id.as_bytes()).unwrap().is_empty());
        for garbage in ["", "{}", "[]", r#"{"keys":5}"#] {
            assert!(parse(garbage.as_bytes()).is_err(), "{garbage}");
        }
    }
}
