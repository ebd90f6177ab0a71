//! A throwaway CA and a server certificate (by default for 127.0.0.1/localhost), made with the openssl CLI, for
//! TLS tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct ServerFiles {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_pem: Vec<u8>,
}

/// The server certificate's names (subjectAltName) when a test names none.
pub const DEFAULT_NAMES: &str = "IP:127.0.0.1,DNS:localhost";

/// The key type of a throwaway CA and its server certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA P-256, signed with SHA-256.
    #[default]
    P256,
    /// Ed25519: a certificate signature without a hash function, so no `tls-server-end-point` channel binding
    /// data (RFC 5929 defines it by the signature's hash).
    Ed25519,
}

impl KeyType {
    fn newkey(self) -> &'static [&'static str] {
        match self {
            KeyType::P256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
            KeyType::Ed25519 => &["-newkey", "ed25519", "-nodes"],
        }
    }
}

/// A CA and a server certificate for `names` (subjectAltName syntax, e.g. `DNS:db.example`) it signed.
pub fn server_certificate(dir: &Path, names: &str, key: KeyType) -> ServerFiles {
    fs::create_dir_all(dir).expect("create tls dir");
    let ec = key.newkey();
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["-subj", "/CN=jit-access test CA"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[&["req"][..], ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=jit-access test server"]]
            .concat(),
    );
    let extensions = dir.join("server.ext");
    fs::write(
        &extensions,
        format!(
            "subjectAltName={names}\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("write server.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    let key = dir.join("server.key");
    // PostgreSQL refuses a key file others can read.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod server.key");
    ServerFiles {
        dir: dir.to_path_buf(),
        cert: dir.join("server.pem"),
        key,
        ca_pem: fs::read(dir.join("ca.pem")).expect("read ca.pem"),
    }
}

/// The certificate (PEM) of a CA no test server uses: what a client must refuse to trust. It has the same subject
/// as every test CA but its own key, so a chain to it fails on the signature.
pub fn unrelated_ca() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("create temp dir");
    server_certificate(dir.path(), DEFAULT_NAMES, KeyType::default()).ca_pem
}

fn openssl(dir: &Path, args: &[&str]) {
    let out =
        Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}
