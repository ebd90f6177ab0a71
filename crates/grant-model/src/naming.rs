//! How database role names are made and written into SQL. Every identifier that reaches SQL goes through
//! `quote_ident`; every generated name fits PostgreSQL's 63-byte limit (longer names are silently truncated by
//! the server, which would make two grants collide).

use rand::RngExt;

pub const MAX_IDENTIFIER_BYTES: usize = 63;
/// MySQL user names (and so role names) are at most 32 characters; ours are ASCII.
pub const MAX_MYSQL_USER_BYTES: usize = 32;
/// Length of the random part of a temporary user's name: 36^8 ≈ 2.8e12 names per requester.
pub const SUFFIX_LEN: usize = 8;
const SUFFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// The identifier as PostgreSQL would read it: wrapped in double quotes, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    postgres_protocol::escape::escape_identifier(name)
}

/// A string value inlined into a utility statement (CREATE/ALTER ROLE cannot take bind parameters).
pub fn quote_literal(value: &str) -> String {
    postgres_protocol::escape::escape_literal(value)
}

/// Whether `name` can be an existing role's name: non-empty, at most 63 bytes, no NUL or control characters.
pub fn check_identifier(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!("must be at most {MAX_IDENTIFIER_BYTES} bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// A PostgreSQL temporary user's name (see [`temp_username_within`]).
pub fn temp_username(prefix: &str, requester: &str) -> String {
    temp_username_within(prefix, requester, MAX_IDENTIFIER_BYTES)
}

/// `<prefix><from the requester>_<random suffix>`: lowercase `[a-z0-9_]`, at most `max` bytes (the engine's
/// limit, `Engine::max_user_name_bytes`). The requester part is the local part of an email address, other
/// characters folded to `_`, so a DBA can tell whose role it is.
pub fn temp_username_within(prefix: &str, requester: &str, max: usize) -> String {
    let local = requester.split('@').next().unwrap_or_default();
    let mut readable: String =
        local.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    while readable.contains("__") {
        readable = readable.replace("__", "_");
    }
    let readable = readable.trim_matches('_');
    let readable = if readable.is_empty() { "user" } else { readable };
    let room = max.saturating_sub(prefix.len() + 1 + SUFFIX_LEN);
    let readable = &readable[..readable.len().min(room)]; // ASCII only, so any byte index is a char boundary
    format!("{prefix}{readable}_{}", random_suffix())
}

/// Grant ids for requests with a `request_id` are derived from it, so a retry finds its grant by key.
const REQUEST_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a69_742d_6163_6365_7373_2d67_7261_6e74);

/// The grant id of a request: derived from its `request_id` (a retry finds the same row), else random.
pub fn grant_id_for_request(request_id: &str) -> String {
    uuid::Uuid::new_v5(&REQUEST_ID_NAMESPACE, request_id.as_bytes()).to_string()
}

/// The NOLOGIN role every temporary user made under `prefix` is a member of, so the reaper can find orphans
/// from inside the database.
pub fn marker_role(prefix: &str) -> String {
    format!("{prefix}managed")
}

/// The NOLOGIN role, holding no privileges, that receives the objects of revoked temporary users: a view or a
/// SECURITY DEFINER function left behind then runs with no privileges at all.
pub fn retired_role(prefix: &str) -> String {
    format!("{prefix}retired")
}

/// MySQL: the schema holding the expiry events and the procedure they call, which only the admin may change
/// (a temporary user with rights there could drop its own expiry).
pub fn expiry_schema(prefix: &str) -> String {
    format!("{prefix}expiry")
}

/// MySQL: the one-shot event that locks temporary user `user` at its grant's `expires_at`.
pub fn expiry_event(user: &str) -> String {
    format!("expire_{user}")
}

/// The existing database user a `role_escalation` grant is for, when the request names none: the email's
/// local part, `-` as `_`, lowercased (`alice-b@example.com` -> `alice_b`).
pub fn escalation_db_user(requester: &str) -> String {
    let local = requester.split('@').next().unwrap_or_default();
    local.replace('-', "_").to_lowercase()
}

fn random_suffix() -> String {
    // ThreadRng is a CSPRNG seeded from the OS: names cannot be predicted and squatted.
    let mut rng = rand::rng();
    (0..SUFFIX_LEN).map(|_| SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_shaped_names() {
        let name = temp_username("jit_", "Alice.Smith@example.com");
        assert!(name.starts_with("jit_alice_smith_"), "{name}");
        assert_eq!(name.len(), "jit_alice_smith_".len() + SUFFIX_LEN);
        assert_ne!(temp_username("jit_", "a@b"), temp_username("jit_", "a@b"));
        assert!(temp_username("jit_", "@@").starts_with("jit_user_"));
    }

    #[test]
    fn mysql_names_fit_32_characters() {
        let name = temp_username_within("jit_", "a.very.long.requester.name@example.com", MAX_MYSQL_USER_BYTES);
        assert_eq!(name.len(), MAX_MYSQL_USER_BYTES, "{name}");
        assert!(name.starts_with("jit_a_very_long_req"), "{name}");
        let longest_prefix = "p".repeat(crate::config::MAX_USER_PREFIX_BYTES);
        assert!(temp_username_within(&longest_prefix, "bob", MAX_MYSQL_USER_BYTES).len() <= MAX_MYSQL_USER_BYTES);
    }

    #[test]
    fn escalation_user_from_email() {
        assert_eq!(escalation_db_user("Alice-B@example.com"), "alice_b");
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident(r#"a"; DROP ROLE x; --"#), r#""a""; DROP ROLE x; --""#);
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    /// Reads a quoted identifier back the way PostgreSQL's lexer does; None if it is not exactly one.
    fn unquote(quoted: &str) -> Option<String> {
        let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '"' {
                // Inside, a quote must be doubled; a lone one would end the identifier early.
                if chars.next()? != '"' {
                    return None;
                }
            }
            out.push(c);
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn any_requester_gives_a_safe_short_name(prefix in "[a-z][a-z0-9_]{0,19}", requester in any::<String>()) {
            let name = temp_username(&prefix, &requester);
            prop_assert!(name.len() <= MAX_IDENTIFIER_BYTES);
            prop_assert!(name.starts_with(&prefix));
            prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }

        #[test]
        fn quoting_round_trips_any_string(name in any::<String>()) {
            let quoted = quote_ident(&name);
            prop_assert_eq!(unquote(&quoted), Some(name));
        }

        #[test]
        fn escalation_users_are_checked_before_use(requester in any::<String>()) {
            // Whatever comes out is either rejected or safe once quoted.
            let user = escalation_db_user(&requester);
            if check_identifier(&user).is_ok() {
                prop_assert!(user.len() <= MAX_IDENTIFIER_BYTES);
                prop_assert_eq!(unquote(&quote_ident(&user)), Some(user));
            }
        }
    }
}
