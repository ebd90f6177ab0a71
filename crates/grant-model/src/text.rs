//! What a free-text request field may hold. Every such field ends up in the table, the audit history, events
//! and logs, where invisible characters mislead a reader: U+202E shows `alice\u{202e}moc.elpmaxe@` as
//! `alice@example.com`, U+200B makes two identities look alike, U+2028 breaks a log line. So a field is
//! refused when it holds a character of a Unicode general category that has no business in a name or a
//! sentence.

use crate::error::ClientError;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A required text field: not blank, at most `max` bytes, no refused character (see [`refused`]).
pub fn check(field: &str, value: &str, max: usize) -> Result<(), ClientError> {
    if value.trim().is_empty() {
        return Err(ClientError::invalid_request(format!("{field} must not be empty")));
    }
    if value.len() > max {
        return Err(ClientError::invalid_request(format!("{field} must be at most {max} bytes")));
    }
    if let Some((c, kind)) = value.chars().find_map(|c| refused(c).map(|kind| (c, kind))) {
        return Err(ClientError::invalid_request(format!(
            "{field} must not contain {kind} characters (found U+{:04X})",
            u32::from(c)
        )));
    }
    Ok(())
}

/// An optional text field: checked like [`check`] when present.
pub fn check_optional(field: &str, value: &Option<String>, max: usize) -> Result<(), ClientError> {
    value.as_deref().map_or(Ok(()), |v| check(field, v, max))
}

/// Why `c` is refused, or None. Refused: control (Cc: NUL, tab, new line, ...), format (Cf: bidirectional
/// overrides, zero-width space and joiners, the byte order mark), private use (Co), line and paragraph
/// separators (Zl, Zp), and unassigned code points (Cn, which includes the noncharacters such as U+FFFF).
/// Surrogates (Cs) cannot occur in a Rust string.
pub fn refused(c: char) -> Option<&'static str> {
    match c.general_category() {
        GeneralCategory::Control => Some("control"),
        GeneralCategory::Format => Some("format (invisible)"),
        GeneralCategory::PrivateUse => Some("private-use"),
        GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => Some("line or paragraph separator"),
        GeneralCategory::Unassigned | GeneralCategory::Surrogate => Some("unassigned"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_unassigned_characters_are_refused() {
        for c in ['\0', '\t', '\n', '\u{7f}', '\u{85}', '\u{202e}', '\u{200b}', '\u{200d}', '\u{feff}', '\u{2028}']
            .into_iter()
            .chain(['\u{2029}', '\u{e000}', '\u{f0000}', '\u{fdd0}', '\u{fffe}', '\u{ffff}', '\u{10ffff}', '\u{e0001}'])
        {
            let err = check("reason", &format!("INC-1 {c} late"), 100).unwrap_err();
            assert!(err.message.contains(&format!("U+{:04X}", u32::from(c))), "{c:?}: {}", err.message);
        }
    }

    #[test]
    fn names_and_sentences_in_any_script_are_accepted() {
        for value in ["alice@example.com", "Élodie Müller", "張偉", "O'Brien — INC-4521: fix (50%)", "ok 👍🏽", "a b"]
        {
            check("reason", value, 100).unwrap_or_else(|e| panic!("{value}: {e}"));
        }
    }

    #[test]
    fn blank_and_oversized_values_are_refused() {
        assert!(check("requester", " \u{a0}", 100).unwrap_err().message.contains("empty"));
        assert!(check("requester", &"x".repeat(101), 100).unwrap_err().message.contains("at most 100 bytes"));
        assert!(check_optional("approver", &None, 100).is_ok());
    }
}
