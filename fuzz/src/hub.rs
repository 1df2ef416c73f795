//! The hub's parsers of network input: the command decoder, token verification and the
//! HTTP API bodies.

use duplex_hub::auth::{TokenChecks, TokenKeys, Verifier};
use duplex_hub::protocol::{Command, Format, Payload, Request};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use std::sync::Arc;

const SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret!";
const RSA_PUBLIC: &str = include_str!("../../crates/hub/tests/keys/rsa_public.pem");
const EC_PUBLIC: &str = include_str!("../../crates/hub/tests/keys/ec_public.pem");

/// A JSON message of commands as a client sends it (text: the hub decodes nothing else
/// in this format).
///
/// Invariants: no panic; at most one command per non-empty line; those of
/// [`check_commands`].
pub fn command(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Format::Json.decode(data) {
        Ok(commands) => {
            let lines = text.split('\n').filter(|l| !l.trim().is_empty()).count();
            assert!(
                commands.len() <= lines,
                "{} commands from {lines} lines",
                commands.len()
            );
            check_commands(&commands);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A Protobuf message of commands (length-delimited) as a client sends it.
///
/// Invariants: no panic; at most one command per byte (each takes its length prefix at
/// least); payloads taken as JSON are JSON, a publication's binary payload is not (the
/// other payloads must be JSON, or the command is refused); those of [`check_commands`].
pub fn command_protobuf(data: &[u8]) {
    match Format::Protobuf.decode(data) {
        Ok(commands) => {
            assert!(
                commands.len() <= data.len(),
                "{} commands from {} bytes",
                commands.len(),
                data.len()
            );
            check_commands(&commands);
            for c in &commands {
                let payload = match &c.request {
                    Request::Publish(p) => match &p.data {
                        Some(Payload::Json(raw)) => Some(&**raw),
                        Some(Payload::Binary(bytes)) => {
                            assert!(!bytes.is_empty(), "an empty payload is no payload");
                            assert!(
                                std::str::from_utf8(bytes).map_or(true, |t| {
                                    serde_json::from_str::<serde::de::IgnoredAny>(t).is_err()
                                }),
                                "a binary payload is not JSON"
                            );
                            None
                        }
                        None => None,
                    },
                    Request::Rpc(r) => r.data.as_deref(),
                    Request::Send(s) => s.data.as_deref(),
                    Request::Connect(r) => r.data.as_deref(),
                    Request::Subscribe(r) => r.data.as_deref(),
                    _ => None,
                };
                if let Some(raw) = payload {
                    // JSON's grammar, not a `Value`: a number out of f64's range (such as
                    // 880000e008800) is valid JSON, kept as written.
                    assert!(
                        serde_json::from_str::<serde::de::IgnoredAny>(raw.get()).is_ok(),
                        "a payload taken as JSON is JSON"
                    );
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Invariants of every decoded command: one without an id is a pong or a `send`; a token
/// the request carries is never empty.
fn check_commands(commands: &[Command]) {
    for c in commands {
        if c.id == 0 {
            assert!(
                matches!(c.request, Request::Pong | Request::Send(_)),
                "{} without an id",
                c.request.method()
            );
        }
        assert!(c.request.token().is_none_or(|t| !t.is_empty()));
    }
}

/// One verifier per leeway the inputs can pick (0-127 s), built once: parsing the PEM
/// keys per input would be most of the work.
fn verifier(leeway: u64) -> &'static Verifier {
    static VERIFIERS: std::sync::OnceLock<Vec<Verifier>> = std::sync::OnceLock::new();
    let all = VERIFIERS.get_or_init(|| (0..128).map(build_verifier).collect());
    &all[usize::try_from(leeway).unwrap_or(0) % all.len()]
}

fn build_verifier(leeway: u64) -> Verifier {
    let keys = TokenKeys {
        hmac: Some(DecodingKey::from_secret(SECRET.as_bytes())),
        rsa: Some(DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).expect("fixture key")),
        ecdsa: Some(DecodingKey::from_ec_pem(EC_PUBLIC.as_bytes()).expect("fixture key")),
    };
    Verifier::with_keys(
        keys,
        TokenChecks {
            leeway,
            ..TokenChecks::default()
        },
    )
}

/// Tokens: the first byte picks the mode.
///
/// - Even: the rest is a token as a client would send it. Invariant: it never verifies
///   (nobody but the key holders can sign), whatever its header says (`alg: none`,
///   another algorithm, a key id).
/// - Odd: the rest is a claims payload, signed here with the HS256 secret as is. Invariant:
///   when it verifies, the identity is the payload's `sub`, and its `exp` (when it is a
///   number) was still ahead of the clock the verifier was given.
pub fn token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = 1_700_000_000;
    if mode % 2 == 0 {
        let token = String::from_utf8_lossy(rest);
        assert!(
            verifier(0).verify(&token, now).is_err(),
            "an unsigned token verified: {token}"
        );
        assert!(verifier(0).verify_channel(&token, "c", "u", now).is_err());
        return;
    }
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let message = format!(
        "{}.{}",
        b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(rest)
    );
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
        .expect("HS256 signs anything");
    let token = format!("{message}.{signature}");
    let leeway = u64::from(mode >> 1);
    if let Ok(identity) = verifier(leeway).verify(&token, now) {
        // Read as the verifier must have: only these claims, the others ignored
        // (serde_json skips checks in ignored values: invalid UTF-8, huge numbers).
        let claims: Seen = serde_json::from_slice(rest).expect("verified claims are JSON");
        let sub = claims.sub.as_ref().and_then(|s| s.as_str()).unwrap_or("");
        assert_eq!(identity.user, sub);
        if let Some(exp) = claims.exp.as_ref().and_then(|e| e.as_u64()) {
            assert!(exp + leeway > now, "expired at {exp}, verified at {now}");
        }
        assert!(
            claims.channel.is_none_or(|c| c.is_null()),
            "a subscription token let in as a connection"
        );
    }
}

/// The claims the token oracle checks.
#[derive(serde::Deserialize)]
struct Seen {
    sub: Option<serde_json::Value>,
    exp: Option<serde_json::Value>,
    channel: Option<serde_json::Value>,
}

/// Methods the API target calls (an unknown one too).
const METHODS: &[&str] = &[
    "publish",
    "broadcast",
    "history",
    "history_remove",
    "presence",
    "presence_stats",
    "channels",
    "info",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "batch",
    "no_such_method",
];

/// Inputs per node: the memory engine keeps every channel the inputs make, so a fresh
/// node now and then keeps the target's memory flat.
const INPUTS_PER_NODE: u32 = 10_000;

thread_local! {
    static HUB: std::cell::RefCell<Option<(tokio::runtime::Runtime, Arc<duplex_hub::Node>, u32)>> =
        const { std::cell::RefCell::new(None) };
}

fn node(runtime: &tokio::runtime::Runtime) -> Arc<duplex_hub::Node> {
    let mut config = duplex_hub::Config {
        engine: duplex_hub::config::EngineKind::Memory,
        token_hmac_secret: Some(SECRET.into()),
        api_key: Some("k".into()),
        ..Default::default()
    };
    config.channels.history_size = 16;
    config.namespaces.insert("chat".into(), Default::default());
    runtime
        .block_on(duplex_hub::Node::new(config))
        .expect("the fuzz configuration is valid")
}

/// An API call: the first byte picks the method, the rest is the body.
///
/// Invariants: no panic; the answer is 200, 400 or 404, and its body is JSON.
pub fn api(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(pick) % METHODS.len()];
    HUB.with_borrow_mut(|hub| {
        if hub.as_ref().is_none_or(|(_, _, n)| *n >= INPUTS_PER_NODE) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime");
            let node = node(&runtime);
            *hub = Some((runtime, node, 0));
        }
        let (runtime, node, n) = hub.as_mut().expect("set above");
        *n += 1;
        let (status, answer) = runtime.block_on(duplex_hub::http::api::call(node, method, body));
        assert!(
            matches!(status.as_u16(), 200 | 400 | 404),
            "{method}: status {status}"
        );
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&answer) {
            panic!("{method}: the answer is not JSON ({e}): {answer}");
        }
    });
}
