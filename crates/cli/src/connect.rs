//! `duplex connect URL`: a client in the spirit of wscat and websocat.
//!
//! On a terminal, typed lines are sent as text and incoming messages are printed with
//! direction markers. With stdin from a pipe, each line is one text message (or, with
//! `--binary`, stdin is sent raw as binary messages), incoming messages are printed raw,
//! and the connection is closed with 1000 at the end of input.

use crate::error::CliError;
use duplex::{ClientBuilder, CloseCode, CloseFrame, Message};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

#[derive(clap::Args)]
#[command(
    after_help = "Exit codes: 0 closed normally (1000, 1001 or no code), 2 could not connect, \
3 connection failed or dropped without a close frame, 4 the server closed with another code."
)]
pub struct ConnectArgs {
    /// The server, e.g. ws://127.0.0.1:9001/chat
    url: String,
    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Subprotocol to offer (repeatable).
    #[arg(short = 'p', long = "protocol")]
    protocols: Vec<String>,
    /// Origin header to send.
    #[arg(long)]
    origin: Option<String>,
    /// Send a ping after this many seconds without traffic.
    #[arg(long)]
    ping_interval: Option<f64>,
    /// Send stdin as raw binary messages and write binary messages raw to stdout.
    #[arg(long)]
    binary: bool,
    /// Do not offer permessage-deflate.
    #[arg(long)]
    no_deflate: bool,
    /// Proxy to connect through: http://user:pass@host:port (CONNECT; credentials optional), https://...
    /// (TLS to the proxy), socks5://... or socks5h://... (remote DNS). Without it the
    /// HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY variables apply (upper-case
    /// HTTP_PROXY too, which curl alone ignores).
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// Ignore the proxy environment variables.
    #[arg(long, conflicts_with = "proxy")]
    no_proxy: bool,
    /// Trust the certificates in this PEM file instead of the system roots (wss://).
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// Client certificate chain (PEM) for servers that require one; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// DANGEROUS: accept any server certificate (expired, self-signed, wrong host).
    /// Anyone on the path can then read and change the traffic. For testing only.
    #[arg(long)]
    insecure: bool,
}

pub async fn run(args: ConnectArgs) -> Result<ExitCode, CliError> {
    let mut builder = ClientBuilder::new(&args.url);
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("header {h:?} is not \"Name: value\"")))?;
        builder = builder.header(name.trim(), value.trim());
    }
    for p in &args.protocols {
        builder = builder.protocol(p);
    }
    if args.no_deflate {
        builder = builder.deflate(None);
    }
    if let Some(proxy) = &args.proxy {
        builder = builder.proxy(proxy);
    }
    if args.no_proxy {
        builder = builder.no_proxy();
    }
    if let Some(ca) = &args.ca {
        builder = builder.tls_ca_file(ca);
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        builder = builder.tls_client_cert(cert, key);
    }
    if args.insecure {
        eprintln!("duplex: warning: --insecure: the server's certificate is not checked");
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some(origin) = &args.origin {
        builder = builder.origin(origin);
    }
    if let Some(secs) = args.ping_interval {
        if !(secs > 0.0 && secs.is_finite()) {
            return Err(CliError::Usage(format!(
                "--ping-interval {secs} must be a positive number of seconds"
            )));
        }
        builder = builder.ping_interval(Duration::from_secs_f64(secs));
    }
    let (ws, response) = builder
        .connect()
        .await
        .map_err(|source| CliError::Connect {
            url: args.url.clone(),
            source,
        })?;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        let protocol = response.protocol.as_deref().unwrap_or("none");
        let deflate = if response.deflate.is_some() {
            "on"
        } else {
            "off"
        };
        eprintln!(
            "connected to {} (subprotocol: {protocol}, permessage-deflate: {deflate}); \
             type lines to send, Ctrl-D to close",
            args.url
        );
    }
    let (mut reader, mut writer) = ws.split();
    let binary = args.binary;

    let input = tokio::spawn(async move {
        let result = if binary {
            send_raw_stdin(&mut writer).await
        } else {
            send_stdin_lines(&mut writer).await
        };
        // End of input: start the close handshake; the reader sees the answer.
        let _ = writer.close().await;
        result
    });

    let mut stdout = std::io::stdout();
    let mut closed_with: Option<Option<CloseFrame>> = None;
    while let Some(message) = reader.recv().await {
        match message {
            Ok(Message::Text(t)) if interactive => writeln!(stdout, "< {t}")?,
            Ok(Message::Text(t)) => writeln!(stdout, "{t}")?,
            Ok(Message::Binary(b)) if binary => stdout.write_all(&b)?,
            Ok(Message::Binary(b)) => writeln!(stdout, "< [binary, {} bytes]", b.len())?,
            Ok(Message::Ping(_)) if interactive => writeln!(stdout, "< [ping]")?,
            Ok(Message::Pong(_)) if interactive => writeln!(stdout, "< [pong]")?,
            Ok(Message::Close(frame)) => {
                if interactive {
                    writeln!(stdout, "< [close {}]", describe(&frame))?;
                }
                closed_with = Some(frame);
            }
            Ok(_) => {}
            Err(e) => {
                input.abort();
                return Err(CliError::Connection(e));
            }
        }
        stdout.flush()?;
    }
    input.abort();
    let Some(frame) = closed_with else {
        return Err(CliError::Connection(duplex::Error::AbnormalClosure));
    };
    let normal = match &frame {
        None => true,
        Some(f) => f.code == CloseCode::NORMAL || f.code == CloseCode::GOING_AWAY,
    };
    if normal {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "duplex: server closed the connection with {}",
            describe(&frame)
        );
        Ok(ExitCode::from(4))
    }
}

fn describe(frame: &Option<CloseFrame>) -> String {
    match frame {
        None => "no status code".to_owned(),
        Some(f) if f.reason.is_empty() => format!("code {}", f.code),
        Some(f) => format!("code {}: {}", f.code, f.reason),
    }
}

async fn send_stdin_lines(
    writer: &mut duplex::WebSocketWriter<duplex::ClientStream>,
) -> Result<(), duplex::Error> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        writer.send(Message::text(line)).await?;
    }
    Ok(())
}

async fn send_raw_stdin(
    writer: &mut duplex::WebSocketWriter<duplex::ClientStream>,
) -> Result<(), duplex::Error> {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = stdin.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        writer.send(Message::binary(buf[..n].to_vec())).await?;
    }
}
