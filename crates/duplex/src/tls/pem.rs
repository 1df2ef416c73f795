//! PEM files: certificates and keys, with a reason and a fix for every way they go wrong.

use crate::error::Error;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::Path;
use tokio_rustls::rustls;

fn file_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::TlsFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        let reason = match e.kind() {
            io::ErrorKind::NotFound => {
                let cwd = match std::env::current_dir() {
                    Ok(dir) if path.is_relative() => {
                        format!(" (relative paths start at {})", dir.display())
                    }
                    _ => String::new(),
                };
                format!("no such file: check the path{cwd}")
            }
            io::ErrorKind::PermissionDenied => {
                "permission denied: make it readable by this user".into()
            }
            _ => format!("cannot read it: {e}"),
        };
        file_error(path, reason)
    })
}

fn pem_error(path: &Path, e: pem::Error) -> Error {
    file_error(path, format!("not a valid PEM file ({e})"))
}

/// Every certificate of a chain file. `other` is the matching key file, named in the hint
/// when the two look swapped.
pub(super) fn read_certificates(
    path: &Path,
    other: &Path,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        let reason = if PrivateKeyDer::from_pem_slice(&pem).is_ok() {
            format!(
                "it holds a private key but no certificate: did you swap the certificate \
                 and key files? (the file given as the key is {})",
                other.display()
            )
        } else {
            no_certificate_reason(&pem)
        };
        return Err(file_error(path, reason));
    }
    Ok(certs)
}

/// The certificates of a CA bundle.
pub(super) fn read_ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, no_certificate_reason(&pem)));
    }
    Ok(certs)
}

fn no_certificate_reason(pem: &[u8]) -> String {
    if PrivateKeyDer::from_pem_slice(pem).is_ok() {
        "it holds a private key but no certificate: a PEM file with -----BEGIN \
         CERTIFICATE----- blocks is expected"
            .into()
    } else if pem.first() == Some(&0x30) {
        "no PEM certificate in it; it looks like DER: convert it with \
         `openssl x509 -inform der -in FILE -out FILE.pem`"
            .into()
    } else {
        "no certificate in it: a PEM file with -----BEGIN CERTIFICATE----- blocks is expected"
            .into()
    }
}

/// The private key of a key file. `other` is the matching certificate file.
pub(super) fn read_private_key(path: &Path, other: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = read_file(path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let text = String::from_utf8_lossy(&pem);
            let reason = if text.contains("ENCRYPTED PRIVATE KEY") {
                "the private key is encrypted, which is not supported: decrypt it with \
                 `openssl pkey -in FILE -out key.pem`"
                    .to_owned()
            } else if text.contains("BEGIN CERTIFICATE") {
                format!(
                    "it holds a certificate but no private key: did you swap the certificate \
                     and key files? (the file given as the certificate is {})",
                    other.display()
                )
            } else {
                "no private key in it: a PEM file with a -----BEGIN PRIVATE KEY----- (or RSA \
                 / EC PRIVATE KEY) block is expected"
                    .to_owned()
            };
            Err(file_error(path, reason))
        }
        Err(e) => Err(pem_error(path, e)),
    }
}

pub(super) fn key_error(e: rustls::Error, cert_path: &Path, key_path: &Path) -> Error {
    let reason = match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
            "this private key does not belong to the certificate in {}: give the key that was \
             generated with that certificate (the chain file must start with the certificate \
             for this key)",
            cert_path.display()
        ),
        e => format!("the private key cannot be used: {e}"),
    };
    file_error(key_path, reason)
}
