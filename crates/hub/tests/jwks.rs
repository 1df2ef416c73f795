//! Tokens checked with keys from a JWKS URL, served by a real HTTP server in the test:
//! a key rotation is picked up on the first token that names the new key, a removed key
//! stops working, and a token cannot pick another algorithm than its key's.

mod common;

use common::*;
use http_body_util::Full;
use hyper::body::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const RSA_1: &str = include_str!("keys/rsa_private.pem");
const RSA_2: &str = include_str!("keys/rsa2_private.pem");
const EC_1: &str = include_str!("keys/ec_private.pem");

/// A JWKS endpoint whose document the test changes; counts the fetches.
struct Provider {
    addr: SocketAddr,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    async fn start(document: &str) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let document = Arc::new(Mutex::new(document.to_owned()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (doc, count) = (doc.clone(), count.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        count.fetch_add(1, Ordering::SeqCst);
                        let body = doc.lock().unwrap().clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::from(body),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Provider {
            addr,
            document,
            fetches,
        }
    }

    fn publish(&self, document: &str) {
        *self.document.lock().unwrap() = document.to_owned();
    }
}

fn signed(algorithm: Algorithm, pem: &str, kid: &str, user: &str) -> String {
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.into());
    let key = match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&header, &json!({"sub": user}), &key).unwrap()
}

/// Sends connect with `token`: the user on success, the close code when refused.
async fn connect(hub: &TestHub, token: &str) -> Result<(), u16> {
    let mut client = Client::open(hub).await;
    match client
        .call_or_close(json!({"connect": {"token": token}}))
        .await
    {
        Some(reply) if reply.get("connect").is_some() => Ok(()),
        Some(reply) => panic!("expected success or a disconnect, got {reply}"),
        None => Err(3500),
    }
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_and_old_keys_stop_working() {
    let provider = Provider::start(include_str!("keys/rsa-1.jwks.json")).await;
    let mut config = config();
    config.token_hmac_secret = None;
    config.token_jwks_url = Some(format!("http://{}/jwks.json", provider.addr));
    let hub = TestHub::start(config).await;
    assert_eq!(
        provider.fetches.load(Ordering::SeqCst),
        1,
        "fetched at start"
    );

    connect(&hub, &signed(Algorithm::RS256, RSA_1, "rsa-1", "ann"))
        .await
        .expect("a token signed with the published key");
    assert_eq!(
        provider.fetches.load(Ordering::SeqCst),
        1,
        "a known key fetches nothing"
    );

    // The provider rotates to a new key: the first token naming it fetches the set.
    provider.publish(include_str!("keys/rsa-2.jwks.json"));
    connect(&hub, &signed(Algorithm::RS256, RSA_2, "rsa-2", "ann"))
        .await
        .expect("a token signed with the new key");
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);

    // The old key is gone from the set, so from the cache.
    assert_eq!(
        connect(&hub, &signed(Algorithm::RS256, RSA_1, "rsa-1", "ann")).await,
        Err(3500)
    );
    // Forged: the new key's id, signed with another key.
    assert_eq!(
        connect(&hub, &signed(Algorithm::RS256, RSA_1, "rsa-2", "ann")).await,
        Err(3500)
    );
    // The key's algorithm, not the token's, decides.
    assert_eq!(
        connect(&hub, &signed(Algorithm::ES256, EC_1, "rsa-2", "ann")).await,
        Err(3500)
    );
    // Made-up key ids do not make the hub fetch again and again.
    for i in 0..20 {
        let token = signed(Algorithm::RS256, RSA_2, &format!("made-up-{i}"), "ann");
        assert_eq!(connect(&hub, &token).await, Err(3500));
    }
    assert!(
        provider.fetches.load(Ordering::SeqCst) <= 3,
        "unknown key ids refetch at most every 5 s: {} fetches",
        provider.fetches.load(Ordering::SeqCst)
    );
    assert!(hub.node.metrics.auth_failures.get("invalid") >= 23);
}

#[tokio::test]
async fn es256_keys_from_the_set_verify_and_a_provider_that_is_down_is_survived() {
    let provider = Provider::start("not a JWKS").await;
    let mut config = config();
    config.token_jwks_url = Some(format!("http://{}/jwks.json", provider.addr));
    let hub = TestHub::start(config).await;
    // The set could not be read at start: the hub runs, HS256 tokens still work.
    let _client = Client::connect(&hub, &token("bo")).await;

    provider.publish(include_str!("keys/ec-1.jwks.json"));
    connect(&hub, &signed(Algorithm::ES256, EC_1, "ec-1", "bo"))
        .await
        .expect("fetched on the unknown key id once the provider answers");

    // The provider breaks again: the cached key keeps working.
    provider.publish("<html>");
    connect(&hub, &signed(Algorithm::ES256, EC_1, "ec-1", "bo"))
        .await
        .expect("cached key");
}

#[test]
fn a_jwks_url_that_is_not_http_is_refused() {
    let config = duplex_hub::Config {
        token_jwks_url: Some("file:///etc/keys.json".into()),
        ..Default::default()
    };
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("token_jwks_url"), "{e}");
}
