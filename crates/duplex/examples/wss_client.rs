//! Connects to a `wss://` (or `ws://`) URL, sends one text message and prints the reply.
//!
//! Usage: `wss_client URL [CA_FILE] [MESSAGE]`
//!
//! - `CA_FILE`: a PEM file of the CA that issued the server's certificate, trusted instead
//!   of the system roots (for a private or self-signed CA); `-` for the system roots.
//! - `MESSAGE`: the text to send, `hello` by default.
//!
//! ```sh
//! cargo run -p duplex --example wss_client -- wss://localhost:9443/ ca.pem "hi there"
//! ```
//!
//! Exits with status 1 and the error (which names the step, the host and the reason, for
//! example an unknown certificate issuer) when anything fails.

use duplex::{ClientBuilder, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, ca_file, text) = match args.as_slice() {
        [url] => (url, None, "hello"),
        [url, ca] => (url, Some(ca), "hello"),
        [url, ca, text] => (url, Some(ca), text.as_str()),
        _ => {
            eprintln!("usage: wss_client URL [CA_FILE|-] [MESSAGE]");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(url, ca_file.filter(|ca| *ca != "-"), text).await {
        eprintln!("wss_client: {e}");
        std::process::exit(1);
    }
}

async fn run(url: &str, ca_file: Option<&String>, text: &str) -> Result<(), duplex::Error> {
    let mut builder = ClientBuilder::new(url);
    if let Some(ca) = ca_file {
        builder = builder.tls_ca_file(ca);
    }
    let (mut ws, _response) = builder.connect().await?;
    ws.send(Message::text(text)).await?;
    match ws.recv().await {
        Some(reply) => match reply? {
            Message::Text(t) => println!("{}", t.as_str()),
            Message::Binary(b) => println!("{} bytes of binary: {:02x?}", b.len(), &b[..]),
            other => println!("{other:?}"),
        },
        None => println!("(the server closed without replying)"),
    }
    ws.close(None).await
}
