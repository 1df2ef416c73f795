//! Connection and subscription tokens: JWTs signed with `token_hmac_secret` (HS256), the
//! configured RSA or P-256 public key (RS256, ES256), or a key from a JWKS URL (chosen
//! by the token's `kid`; see [`jwks`]).
//!
//! Claims: `sub` (the user id; empty is allowed), `exp` (Unix seconds, optional), `info`
//! (any JSON, shown to other clients in presence and publications) and `channels`
//! (server-side subscriptions made on connect). Time is an argument so that expiry is
//! tested without waiting.

use crate::protocol::reply::Json;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

pub mod jwks;

/// The claims the hub reads.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
pub struct Claims {
    /// The user id.
    #[serde(default)]
    pub sub: String,
    /// Expiry, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Connection info shown to other clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Box<RawValue>>,
    /// Channels the hub subscribes the connection to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// The channel a subscription token is for (absent in connection tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Not valid before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Audience: a string or a list of strings (checked when `token_audience` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    /// Issuer (checked when `token_issuer` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// What a token must say beyond its signature.
#[derive(Clone, Debug, Default)]
pub struct TokenChecks {
    /// `aud` must be (or contain) this.
    pub audience: Option<String>,
    /// `iss` must be this.
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway: u64,
}

/// Who a verified token says the client is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user id.
    pub user: String,
    /// When the connection's credentials end, Unix seconds.
    pub expires_at: Option<u64>,
    /// The `info` claim.
    pub info: Option<Json>,
    /// Server-side subscriptions.
    pub channels: Vec<String>,
}

/// What a verified subscription token grants.
#[derive(Debug, Clone)]
pub struct ChannelGrant {
    /// When the subscription's credentials end, Unix seconds.
    pub expires_at: Option<u64>,
    /// The `info` claim: channel info shown with this client in the channel.
    pub info: Option<Json>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token has expired; the client should get a new one.
    #[error("token expired {ago} s ago")]
    Expired {
        /// Seconds since `exp`.
        ago: u64,
    },
    /// The token is malformed, forged or signed with another algorithm.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A valid subscription token, for another channel or user.
    #[error("token is not for this: {0}")]
    NotForThis(String),
}

/// The keys tokens may be signed with, one per algorithm: a token's `alg` picks its
/// key, and an algorithm without a key is refused (so an HS256 token "signed" with the
/// RSA public key as its secret meets the HMAC secret, not the RSA key).
#[derive(Clone, Default)]
pub struct TokenKeys {
    /// HS256: the shared secret.
    pub hmac: Option<DecodingKey>,
    /// RS256: the RSA public key.
    pub rsa: Option<DecodingKey>,
    /// ES256: the P-256 public key.
    pub ecdsa: Option<DecodingKey>,
}

impl TokenKeys {
    /// An HS256 secret only.
    pub fn hmac(secret: &str) -> Self {
        TokenKeys {
            hmac: Some(DecodingKey::from_secret(secret.as_bytes())),
            ..Default::default()
        }
    }

    /// Whether any key is set.
    pub fn is_empty(&self) -> bool {
        self.hmac.is_none() && self.rsa.is_none() && self.ecdsa.is_none()
    }
}

/// Reads a PEM public key given inline (`-----BEGIN ...`) or as a file path.
pub fn load_public_key(value: &str, algorithm: Algorithm) -> Result<DecodingKey, String> {
    let pem = if value.trim_start().starts_with("-----BEGIN") {
        value.to_owned()
    } else {
        std::fs::read_to_string(value).map_err(|e| format!("cannot read {value}: {e}"))?
    };
    let key = match algorithm {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()),
        Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes()),
        other => return Err(format!("no public key for {other:?}")),
    };
    key.map_err(|e| format!("not a PEM {algorithm:?} public key: {e}"))
}

/// Verifies tokens.
#[derive(Clone)]
pub struct Verifier {
    keys: TokenKeys,
    checks: TokenChecks,
    /// Keys from a JWKS URL, for tokens with a `kid`.
    jwks: Option<Arc<jwks::Jwks>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.keys.hmac.is_some())
            .field("rs256", &self.keys.rsa.is_some())
            .field("es256", &self.keys.ecdsa.is_some())
            .field("jwks", &self.jwks.is_some())
            .finish()
    }
}

impl Verifier {
    /// A verifier for tokens signed with `secret` (HS256).
    pub fn new(secret: &str) -> Self {
        Self::with_checks(secret, TokenChecks::default())
    }

