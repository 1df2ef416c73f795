//! Real proxy and server programs from Debian packages (tinyproxy, microsocks, nginx) for
//! the integration tests, started on 127.0.0.1 ephemeral ports in scratch directories and
//! stopped by PID on drop; echo servers in the test process; test certificates.
//!
//! A missing program fails the test with a message to run `scripts/setup-deps`: these
//! tests never skip.
#![allow(dead_code)] // each test binary uses its own part

use duplex::tls::TlsAcceptor;
use duplex::ServerTls;
use futures_util::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::net::{Ipv4Addr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "duplex-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of an installed program (PATH, then the sbin directories, where Debian puts
/// nginx). Panics, failing the test, when it is missing.
pub fn program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(
        ["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"]
            .iter()
            .map(PathBuf::from),
    );
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` (Debian package {package}) is not installed: run scripts/setup-deps, \
         which installs it"
    );
}

/// A port that was free a moment ago (the programs here cannot report one they chose).
pub fn free_port() -> u16 {
    StdListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port nothing listens on (bound then closed: connections are refused).
pub fn closed_port() -> u16 {
    free_port()
}

/// A program listening on 127.0.0.1:`port`, killed by PID when dropped. Its stdout and
/// stderr go to `NAME.log` in its scratch directory.
pub struct Daemon {
    pub name: String,
    pub port: u16,
    pub dir: Scratch,
    child: Child,
}

impl Daemon {
    /// Starts a program on a free port. `setup` gets the port and the scratch directory
    /// and returns the command line (writing any config file it needs). Retries on
    /// another port if the program exits before listening (the port was taken meanwhile).
    pub fn start(name: &str, setup: impl Fn(u16, &Scratch) -> Command) -> Daemon {
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = Scratch::new(name);
            let port = free_port();
            let log_path = dir.path(&format!("{name}.log"));
            let log = std::fs::File::create(&log_path).unwrap();
            let mut cmd = setup(port, &dir);
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
            let mut daemon = Daemon {
                name: name.to_owned(),
                port,
                dir,
                child,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = daemon.child.try_wait() {
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    eprintln!("{name} exited with {status} before listening; log:\n{last_log}");
                    break;
                }
                if StdStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                    return daemon;
                }
                if Instant::now() > deadline {
                    panic!("{name} did not listen on 127.0.0.1:{port} within 10 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("{name} did not start; last log:\n{last_log}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the program logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path(&format!("{}.log", self.name))).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Child::kill signals this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A duplex echo server in this process on 127.0.0.1:0; returns its port.
pub async fn echo_server() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(echo(tcp));
        }
    });
    port
}

/// The same over TLS with `acceptor`.
pub async fn tls_echo_server(acceptor: TlsAcceptor) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    echo(tls).await;
                }
            });
        }
    });
    port
}

async fn echo<S: duplex::Io>(stream: S) {
    let Ok(mut ws) = duplex::accept(stream).await else {
        return;
    };
    while let Some(Ok(m)) = ws.next().await {
        if m.is_data() && ws.send(m).await.is_err() {
            break;
        }
    }
}

/// A test CA and a server certificate for `localhost` and `127.0.0.1`, written as PEM
/// files: `ca.pem`, `server.crt`, `server.key`.
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    pub fn new(dir: &Scratch) -> Certs {
        Self::named(dir, "duplex test CA")
    }

    /// Another, independent CA (for "unknown issuer" cases).
    pub fn named(dir: &Scratch, ca_name: &str) -> Certs {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, ca_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "duplex test server");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let prefix = ca_name.replace(' ', "-");
        Certs {
            ca: dir.write(&format!("{prefix}-ca.pem"), &issuer.pem()),
            cert: dir.write(&format!("{prefix}-server.crt"), &cert.pem()),
            key: dir.write(&format!("{prefix}-server.key"), &key.serialize_pem()),
        }
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        ServerTls::new(&self.cert, &self.key).acceptor().unwrap()
    }
}

/// `path` as a string for a config file.
pub fn s(path: &Path) -> String {
    path.display().to_string()
}

/// tinyproxy allowing `CONNECT` to `connect_ports` only, requiring `auth` (user,
/// password) with BasicAuth when given.
pub fn tinyproxy(connect_ports: &[u16], auth: Option<(&str, &str)>) -> Daemon {
    let bin = program("tinyproxy", "tinyproxy-bin");
    Daemon::start("tinyproxy", |port, dir| {
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 32\nAllow 127.0.0.1\n\
             LogLevel Info\nDisableViaHeader Yes\n"
        );
        // Without ConnectPort lines tinyproxy allows CONNECT to any port: list them.
        for p in connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        if let Some((user, pass)) = auth {
            conf.push_str(&format!("BasicAuth {user} {pass}\n"));
        }
        let path = dir.write("tinyproxy.conf", &conf);
        let mut cmd = Command::new(&bin);
        cmd.arg("-d").arg("-c").arg(path);
        cmd
    })
}

/// microsocks (SOCKS5), requiring `auth` (user, password) when given.
pub fn microsocks(auth: Option<(&str, &str)>) -> Daemon {
    let bin = program("microsocks", "microsocks");
    Daemon::start("microsocks", |port, _dir| {
        let mut cmd = Command::new(&bin);
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, pass)) = auth {
            cmd.args(["-u", user, "-P", pass]);
        }
        cmd
    })
}

/// Debian's dynamic module for nginx's `stream` block (package libnginx-mod-stream).
pub const NGINX_STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// nginx in the foreground as one process (`daemon off; master_process off;`) with its
/// prefix, pid file, logs and temp paths in its scratch directory. `body(port, dir)`
/// returns the `http { ... }` or `stream { ... }` block; `stream` loads the stream module.
pub fn nginx(stream: bool, body: impl Fn(u16, &Scratch) -> String) -> Daemon {
    let bin = program("nginx", "nginx");
    if stream && !Path::new(NGINX_STREAM_MODULE).is_file() {
        panic!(
            "{NGINX_STREAM_MODULE} (Debian package libnginx-mod-stream) is not installed: \
             run scripts/setup-deps, which installs it"
        );
    }
    Daemon::start("nginx", |port, dir| {
        let d = s(&dir.0);
        let load = if stream {
            format!("load_module {NGINX_STREAM_MODULE};\n")
        } else {
            String::new()
        };
        let conf = format!(
            "{load}daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 64; }}\n{}\n",
            body(port, dir)
        );
        let path = dir.write("nginx.conf", &conf);
        let mut cmd = Command::new(&bin);
        cmd.arg("-p")
            .arg(format!("{d}/"))
            .arg("-e")
            .arg("stderr")
            .arg("-c")
            .arg(path);
        cmd
    })
}

/// The temp-path lines an `http` block needs so nginx writes nothing outside `dir`.
pub fn nginx_http_temp_paths(dir: &Scratch) -> String {
    let d = s(&dir.0);
    format!(
        "client_body_temp_path {d}/client_body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n"
    )
}
