//! The Pusher protocol (version 7) as the generator speaks it to a Pusher-compatible
//! server (sockudo, in `scripts/compare-hub`), for the side-by-side comparison.
//!
//! Subscribers connect to `/app/KEY?protocol=7`; the server greets with
//! `pusher:connection_established`, a `pusher:subscribe` is confirmed with
//! `pusher_internal:subscription_succeeded`, the server's `pusher:ping` is answered with
//! `pusher:pong`. Publications go through the HTTP API (`POST /apps/ID/events`, signed
//! with the app's secret), acknowledged by its `200`; the server keeps no stream, so a
//! publication carries its number in its channel (`n`) in place of an offset.

use super::codec::Event;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha256;

/// The event name generator publications are triggered as.
pub const EVENT: &str = "pub";

/// The id [`decode`] gives a subscription's confirmation, which carries none: the one
/// the generator's subscribers use (each connection subscribes to one channel).
pub const SUBSCRIBE_ID: u32 = 2;

/// The WebSocket URL: the protocol version in the query when it is not there.
pub fn url(url: &str) -> String {
    if url.contains("protocol=") {
        return url.to_owned();
    }
    let join = if url.contains('?') { '&' } else { '?' };
    format!("{url}{join}protocol=7&client=duplex-bench&version=1.0")
}

/// `pusher:subscribe` to a public channel.
pub fn subscribe(channel: &str) -> String {
    json!({"event": "pusher:subscribe", "data": {"channel": channel}}).to_string()
}

/// A client event (private and presence channels only; not acknowledged).
pub fn client_event(channel: &str, data: &Value) -> String {
    json!({"event": format!("client-{EVENT}"), "channel": channel, "data": data}).to_string()
}

/// The answer to the server's `pusher:ping`.
pub fn pong() -> String {
    json!({"event": "pusher:pong", "data": {}}).to_string()
}

/// One server message.
pub fn decode(text: &str) -> Result<Event, String> {
    let message: Value =
        serde_json::from_str(text).map_err(|e| format!("Pusher message not JSON: {e}"))?;
    let event = message["event"].as_str().unwrap_or_default();
    // `data` is a string of JSON in server events (sometimes an object).
    let data = || match &message["data"] {
        Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or(Value::Null),
        other => other.clone(),
    };
    Ok(match event {
        "pusher:connection_established" => Event::Reply {
            id: 1,
            outcome: Ok(0),
        },
        "pusher_internal:subscription_succeeded" => Event::Reply {
            id: SUBSCRIBE_ID,
            outcome: Ok(0),
        },
        "pusher:error" | "pusher:subscription_error" => {
            return Err(format!("Pusher error: {}", message["data"]))
        }
        "pusher:ping" => Event::Ping,
        EVENT => {
            let data = data();
            match data["n"].as_u64() {
                Some(n) => Event::Publication {
                    offset: n,
                    sent_us: data["t"].as_u64(),
                },
                None => return Err(format!("a publication without its number: {text}")),
            }
        }
        _ => Event::Other,
    })
}

/// Publishing through a Pusher app's HTTP API.
pub struct App {
    /// The events endpoint, `http://HOST:PORT/apps/ID/events`.
    pub uri: http::Uri,
    key: String,
    secret: String,
}