    /// A verifier for tokens signed with `secret` that also checks `checks`.
    pub fn with_checks(secret: &str, checks: TokenChecks) -> Self {
        Self::with_keys(TokenKeys::hmac(secret), checks)
    }

    /// A verifier for tokens signed with any of `keys`.
    pub fn with_keys(keys: TokenKeys, checks: TokenChecks) -> Self {
        Verifier {
            keys,
            checks,
            jwks: None,
        }
    }

    /// Also accepts tokens whose `kid` names a key of `jwks`.
    pub fn with_jwks(mut self, jwks: Arc<jwks::Jwks>) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// Checks the signature with the key of the token's algorithm.
    fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        // A token naming a key id is checked with that JWKS key, for the algorithm the
        // key is for (a token cannot pick another).
        if let (Some(jwks), Some(kid)) = (&self.jwks, header.kid.as_deref()) {
            let (algorithm, key) = jwks
                .key(kid)
                .ok_or_else(|| TokenError::Invalid(format!("unknown key id {kid:?}")))?;
            if algorithm != header.alg {
                return Err(TokenError::Invalid(format!(
                    "key {kid:?} is for {algorithm:?}, the token says {:?}",
                    header.alg
                )));
            }
            return Self::decode_with(token, &key, algorithm);
        }
        let key = match header.alg {
            Algorithm::HS256 => self.keys.hmac.as_ref(),
            Algorithm::RS256 => self.keys.rsa.as_ref(),
            Algorithm::ES256 => self.keys.ecdsa.as_ref(),
            _ => None,
        }
        .ok_or_else(|| {
            TokenError::Invalid(format!(
                "tokens signed with {:?} are not accepted",
                header.alg
            ))
        })?;
        Self::decode_with(token, key, header.alg)
    }

    fn decode_with(
        token: &str,
        key: &DecodingKey,
        algorithm: Algorithm,
    ) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(algorithm);
        // Time, audience and issuer are checked in `check_claims`, against the caller's
        // clock; `exp` is optional.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Checks `token`'s signature and expiry at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<Identity, TokenError> {
        let claims = self.decode(token)?;
        if claims.channel.is_some() {
            return Err(TokenError::NotForThis(
                "a subscription token is not a connection token".into(),
            ));
        }
        self.check_claims(&claims, now)?;
        Ok(Identity {
            user: claims.sub,
            expires_at: claims.exp,
            info: claims.info.map(Arc::from),
            channels: claims.channels,
        })
    }

    /// `exp`, `nbf`, `aud` and `iss` against the configured checks.
    fn check_claims(&self, claims: &Claims, now: u64) -> Result<(), TokenError> {
        let leeway = self.checks.leeway;
        if let Some(exp) = claims.exp {
            if exp.saturating_add(leeway) <= now {
                return Err(TokenError::Expired { ago: now - exp });
            }
        }
        if let Some(nbf) = claims.nbf {
            if nbf > now.saturating_add(leeway) {
                return Err(TokenError::Invalid(format!(
                    "not valid before {nbf} (now {now})"
                )));
            }
        }
        if let Some(audience) = &self.checks.audience {
            let matches = match &claims.aud {
                Some(serde_json::Value::String(a)) => a == audience,
                Some(serde_json::Value::Array(list)) => {
                    list.iter().any(|a| a.as_str() == Some(audience))
                }
                _ => false,
            };
            if !matches {
                return Err(TokenError::Invalid(format!("audience is not {audience:?}")));
            }
        }
        if let Some(issuer) = &self.checks.issuer {
            if claims.iss.as_deref() != Some(issuer.as_str()) {
                return Err(TokenError::Invalid(format!("issuer is not {issuer:?}")));
            }
        }
        Ok(())
    }
}

impl Verifier {
    /// Checks a subscription token for `channel` held by `user` at `now`: a token
    /// without a `channel` claim (a connection token) or for another channel or user is
    /// refused.
    pub fn verify_channel(
        &self,
        token: &str,
        channel: &str,
        user: &str,
        now: u64,
    ) -> Result<ChannelGrant, TokenError> {
        let claims = self.decode(token)?;
        match claims.channel.as_deref() {
            Some(c) if c == channel => {}
            Some(other) => {
                return Err(TokenError::NotForThis(format!(
                    "channel {other:?}, not {channel:?}"
                )))
            }
            None => return Err(TokenError::NotForThis("no channel claim".into())),
        }
        if claims.sub != user {
            return Err(TokenError::NotForThis(format!(
                "user {:?}, not {user:?}",
                claims.sub
            )));
        }
        // Time, audience and issuer as for connection tokens.
        self.check_claims(&claims, now)?;
        Ok(ChannelGrant {
            expires_at: claims.exp,
            info: claims.info.map(Arc::from),
        })
    }
}

