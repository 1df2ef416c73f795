//! Holds N idle client connections open, for measuring a server's memory per connection.
//!
//! Usage: `idle_clients URL N MODE`, where MODE is
//! - `plain`: no permessage-deflate offered;
//! - `deflate`: deflate negotiated, no message sent (the lazy state is never created);
//! - `deflate-message`: deflate negotiated, one compressible message echoed per connection
//!   (with context takeover the server keeps its zlib state afterwards);
//! - `deflate-no-context-message`: as above, asking for no context takeover both ways
//!   (the server releases its state after each message).
//!
//! Prints `ready N` once every connection is open (and has exchanged its message), then
//! holds them until stdin closes.

use duplex::{ClientBuilder, DeflateConfig, Message};
use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), duplex::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, n, mode] = args.as_slice() else {
        panic!(
            "usage: idle_clients URL N plain|deflate|deflate-message|deflate-no-context-message"
        );
    };
    let n: usize = n.parse().expect("N is a number");
    let deflate = match mode.as_str() {
        "plain" => None,
        "deflate" | "deflate-message" => Some(DeflateConfig::default()),
        "deflate-no-context-message" => Some(
            DeflateConfig::default()
                .client_no_context_takeover(true)
                .server_no_context_takeover(true),
        ),
        other => panic!("unknown mode {other}"),
    };
    let send = mode.ends_with("message");
    let message = Message::text(
        r#"{"type":"message","room":"general","text":"hello everyone, hello again"}"#,
    );
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut ws, response) = ClientBuilder::new(url.as_str())
            .deflate(deflate.clone())
            .connect()
            .await?;
        assert_eq!(
            response.deflate.is_some(),
            deflate.is_some(),
            "deflate negotiation as requested"
        );
        if send {
            ws.send(message.clone()).await?;
            match ws.recv().await {
                Some(Ok(m)) if m == message => {}
                other => panic!("expected the echo, got {other:?}"),
            }
        }
        held.push(ws);
    }
    println!("ready {}", held.len());
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    Ok(())
}
