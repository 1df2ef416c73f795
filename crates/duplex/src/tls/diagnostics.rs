//! TLS failures in words: a sentence with the usual fix for every certificate and
//! handshake error rustls and webpki report, never a debug dump; and the errors of this
//! crate they become.

use crate::error::Error;
use rustls::{AlertDescription, CertificateError};
use std::io;
use tokio_rustls::rustls;

/// The reason a certificate was rejected, in words with the usual fix: a sentence for
/// every reason, never a debug dump.
pub(crate) fn describe_certificate(reason: &CertificateError) -> String {
    const GIVE_CA: &str = "for a private or self-signed CA, give its certificate as a CA file";
    match reason {
        CertificateError::UnknownIssuer => format!(
            "unknown issuer: it is not signed by a trusted certificate authority ({GIVE_CA})"
        ),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "expired: not valid after {}, now is {} (renew the server's certificate)",
            utc(not_after.as_secs()),
            utc(time.as_secs())
        ),
        CertificateError::Expired => "expired (renew the server's certificate)".into(),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "not valid yet: not valid before {}, now is {} (check the clocks)",
            utc(not_before.as_secs()),
            utc(time.as_secs())
        ),
        CertificateError::NotValidYet => "not valid yet (check the clocks)".into(),
        CertificateError::NotValidForNameContext { .. } => format!(
            "name mismatch: {reason} (connect with a name the certificate lists, or issue \
             one for this name)"
        ),
        CertificateError::NotValidForName => "name mismatch: the certificate is not valid \
            for this host (connect with a name the certificate lists, or issue one for it)"
            .into(),
        CertificateError::Revoked => "revoked by its issuer".into(),
        CertificateError::BadSignature => "bad signature: the certificate was not signed by \
            the key of the issuer it names (is the CA file the right one?)"
            .into(),
        CertificateError::BadEncoding => "malformed: it is not a valid DER X.509 \
            certificate"
            .into(),
        CertificateError::UnhandledCriticalExtension => "it has a critical extension this \
            client does not understand, so it must be refused (RFC 5280)"
            .into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "it is not meant for TLS servers: its extended key usage lacks serverAuth \
             (issue it with extendedKeyUsage=serverAuth)"
                .into()
        }
        CertificateError::UnknownRevocationStatus
        | CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => "its revocation status \
            could not be checked (the revocation list is missing or out of date)"
            .into(),
        #[allow(deprecated)]
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "it is signed with an algorithm this client does not support (use RSA with \
             SHA-256 or better, ECDSA P-256/P-384 or Ed25519)"
                .into()
        }
        CertificateError::InvalidOcspResponse => "the server's OCSP response is invalid".into(),
        CertificateError::ApplicationVerificationFailure => {
            "refused by the application's own check".into()
        }
        CertificateError::Other(other) => match webpki_error(other) {
            Some(e) => describe_webpki(e),
            None => format!("refused by the verifier: {}", other.0),
        },
        _ => "refused for a reason this version of duplex cannot name; please report it".into(),
    }
}

/// The webpki errors rustls passes on as `CertificateError::Other`, in words.
fn describe_webpki(error: &webpki::Error) -> String {
    use webpki::Error as W;
    match error {
        W::CaUsedAsEndEntity => "it is a CA certificate (basicConstraints CA:TRUE) used as \
            the server's own certificate; give exactly this certificate as the CA file to \
            pin it, or issue the server a certificate without CA:TRUE"
            .into(),
        W::EndEntityUsedAsCa => "the chain uses a server certificate (CA:FALSE) as an issuer \
            of another certificate; send the CA's certificate as the intermediate instead"
            .into(),
        W::PathLenConstraintViolated | W::MaximumPathDepthExceeded => "the chain is longer \
            than its CA allows (pathLenConstraint) or than 6 certificates"
            .into(),
        W::NameConstraintViolation => "a name in it is outside the names its CA may certify \
            (name constraints)"
            .into(),
        #[allow(deprecated)]
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) | W::EmptyEkuExtension => {
            "it is not meant for TLS servers: its extended key usage lacks serverAuth".into()
        }
        W::UnsupportedCertVersion => "it is not an X.509 version 3 certificate".into(),
        W::InvalidCertValidity | W::BadDerTime => "its validity dates are malformed".into(),
        W::MaximumSignatureChecksExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumNameConstraintComparisonsExceeded => "verifying its chain took more \
            work than allowed (too many candidate issuers or names)"
            .into(),
        W::CertDistrusted => "its issuer is distrusted".into(),
        other => format!(
            "malformed or unsupported certificate (webpki reports {other:?}); check it with \
             `openssl x509 -noout -text -in CERT.pem`"
        ),
    }
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// A TLS failure in words, with a hint for the common ones.
pub(crate) fn describe(error: &rustls::Error) -> String {
    match error {
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate (give one with its key)".into()
        }
        rustls::Error::AlertReceived(AlertDescription::UnknownCA) => {
            "the server does not trust the client certificate's issuer".into()
        }
        rustls::Error::AlertReceived(AlertDescription::BadCertificate) => {
            "the server rejected the client certificate".into()
        }
        rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol) => {
            "the server does not speak http/1.1 (ALPN)".into()
        }
        rustls::Error::InvalidMessage(_) => format!(
            "{error} (does the server speak TLS on this port? for a plain server use ws://)"
        ),
        other => other.to_string(),
    }
}

/// The webpki error behind a rustls `CertificateError::Other`, if it is one.
pub(super) fn webpki_error(other: &rustls::OtherError) -> Option<&webpki::Error> {
    let inner: &(dyn std::error::Error + 'static) = &*other.0;
    inner.downcast_ref::<webpki::Error>()
}

/// The error of a failed TLS handshake with `host`: [`Error::Certificate`] or
/// [`Error::Tls`] when rustls caused it, [`Error::TlsIo`] when the transport did.
pub(super) fn io_error(e: io::Error, host: &str) -> Error {
    match rustls_cause(e) {
        Ok(tls) => from_rustls(tls, host),
        Err(source) => Error::TlsIo {
            host: host.to_owned(),
            source,
        },
    }
}

/// The rustls error inside an I/O error, or the I/O error as it was.
fn rustls_cause(e: io::Error) -> Result<rustls::Error, io::Error> {
    if !e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        return Err(e);
    }
    let kind = e.kind();
    match e
        .into_inner()
        .map(|inner| inner.downcast::<rustls::Error>())
    {
        Some(Ok(tls)) => Ok(*tls),
        Some(Err(inner)) => Err(io::Error::new(kind, inner)),
        None => Err(io::Error::from(kind)),
    }
}

/// Maps I/O errors caused by rustls inside an error from a later step (the WebSocket
/// handshake over TLS: with TLS 1.3 a server's verdict on the client certificate arrives
/// after the client finished its side of the TLS handshake).
pub(crate) fn after_handshake(e: Error, host: &str) -> Error {
    match e {
        Error::Io(io) => match rustls_cause(io) {
            Ok(tls) => from_rustls(tls, host),
            Err(io) => Error::Io(io),
        },
        other => other,
    }
}

fn from_rustls(error: rustls::Error, host: &str) -> Error {
    match error {
        rustls::Error::InvalidCertificate(reason) => Error::Certificate {
            host: host.to_owned(),
            reason,
        },
        error => Error::Tls {
            host: host.to_owned(),
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_609_459_200), "2021-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_827_696), "2000-02-29 12:34:56 UTC");
        assert_eq!(super::utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }
}
