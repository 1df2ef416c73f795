//! Development mode: what `duplex serve` does with no configuration at all.
//!
//! When no token key is configured (`token_hmac_secret`, `token_rsa_public_key` or
//! `token_ecdsa_public_key`), the hub generates a token secret and an
//! API key on first start, keeps them in `<data_dir>/dev-secrets.toml` (mode 0600) so
//! tokens stay valid across restarts, and lets anonymous clients into the `chat` and
//! `ticker` namespaces only, so the start page works. Each start logs that this mode is
//! on and how to leave it.

use crate::config::{Config, NamespaceOptions};
use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
struct Secrets {
    token_hmac_secret: String,
    api_key: String,
}

/// What development mode generated (printed once, at generation).
#[derive(Debug)]
pub struct DevSecrets {
    /// The file they are kept in.
    pub path: PathBuf,
    /// Whether this start generated them.
    pub generated: bool,
}

fn random_hex(bytes: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { context, source }
}

fn load_or_generate(dir: &Path) -> Result<(Secrets, DevSecrets), Error> {
    let path = dir.join("dev-secrets.toml");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(io(format!("cannot read {}", path.display())))?;
        let secrets: Secrets = toml::from_str(&text).map_err(|e| Error::Io {
            context: format!(
                "{} is damaged (delete it to generate new secrets)",
                path.display()
            ),
            source: std::io::Error::other(e.to_string()),
        })?;
        return Ok((
            secrets,
            DevSecrets {
                path,
                generated: false,
            },
        ));
    }
    std::fs::create_dir_all(dir).map_err(io(format!(
        "cannot create the data directory {}",
        dir.display()
    )))?;
    let secrets = Secrets {
        token_hmac_secret: random_hex(32),
        api_key: random_hex(16),
    };
    let text = toml::to_string(&secrets).expect("two strings serialize");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options
        .open(&path)
        .map_err(io(format!("cannot create {}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(format!("cannot write {}", path.display())))?;
    Ok((
        secrets,
        DevSecrets {
            path,
            generated: true,
        },
    ))
}

/// Turns development mode on when no token secret is configured; returns what it did.
pub fn apply(config: &mut Config) -> Result<Option<DevSecrets>, Error> {
    if config.token_hmac_secret.is_some()
        || config.token_rsa_public_key.is_some()
        || config.token_ecdsa_public_key.is_some()
    {
        return Ok(None);
    }
    let (secrets, dev) = load_or_generate(&config.data_dir)?;
    config.token_hmac_secret = Some(secrets.token_hmac_secret);
    if config.api_key.is_none() {
        config.api_key = Some(secrets.api_key);
    }
    config.allow_anonymous = true;
    config
        .namespaces
        .entry("chat".into())
        .or_insert_with(|| NamespaceOptions {
            allow_subscribe_for_anonymous: Some(true),
            allow_publish_for_anonymous: Some(true),
            allow_publish_for_subscriber: Some(true),
            join_leave: Some(true),
            ..Default::default()
        });
    config
        .namespaces
        .entry("ticker".into())
        .or_insert_with(|| NamespaceOptions {
            allow_subscribe_for_anonymous: Some(true),
            ..Default::default()
        });
    tracing::warn!(
        secrets = %dev.path.display(),
        "development mode: no token_hmac_secret configured, so anonymous clients may use the chat and ticker namespaces; set token_hmac_secret (and api_key) to leave it"
    );
    if dev.generated {
        // Printed once, on the start that generated them.
        eprintln!(
            "duplex serve: development secrets generated in {} (mode 0600):\n  token_hmac_secret = {}\n  api_key = {}\nSign connection tokens (HS256, claim `sub`) with the secret; call the HTTP API with `X-API-Key: <api_key>`.",
            dev.path.display(),
            config.token_hmac_secret.as_deref().unwrap_or_default(),
            config.api_key.as_deref().unwrap_or_default(),
        );
    }
    Ok(Some(dev))
}
