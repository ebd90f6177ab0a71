//! Generated passwords. The plaintext exists only in memory and in the grant response; PostgreSQL receives a
//! SCRAM-SHA-256 verifier computed here, so neither its log nor `pg_stat_statements` can leak the password.

use rand::RngExt;
use std::fmt;

pub const PASSWORD_LEN: usize = 40;
// Letters and digits only: safe in a connection string, a shell, or a URL without escaping.
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A generated password. Debug and Display never show it; `expose` is the one door out.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// 40 characters from a CSPRNG: ~238 bits.
    pub fn generate() -> Password {
        let mut rng = rand::rng();
        Password(
            (0..PASSWORD_LEN)
                .map(|_| PASSWORD_ALPHABET[rng.random_range(0..PASSWORD_ALPHABET.len())] as char)
                .collect(),
        )
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>`, fresh salt each call; what `CREATE ROLE ... PASSWORD`
    /// stores as is.
    /// What MySQL's `mysql_native_password` stores: `*` and SHA1(SHA1(password)) in upper-case hex. Sent in
    /// `IDENTIFIED WITH mysql_native_password AS '...'`, so the server (and its general log) never sees the
    /// password itself.
    pub fn mysql_native_hash(&self) -> String {
        use sha1::{Digest, Sha1};
        let twice = Sha1::digest(Sha1::digest(self.0.as_bytes()));
        let hex: String = twice.iter().map(|b| format!("{b:02X}")).collect();
        format!("*{hex}")
    }

    pub fn scram_verifier(&self) -> String {
        postgres_protocol::password::scram_sha_256(self.0.as_bytes())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An RDS IAM authentication token: a presigned URL that works as a password for 15 minutes. Debug never shows
/// it; `expose` is the one door out.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    pub fn new(token: String) -> AuthToken {
        AuthToken(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hidden() {
        let token = AuthToken::new("host:5432/?Action=connect&X-Amz-Signature=abc".into());
        assert!(!format!("{token:?}").contains("Signature"));
    }

    #[test]
    fn long_random_and_hidden() {
        let a = Password::generate();
        let b = Password::generate();
        assert_eq!(a.expose().len(), PASSWORD_LEN);
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn mysql_native_hash_matches_the_server() {
        // SELECT PASSWORD('password') on MySQL 5.7 / MariaDB 10.11.
        let hash = Password("password".into()).mysql_native_hash();
        assert_eq!(hash, "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19");
    }

    #[test]
    fn verifier_has_postgres_format_and_hides_the_password() {
        let password = Password::generate();
        let verifier = password.scram_verifier();
        assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
        assert!(!verifier.contains(password.expose()));
        assert_ne!(verifier, password.scram_verifier(), "each verifier gets a fresh salt");
        let (_, keys) = verifier.split_once('$').unwrap().1.split_once('$').unwrap();
        assert_eq!(keys.split(':').count(), 2);
    }
}
