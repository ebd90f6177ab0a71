//! Who someone is: `requester`, `approver`, `actor` and a target's `approvers`. SPEC: identities "are compared
//! case-insensitively after trimming white space". This module is the one place that says what that means;
//! every comparison of two identities goes through [`same_identity`].

/// The form an identity is stored and shown in: leading and trailing white space (Unicode `White_Space`)
/// removed, case kept as the caller wrote it. Requests are cleaned when parsed, so the table, the audit history
/// and events carry `alice@example.com`, not `" alice@example.com "`.
pub fn clean(identity: &str) -> &str {
    identity.trim()
}

/// Whether `a` and `b` name the same person: equal after `clean` (white space trimmed), ignoring case (Unicode
/// lowercase mapping, so `Alice@Example.COM` is `alice@example.com` and `ÉLODIE` is `élodie`).
///
/// Use it for every identity check: an approver who is the requester, an approver in a target's `approvers`
/// list, an actor who is the requester.
pub fn same_identity(a: &str, b: &str) -> bool {
    let lower = |s: &str| clean(s).chars().flat_map(char::to_lowercase).collect::<String>();
    lower(a) == lower(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_space_and_case_do_not_make_another_person() {
        for (a, b) in [
            ("alice@example.com", "alice@example.com"),
            ("alice@example.com", "Alice@Example.COM"),
            (" Alice@x", "alice@x"),
            ("alice@x\u{a0}", "\u{3000}ALICE@x"),
            ("ÉLODIE@x", "élodie@x"),
        ] {
            assert!(same_identity(a, b), "{a:?} vs {b:?}");
            assert!(same_identity(b, a), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn different_people_stay_different() {
        for (a, b) in [("alice@x", "bob@x"), ("alice@x", "alice@y"), ("al ice@x", "alice@x"), ("alice", "")] {
            assert!(!same_identity(a, b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn clean_trims_only_the_ends() {
        assert_eq!(clean("  Alice Smith@x \t"), "Alice Smith@x");
    }
}
