//! TLS to PostgreSQL with rustls. `verify-full` checks the chain against the RDS CA bundle built into the binary
//! (or the PEM named by `ca_bundle_key`) and the host name; `verify-ca` checks the chain only; `require` encrypts
//! without checking, like libpq (pg.rs then sends a password only through SCRAM with channel binding).

use crate::error::Fault;
use grant_model::SslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// Amazon RDS root CAs for every commercial region (RSA2048/RSA4096/ECC384 G1).
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-global-bundle.pem");

/// The rustls config for a mode, or None for `disable`.
pub fn client_config(mode: SslMode, ca_bundle: Option<&[u8]>) -> Result<Option<ClientConfig>, Fault> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Fault::Settings(format!("TLS: {e}")))?;
    let config = match mode {
        SslMode::Disable => return Ok(None),
        SslMode::Require => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(EncryptOnly(provider))).with_no_client_auth()
        }
        SslMode::VerifyCa => {
            let chain = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(ca_bundle.unwrap_or(RDS_CA_BUNDLE))?),
                provider,
            )
            .build()
            .map_err(|e| Fault::Settings(format!("TLS: {e}")))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyName(chain))).with_no_client_auth()
        }
        SslMode::VerifyFull => {
            builder.with_root_certificates(roots(ca_bundle.unwrap_or(RDS_CA_BUNDLE))?).with_no_client_auth()
        }
    };
    Ok(Some(config))
}

fn roots(pem: &[u8]) -> Result<RootCertStore, Fault> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| Fault::Settings(format!("CA bundle is not valid PEM: {e}")))?;
        store.add(cert).map_err(|e| Fault::Settings(format!("CA bundle certificate rejected: {e}")))?;
    }
    if store.is_empty() {
        return Err(Fault::Settings("CA bundle holds no certificate".into()));
    }
    Ok(store)
}

/// `sslmode=require`: the server's certificate is not checked (signatures still are, so the handshake is sound).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the full check, except that a certificate for another host name is accepted. rustls's
/// `WebPkiServerVerifier::verify_server_cert` (0.23) checks the name only once the chain, validity period and
/// signatures passed, so a name error means all else was fine; every other error (unknown issuer, expired, bad
/// signature, ...) still fails the handshake.
#[derive(Debug)]
struct AnyName<V>(Arc<V>);

fn accept_any_name(result: Result<ServerCertVerified, rustls::Error>) -> Result<ServerCertVerified, rustls::Error> {
    match result {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Ok(ServerCertVerified::assertion()),
        other => other,
    }
}

impl<V: ServerCertVerifier> ServerCertVerifier for AnyName<V> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        accept_any_name(self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_bundle_loads() {
        assert!(roots(RDS_CA_BUNDLE).unwrap().len() >= 80);
        assert!(client_config(SslMode::VerifyFull, None).unwrap().is_some());
        assert!(client_config(SslMode::VerifyCa, None).unwrap().is_some());
        assert!(client_config(SslMode::Require, None).unwrap().is_some());
        assert!(client_config(SslMode::Disable, None).unwrap().is_none());
        assert!(client_config(SslMode::VerifyFull, Some(b"not pem")).is_err());
        assert!(client_config(SslMode::VerifyCa, Some(b"not pem")).is_err());
    }

    #[test]
    fn verify_ca_forgives_only_the_host_name() {
        let name_errors = [
            CertificateError::NotValidForName,
            CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("db.example").unwrap(),
                presented: vec!["DnsName(\"other.example\")".into()],
            },
        ];
        for error in name_errors {
            assert!(accept_any_name(Err(rustls::Error::InvalidCertificate(error))).is_ok());
        }
        let still_fatal = [
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            rustls::Error::InvalidCertificate(CertificateError::Expired),
            rustls::Error::InvalidCertificate(CertificateError::BadSignature),
            rustls::Error::InvalidCertificate(CertificateError::Revoked),
            rustls::Error::General("anything else".into()),
        ];
        for error in still_fatal {
            assert_eq!(accept_any_name(Err(error.clone())).unwrap_err(), error);
        }
    }
}