impl App {
    /// The app at the WebSocket URL `ws[s]://HOST:PORT/app/KEY` with `credentials`
    /// (`APP_ID:SECRET`, from `--api-key`).
    pub fn new(ws_url: &str, credentials: &str) -> Result<App, String> {
        let (id, secret) = credentials
            .split_once(':')
            .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
            .ok_or("with --protocol pusher, --api-key is APP_ID:SECRET")?;
        let url = url::Url::parse(ws_url).map_err(|e| format!("{ws_url}: {e}"))?;
        let key = url
            .path()
            .strip_prefix("/app/")
            .filter(|k| !k.is_empty() && !k.contains('/'))
            .ok_or("with --protocol pusher, the URL is ws://HOST:PORT/app/KEY")?;
        let scheme = if url.scheme() == "wss" {
            "https"
        } else {
            "http"
        };
        let host = url.host_str().ok_or("the URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let uri = format!("{scheme}://{host}:{port}/apps/{id}/events")
            .parse()
            .map_err(|e| format!("events endpoint: {e}"))?;
        Ok(App {
            uri,
            key: key.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// The body of a trigger of [`EVENT`] with `data` on `channel`.
    pub fn body(channel: &str, data: &Value) -> String {
        json!({"name": EVENT, "channels": [channel], "data": data.to_string()}).to_string()
    }

    /// The path and signed query for a POST of `body` at `timestamp` (Unix seconds), as
    /// Pusher's HTTP API wants them: HMAC-SHA256 of `POST\nPATH\nQUERY` (keys in order)
    /// with the app's secret.
    pub fn signed_path(&self, body: &str, timestamp: u64) -> String {
        let body_md5 = hex(&Md5::digest(body.as_bytes()));
        let path = self.uri.path();
        let query = format!(
            "auth_key={}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={body_md5}",
            self.key
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(format!("POST\n{path}\n{query}").as_bytes());
        let signature = hex(&mac.finalize().into_bytes());
        format!("{path}?{query}&auth_signature={signature}")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which numbered publications of one channel a subscriber has received, when they may
/// arrive out of order (Pusher's concurrent HTTP publishes have no defined order): the
/// number below which all arrived, and a bitmap of the next 128.
#[derive(Default)]
pub struct Window {
    /// Every publication numbered below this arrived (numbers start at 1).
    below: u64,
    /// Bit `i`: publication `below + 1 + i` arrived.
    ahead: u128,
}

/// What one arrival was.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    New,
    Duplicate,
    /// New, but so far ahead that the window moved past publications that had not
    /// arrived: they count as gaps (and as lost if they never arrive).
    NewPastGaps(u64),
}

impl Window {
    pub fn receive(&mut self, n: u64) -> Arrival {
        if n <= self.below {
            return Arrival::Duplicate;
        }
        // Slide so that `n` fits in the bitmap, counting the holes left behind (in one
        // step: a number far ahead must not cost a loop per number).
        let mut skipped = 0;
        let shift = (n - self.below).saturating_sub(128);
        if shift > 0 {
            let passed = match shift {
                1..=127 => self.ahead & ((1u128 << shift) - 1),
                _ => self.ahead,
            };
            skipped = shift - u64::from(passed.count_ones());
            self.ahead = if shift < 128 { self.ahead >> shift } else { 0 };
            self.below += shift;
        }
        let bit = 1u128 << (n - self.below - 1);
        if self.ahead & bit != 0 {
            return Arrival::Duplicate;
        }
        self.ahead |= bit;
        while self.ahead & 1 == 1 {
            self.ahead >>= 1;
            self.below += 1;
        }
        if skipped > 0 {
            Arrival::NewPastGaps(skipped)
        } else {
            Arrival::New
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as the Pusher protocol 7 documentation shows them.
    #[test]
    fn server_messages() {
        assert_eq!(
            decode(
                r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}"#
            ),
            Ok(Event::Reply {
                id: 1,
                outcome: Ok(0)
            })
        );
        assert_eq!(
            decode(
                r#"{"event":"pusher_internal:subscription_succeeded","channel":"b-1","data":"{}"}"#
            ),
            Ok(Event::Reply {
                id: SUBSCRIBE_ID,
                outcome: Ok(0)
            })
        );
        assert_eq!(
            decode(r#"{"event":"pusher:ping","data":{}}"#),
            Ok(Event::Ping)
        );
        assert_eq!(
            decode(r#"{"event":"pub","channel":"b-1","data":"{\"n\":4,\"t\":99,\"pad\":\"x\"}"}"#),
            Ok(Event::Publication {
                offset: 4,
                sent_us: Some(99)
            })
        );
        assert_eq!(decode(r#"{"event":"other","data":"{}"}"#), Ok(Event::Other));
        assert!(
            decode(r#"{"event":"pusher:error","data":{"code":4001,"message":"no app"}}"#)
                .unwrap_err()
                .contains("4001")
        );
        assert!(decode(r#"{"event":"pub","data":"{}"}"#).is_err());
        assert!(decode("not json").is_err());
        assert_eq!(
            url("ws://h:1/app/k"),
            "ws://h:1/app/k?protocol=7&client=duplex-bench&version=1.0"
        );
        assert_eq!(
            url("ws://h:1/app/k?protocol=7"),
            "ws://h:1/app/k?protocol=7"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&subscribe("b-1")).unwrap(),
            json!({"event": "pusher:subscribe", "data": {"channel": "b-1"}})
        );
    }

    /// The worked example of Pusher's HTTP API reference ("Generating authentication
    /// signatures"): key 278d425bdf160c739803, secret 7ad3773142a6692b25b8, app 3,
    /// timestamp 1353088179, body `{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`.
    #[test]
    fn the_http_api_signature_matches_pusher_s_example() {
        let app = App::new(
            "ws://api.example:80/app/278d425bdf160c739803",
            "3:7ad3773142a6692b25b8",
        )
        .unwrap();
        assert_eq!(app.uri.to_string(), "http://api.example:80/apps/3/events");
        let body = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let path = app.signed_path(body, 1353088179);
        assert_eq!(
            path,
            "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
        assert!(App::new("ws://h/app/k", "nosecret").is_err());
        assert!(App::new("ws://h/other", "3:s").is_err());
    }

    #[test]
    fn the_window_counts_duplicates_and_tolerates_reordering() {
        let mut w = Window::default();
        assert_eq!(w.receive(2), Arrival::New);
        assert_eq!(w.receive(1), Arrival::New);
        assert_eq!(w.receive(2), Arrival::Duplicate);
        assert_eq!(w.receive(1), Arrival::Duplicate);
        assert_eq!(w.receive(5), Arrival::New);
        assert_eq!(w.receive(5), Arrival::Duplicate);
        assert_eq!(w.receive(3), Arrival::New);
        // 4 is missing; 200 is past the window (1..=128 above the number below which
        // all arrived): it moves to 72, leaving 4 and 6..=72 behind.
        assert_eq!(w.receive(200), Arrival::NewPastGaps(68));
        assert_eq!(w.receive(4), Arrival::Duplicate, "behind the window");
        assert_eq!(w.receive(199), Arrival::New);
    }
}
