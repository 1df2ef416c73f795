use super::*;
use std::io::Write;
use std::path::Path;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn key_error(result: Result<Config, ConfigError>) -> (String, String) {
    match result {
        Err(ConfigError::Key { key, message }) => (key, message),
        other => panic!("expected a key error, got {other:?}"),
    }
}

#[test]
fn no_configuration_gives_the_documented_defaults() {
    let config = Config::load(None, env(&[]), &Overrides::default()).unwrap();
    assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 8080));
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.engine, EngineKind::Sqlite);
    assert_eq!(config.channels.history_size, 1000);
    assert_eq!(config.channels.history_ttl, Duration::from_secs(86400));
    assert!(config.channels.presence && !config.channels.join_leave);
    assert!(config.channels.allow_subscribe_for_client);
    assert!(!config.channels.allow_publish_for_subscriber);
}

#[test]
fn flags_override_the_environment_which_overrides_the_file() {
    let f = file(
        "port = 1000\nhost = \"0.0.0.0\"\nengine = \"memory\"\n[channels]\nhistory_size = 5\n",
    );
    let from_file = Config::load(Some(f.path()), env(&[]), &Overrides::default()).unwrap();
    assert_eq!((from_file.port, from_file.host.as_str()), (1000, "0.0.0.0"));
    assert_eq!(from_file.engine, EngineKind::Memory);
    let e = env(&[
        ("DUPLEX_PORT", "2000"),
        ("DUPLEX_CHANNELS_HISTORY_SIZE", "7"),
    ]);
    let from_env = Config::load(Some(f.path()), e.clone(), &Overrides::default()).unwrap();
    assert_eq!((from_env.port, from_env.channels.history_size), (2000, 7));
    let mut flags = Overrides::default();
    flags.set("port", 3000);
    let from_flag = Config::load(Some(f.path()), e, &flags).unwrap();
    assert_eq!((from_flag.port, from_flag.host.as_str()), (3000, "0.0.0.0"));
    assert_eq!(from_flag.channels.history_size, 7);
}

#[test]
fn namespaces_inherit_channels_and_override_what_they_set() {
    let f = file(
        "[channels]\nhistory_size = 50\n[namespaces.chat]\nallow_publish_for_subscriber = true\njoin_leave = true\n[namespaces.ticker]\nhistory_ttl = \"1h\"\n",
    );
    let config = Config::load(Some(f.path()), env(&[]), &Overrides::default()).unwrap();
    let channels = Channels::new(&config);
    let chat = channels.options("chat:lobby").unwrap();
    assert!(chat.allow_publish_for_subscriber && chat.join_leave);
    assert_eq!(chat.history_size, 50);
    let ticker = channels.options("ticker:BTC-USD").unwrap();
    assert_eq!(ticker.history_ttl, Duration::from_secs(3600));
    assert!(!ticker.allow_publish_for_subscriber);
    assert_eq!(channels.options("plain").unwrap().history_size, 50);
    assert!(channels.options("nosuch:x").is_none(), "unknown namespace");
    assert!(channels.options("").is_none());
    assert!(channels.options(&"a".repeat(MAX_CHANNEL_LEN)).is_some());
    assert!(channels.options(&"a".repeat(MAX_CHANNEL_LEN + 1)).is_none());
    assert!(channels.options("bad\nname").is_none());
}

#[test]
fn an_unknown_key_names_the_key_and_the_file() {
    let f = file("[channels]\nhistroy_size = 5\n");
    let (key, message) = key_error(Config::load(
        Some(f.path()),
        env(&[]),
        &Overrides::default(),
    ));
    assert_eq!(key, "channels.histroy_size");
    assert!(
        message.contains("unknown field") && message.contains("history_size"),
        "{message}"
    );
    let f = file("[namespaces.chat]\nbogus = 1\n");
    let (key, _) = key_error(Config::load(
        Some(f.path()),
        env(&[]),
        &Overrides::default(),
    ));
    assert_eq!(key, "namespaces.chat.bogus");
}

