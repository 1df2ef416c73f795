//! `duplex token`: mints an HS256 connection or subscription token for development, as
//! the application's backend would.

use crate::error::CliError;
use duplex_hub::auth::{sign, unix_now, Claims};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TokenArgs {
    /// The hub's `token_hmac_secret` (in development mode: the one in
    /// `<data_dir>/dev-secrets.toml`).
    #[arg(long, value_name = "SECRET")]
    secret: String,
    /// The user id (`sub`); empty for an anonymous user's token.
    #[arg(long, value_name = "USER")]
    user: String,
    /// How long the token is valid, e.g. `30m`, `1h`, `7d`; `0` for no expiry.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    ttl: String,
    /// Mint a subscription token for this channel instead of a connection token.
    #[arg(long, value_name = "CHANNEL")]
    channel: Option<String>,
    /// `info` claim: JSON shown to others with this client (presence, publications).
    #[arg(long, value_name = "JSON")]
    info: Option<String>,
}

pub fn run(args: TokenArgs) -> Result<ExitCode, CliError> {
    if args.secret.len() < 32 {
        return Err(CliError::Usage(
            "--secret must be at least 32 characters, as the hub requires of token_hmac_secret"
                .into(),
        ));
    }
    let ttl = humantime::parse_duration(&args.ttl).map_err(|e| {
        CliError::Usage(format!(
            "--ttl {:?} is not a duration ({e}); write e.g. 30m, 1h, 7d, or 0",
            args.ttl
        ))
    })?;
    let info = args
        .info
        .map(|text| {
            serde_json::value::RawValue::from_string(text)
                .map_err(|e| CliError::Usage(format!("--info is not JSON: {e}")))
        })
        .transpose()?;
    let claims = Claims {
        sub: args.user,
        exp: (!ttl.is_zero()).then(|| unix_now() + ttl.as_secs().max(1)),
        info,
        channel: args.channel,
        ..Claims::default()
    };
    println!("{}", sign(&args.secret, &claims));
    Ok(ExitCode::SUCCESS)
}
