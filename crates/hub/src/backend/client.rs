//! The HTTP(S) client behind backend proxies (and JWKS): one pooled hyper client, every
//! call bounded by a timeout and every answer by a size.

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The largest answer read, in bytes: more is an error, never a bigger allocation.
pub const MAX_ANSWER: usize = 1 << 20;

/// Why a call produced no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No endpoint is configured for the event.
    #[error("no endpoint is configured")]
    NotConfigured,
    /// The backend could not be reached (refused, DNS, TLS).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No complete answer within `proxy.timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The backend answered with a status other than 200.
    #[error("HTTP status {0}")]
    Status(StatusCode),
    /// The answer is not what the protocol allows.
    #[error("{0}")]
    Garbage(String),
}

/// A pooled client for `http://` and `https://` URLs.
pub struct HttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client whose calls take at most `timeout` each, connect included.
    pub fn new(timeout: Duration) -> Self {
        // The library's TLS settings (system roots); without any, the bundled roots.
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match duplex::tls::ClientTls::new().build() {
            Ok(config) => {
                // hyper-rustls sets ALPN itself (from enable_http1).
                let mut config = (*config).clone();
                config.alpn_protocols.clear();
                builder.with_tls_config(config)
            }
            Err(e) => {
                tracing::warn!(error = %e, "no system root certificates; https backends are checked against the bundled webpki roots");
                builder.with_webpki_roots()
            }
        };
        let https = builder.https_or_http().enable_http1().build();
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
        }
    }

    /// POSTs `body` as JSON with `headers`; the answer's body when the status is 200.
    pub async fn post(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        body: Vec<u8>,
    ) -> Result<Bytes, CallError> {
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        request.headers_mut().extend(headers.clone());
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        self.fetch(request).await
    }

    /// GETs `uri`; the answer's body when the status is 200.
    pub async fn get(&self, uri: &Uri) -> Result<Bytes, CallError> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = uri.clone();
        self.fetch(request).await
    }

    async fn fetch(&self, request: Request<Full<Bytes>>) -> Result<Bytes, CallError> {
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| CallError::Unreachable(error_chain(&e)))?;
            if response.status() != StatusCode::OK {
                return Err(CallError::Status(response.status()));
            }
            Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| {
                    CallError::Garbage(format!("answer unreadable or over {MAX_ANSWER} bytes: {e}"))
                })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(CallError::Timeout(self.timeout)))
    }
}

/// hyper's errors say little at the top ("client error (Connect)"); the causes say why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