/// Signs `claims` with `secret` (HS256): for `duplex token` and tests.
pub fn sign(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

/// The current time in Unix milliseconds.
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The current time in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn claims(sub: &str, exp: Option<u64>) -> Claims {
        Claims {
            sub: sub.into(),
            exp,
            info: Some(RawValue::from_string("{\"name\":\"Ada\"}".into()).unwrap()),
            channels: vec!["news".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_signed_token_verifies_with_its_claims() {
        let token = sign(SECRET, &claims("42", Some(1_000)));
        let identity = Verifier::new(SECRET).verify(&token, 999).unwrap();
        assert_eq!(identity.user, "42");
        assert_eq!(identity.expires_at, Some(1_000));
        assert_eq!(identity.info.unwrap().get(), "{\"name\":\"Ada\"}");
        assert_eq!(identity.channels, ["news"]);
        let no_exp = sign(SECRET, &claims("", None));
        assert_eq!(
            Verifier::new(SECRET)
                .verify(&no_exp, u64::MAX)
                .unwrap()
                .user,
            ""
        );
    }

    #[test]
    fn expiry_is_checked_against_the_given_clock() {
        let token = sign(SECRET, &claims("42", Some(1_000)));
        assert_eq!(
            Verifier::new(SECRET).verify(&token, 1_000).unwrap_err(),
            TokenError::Expired { ago: 0 }
        );
        assert_eq!(
            Verifier::new(SECRET).verify(&token, 1_060).unwrap_err(),
            TokenError::Expired { ago: 60 }
        );
    }

    #[test]
    fn audience_issuer_not_before_and_leeway() {
        let checks = TokenChecks {
            audience: Some("hub".into()),
            issuer: Some("auth.example".into()),
            leeway: 5,
        };
        let verifier = Verifier::with_checks(SECRET, checks);
        let token = |aud: serde_json::Value, iss: &str, nbf: Option<u64>, exp: Option<u64>| {
            sign(
                SECRET,
                &Claims {
                    sub: "1".into(),
                    aud: Some(aud),
                    iss: Some(iss.into()),
                    nbf,
                    exp,
                    ..Default::default()
                },
            )
        };
        let hub = serde_json::json!("hub");
        assert!(verifier
            .verify(&token(hub.clone(), "auth.example", None, None), 100)
            .is_ok());
        assert!(verifier
            .verify(
                &token(serde_json::json!(["x", "hub"]), "auth.example", None, None),
                100
            )
            .is_ok());
        assert!(matches!(
            verifier.verify(
                &token(serde_json::json!("other"), "auth.example", None, None),
                100
            ),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            verifier.verify(&token(hub.clone(), "evil", None, None), 100),
            Err(TokenError::Invalid(_))
        ));
        let no_aud = sign(
            SECRET,
            &Claims {
                sub: "1".into(),
                iss: Some("auth.example".into()),
                ..Default::default()
            },
        );
        assert!(
            matches!(verifier.verify(&no_aud, 100), Err(TokenError::Invalid(_))),
            "aud required once configured"
        );
        // nbf and exp within the 5 s leeway pass; beyond it they do not.
        assert!(verifier
            .verify(&token(hub.clone(), "auth.example", Some(104), None), 100)
            .is_ok());
        assert!(matches!(
            verifier.verify(&token(hub.clone(), "auth.example", Some(106), None), 100),
            Err(TokenError::Invalid(_))
        ));
        assert!(verifier
            .verify(&token(hub.clone(), "auth.example", None, Some(97)), 100)
            .is_ok());
        assert!(matches!(
            verifier.verify(&token(hub, "auth.example", None, Some(95)), 100),
            Err(TokenError::Expired { ago: 5 })
        ));
    }

    const RSA_PRIVATE: &str = include_str!("../tests/keys/rsa_private.pem");
    const RSA_PUBLIC: &str = include_str!("../tests/keys/rsa_public.pem");
    const EC_PRIVATE: &str = include_str!("../tests/keys/ec_private.pem");
    const EC_PUBLIC: &str = include_str!("../tests/keys/ec_public.pem");

    fn signed(algorithm: Algorithm, key: &EncodingKey, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(algorithm), claims, key).unwrap()
    }

    fn all_keys() -> Verifier {
        Verifier::with_keys(
            TokenKeys {
                hmac: Some(DecodingKey::from_secret(SECRET.as_bytes())),
                rsa: Some(load_public_key(RSA_PUBLIC, Algorithm::RS256).unwrap()),
                ecdsa: Some(load_public_key(EC_PUBLIC, Algorithm::ES256).unwrap()),
            },
            TokenChecks::default(),
        )
    }

    #[test]
    fn rs256_and_es256_tokens_verify_with_their_public_keys() {
        let claims = Claims {
            sub: "42".into(),
            ..Default::default()
        };
        let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        let ec = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
        let verifier = all_keys();
        assert_eq!(
            verifier
                .verify(&signed(Algorithm::RS256, &rsa, &claims), 0)
                .unwrap()
                .user,
            "42"
        );
        assert_eq!(
            verifier
                .verify(&signed(Algorithm::ES256, &ec, &claims), 0)
                .unwrap()
                .user,
            "42"
        );
        // Only the algorithms with a key are accepted.
        let hmac_only = Verifier::new(SECRET);
        assert!(matches!(
            hmac_only.verify(&signed(Algorithm::RS256, &rsa, &claims), 0),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn an_hs256_token_signed_with_the_rsa_public_key_is_refused() {
        // The classic algorithm confusion: the public key used as an HMAC secret.
        let claims = Claims {
            sub: "admin".into(),
            ..Default::default()
        };
        let forged = signed(
            Algorithm::HS256,
            &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
            &claims,
        );
        assert!(matches!(
            all_keys().verify(&forged, 0),
            Err(TokenError::Invalid(_))
        ));
        let rsa_only = Verifier::with_keys(
            TokenKeys {
                rsa: Some(load_public_key(RSA_PUBLIC, Algorithm::RS256).unwrap()),
                ..Default::default()
            },
            TokenChecks::default(),
        );
        assert!(matches!(
            rsa_only.verify(&forged, 0),
            Err(TokenError::Invalid(_))
        ));
        // And an RS256 token verified as ES256 or with another key.
        let other_ec = Verifier::with_keys(
            TokenKeys {
                ecdsa: Some(load_public_key(EC_PUBLIC, Algorithm::ES256).unwrap()),
                ..Default::default()
            },
            TokenChecks::default(),
        );
        let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        assert!(matches!(
            other_ec.verify(&signed(Algorithm::RS256, &rsa, &claims), 0),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn public_keys_are_read_from_pem_text_or_a_file_and_checked() {
        assert!(load_public_key(RSA_PUBLIC, Algorithm::RS256).is_ok());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/ec_public.pem");
        assert!(load_public_key(path, Algorithm::ES256).is_ok());
        assert!(load_public_key("/nonexistent.pem", Algorithm::ES256)
            .unwrap_err()
            .contains("cannot read"));
        assert!(load_public_key(
            "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
            Algorithm::RS256
        )
        .is_err());
        assert!(
            load_public_key(EC_PUBLIC, Algorithm::RS256).is_err(),
            "an EC key is not an RSA key"
        );
    }

    #[test]
    fn forged_malformed_and_other_algorithms_are_invalid() {
        let token = sign("another secret, also 32 chars long", &claims("42", None));
        assert!(matches!(
            Verifier::new(SECRET).verify(&token, 0),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            Verifier::new(SECRET).verify("abc", 0),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            Verifier::new(SECRET).verify("", 0),
            Err(TokenError::Invalid(_))
        ));
        // alg "none" with the same claims.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode("{\"alg\":\"none\",\"typ\":\"JWT\"}"),
            b64.encode("{\"sub\":\"42\"}")
        );
        assert!(matches!(
            Verifier::new(SECRET).verify(&none, 0),
            Err(TokenError::Invalid(_))
        ));
        // A valid signature over a tampered payload.
        let good = sign(SECRET, &claims("42", None));
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64.encode("{\"sub\":\"admin\"}"),
            parts[2]
        );
        assert!(matches!(
            Verifier::new(SECRET).verify(&tampered, 0),
            Err(TokenError::Invalid(_))
        ));
    }
}
