//! `duplex pub URL CHANNEL [DATA|-]`: publishes to a hub through its HTTP API and prints
//! the offset of each publication once the hub has stored it.

use crate::error::CliError;
use duplex_hub::backend::HttpClient;
use http::{HeaderMap, HeaderValue, Uri};
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(clap::Args)]
#[command(
    after_help = "Exit codes: 0 every publication stored, 2 bad usage or the hub refused the \
key, 3 a publication was refused or the hub could not be reached."
)]
pub struct PubArgs {
    /// The hub: http://HOST:PORT (a ws://HOST:PORT/... URL is taken as its host).
    url: String,
    /// The channel.
    channel: String,
    /// The publication's data: JSON, or any other text (sent as a JSON string); `-` reads
    /// stdin, one publication per line.
    #[arg(default_value = "-")]
    data: String,
    /// The hub's `api_key` (in development mode: in `<data_dir>/dev-secrets.toml`).
    #[arg(long, value_name = "KEY")]
    api_key: String,
    /// Publish each only once even if retried: this key, with the line number appended
    /// when reading stdin (the hub answers a repeat within 5 minutes with the first
    /// result).
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// How long one publish may take.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
}

/// The API endpoint for `url`'s host.
pub(crate) fn endpoint(url: &str) -> Result<Uri, CliError> {
    let parsed =
        url::Url::parse(url).map_err(|e| CliError::Usage(format!("invalid URL {url:?}: {e}")))?;
    let scheme = match parsed.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        other => {
            return Err(CliError::Usage(format!(
                "invalid URL {url:?}: scheme {other:?} is not http, https, ws or wss"
            )))
        }
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| CliError::Usage(format!("invalid URL {url:?}: no host")))?;
    let port = parsed.port().map_or(String::new(), |p| format!(":{p}"));
    format!("{scheme}://{host}{port}/api/publish")
        .parse()
        .map_err(|e| CliError::Usage(format!("invalid URL {url:?}: {e}")))
}

/// Publication data from a command-line argument or a line: JSON as it is, anything
/// else as a JSON string.
fn data(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

pub async fn run(args: PubArgs) -> Result<ExitCode, CliError> {
    let uri = endpoint(&args.url)?;
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| CliError::Usage("--timeout must be a number of seconds above 0".into()))?;
    let client = HttpClient::new(timeout);
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-api-key",
        HeaderValue::from_str(&args.api_key)
            .map_err(|_| CliError::Usage("--api-key is not a valid header value".into()))?,
    );
    let publish = async |data: Value, key: Option<String>| -> Result<(), CliError> {
        let mut body = serde_json::json!({"channel": args.channel, "data": data});
        if let Some(key) = key {
            body["idempotency_key"] = Value::String(key);
        }
        let answer = client
            .post(&uri, &headers, body.to_string().into_bytes())
            .await
            .map_err(|e| match e {
                duplex_hub::backend::CallError::Status(s)
                    if s.as_u16() == 401 || s.as_u16() == 403 =>
                {
                    CliError::Usage(format!(
                        "the hub refused the API key ({s}): check --api-key"
                    ))
                }
                other => CliError::Hub(format!("publishing to {uri}: {other}")),
            })?;
        let answer: Value = serde_json::from_slice(&answer)
            .map_err(|e| CliError::Hub(format!("the hub's answer is not JSON: {e}")))?;
        match answer["result"]["offset"].as_u64() {
            Some(offset) => {
                println!("{offset}");
                Ok(())
            }
            None => Err(CliError::Hub(format!("not stored: {}", answer["error"]))),
        }
    };
    if args.data != "-" {
        publish(data(&args.data), args.idempotency_key.clone()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut number = 0u64;
    while let Some(line) = lines.next_line().await? {
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let key = args
            .idempotency_key
            .as_ref()
            .map(|k| format!("{k}-{number}"));
        publish(data(&line), key).await?;
    }
    Ok(ExitCode::SUCCESS)
}