#[test]
fn bad_values_name_the_key_the_source_and_the_fix() {
    let f = file("engine = \"postgres\"\n");
    let (key, message) = key_error(Config::load(
        Some(f.path()),
        env(&[]),
        &Overrides::default(),
    ));
    assert_eq!(key, "engine");
    assert!(
        message.contains("sqlite") && message.contains(&f.path().display().to_string()),
        "{message}"
    );

    let (key, message) = key_error(Config::load(
        None,
        env(&[("DUPLEX_PORT", "eighty")]),
        &Overrides::default(),
    ));
    assert_eq!(key, "port");
    assert!(message.contains("DUPLEX_PORT"), "{message}");

    let (key, message) = key_error(Config::load(
        None,
        env(&[("DUPLEX_PORT", "70000")]),
        &Overrides::default(),
    ));
    assert_eq!(key, "port");
    assert!(message.contains("DUPLEX_PORT"), "{message}");

    let (key, message) = key_error(Config::load(
        None,
        env(&[("DUPLEX_CHANNELS_HISTORY_TTL", "a day")]),
        &Overrides::default(),
    ));
    assert_eq!(key, "channels.history_ttl");
    assert!(message.contains("24h"), "{message}");

    let mut flags = Overrides::default();
    flags.set("token_hmac_secret", "short");
    let (key, message) = key_error(Config::load(None, env(&[]), &flags));
    assert_eq!(key, "token_hmac_secret");
    assert!(message.contains("openssl rand"), "{message}");

    let f = file("[channels]\nhistory_size = 0\n");
    let (key, _) = key_error(Config::load(
        Some(f.path()),
        env(&[]),
        &Overrides::default(),
    ));
    assert_eq!(key, "channels.history_size");

    let f = file("[namespaces.\"a b\"]\n");
    let (key, _) = key_error(Config::load(
        Some(f.path()),
        env(&[]),
        &Overrides::default(),
    ));
    assert_eq!(key, "namespaces.a b");
}

#[test]
fn an_unknown_environment_variable_is_an_error() {
    match Config::load(None, env(&[("DUPLEX_PROT", "1")]), &Overrides::default()) {
        Err(ConfigError::UnknownVariable { name }) => assert_eq!(name, "DUPLEX_PROT"),
        other => panic!("{other:?}"),
    }
    // Other variables are not ours to judge.
    Config::load(None, env(&[("PATH", "/bin")]), &Overrides::default()).unwrap();
}

#[test]
fn a_broken_file_says_where() {
    let f = file("port = \n");
    match Config::load(Some(f.path()), env(&[]), &Overrides::default()) {
        Err(ConfigError::Syntax { message, .. }) => {
            assert!(message.contains("line 1"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match Config::load(
        Some(Path::new("/nonexistent/duplex.toml")),
        env(&[]),
        &Overrides::default(),
    ) {
        Err(e @ ConfigError::Read { .. }) => {
            assert!(e.to_string().contains("/nonexistent/duplex.toml"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn user_limited_channels_belong_to_the_users_after_the_hash() {
    assert!(user_may_use("dialog:#alice,bob", "alice"));
    assert!(user_may_use("dialog:#alice,bob", "bob"));
    assert!(!user_may_use("dialog:#alice,bob", "carol"));
    assert!(!user_may_use("dialog:#alice,bob", "ali"));
    assert!(
        !user_may_use("dialog:#alice,bob", ""),
        "anonymous is nobody's"
    );
    assert!(user_may_use("notes:#alice", "alice"));
    assert!(!user_may_use("notes:#", "alice"));
    assert!(user_may_use("chat:lobby", "anyone"));
}

#[test]
fn token_public_keys_are_read_at_load_and_a_bad_one_is_named() {
    let mut flags = Overrides::default();
    flags.set("token_rsa_public_key", "/nonexistent/key.pem");
    let (key, message) = key_error(Config::load(None, env(&[]), &flags));
    assert_eq!(key, "token_rsa_public_key");
    assert!(message.contains("/nonexistent/key.pem"), "{message}");
    let mut flags = Overrides::default();
    flags.set(
        "token_ecdsa_public_key",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/rsa_public.pem"),
    );
    let (key, _) = key_error(Config::load(None, env(&[]), &flags));
    assert_eq!(
        key, "token_ecdsa_public_key",
        "an RSA key where an EC key belongs"
    );
    let mut flags = Overrides::default();
    flags.set(
        "token_ecdsa_public_key",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/ec_public.pem"),
    );
    let config = Config::load(None, env(&[]), &flags).unwrap();
    let keys = config.token_keys().unwrap();
    assert!(keys.ecdsa.is_some() && keys.hmac.is_none() && keys.rsa.is_none());
}

#[test]
fn max_channel_length_is_configurable() {
    let mut flags = Overrides::default();
    flags.set("max_channel_length", 8);
    let config = Config::load(None, env(&[]), &flags).unwrap();
    let channels = Channels::new(&config);
    assert!(channels.options("12345678").is_some());
    assert!(channels.options("123456789").is_none());
}
