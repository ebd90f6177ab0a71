//! Human output: aligned tables, times as RFC 3339 plus how far from now. Scripts use `--json` instead.

use chrono::{DateTime, Utc};
use comfy_table::{presets, Table};
use grant_model::grant::format_time;
use grant_model::Grant;
use serde_json::Value;

pub fn active(grants: &[Grant], now: DateTime<Utc>) -> String {
    if grants.is_empty() {
        return "no live grants\n".into();
    }
    let mut table = table(["GRANT ID", "REQUESTER", "DATABASE", "TARGET", "DB USER", "ROLES", "STATUS", "EXPIRES"]);
    for g in grants {
        table.add_row([
            g.grant_id().to_string(),
            g.requester().to_string(),
            g.database().to_string(),
            g.target().to_string(),
            g.db_user().to_string(),
            g.roles().join(","),
            g.status().to_string(),
            relative(g.expires_at(), now),
        ]);
    }
    format!("{table}\n{} live grant(s)\n", grants.len())
}

pub fn detail(g: &Grant, now: DateTime<Utc>) -> String {
    let mut fields = table(["FIELD", "VALUE"]);
    let optional = |value: Option<&str>| value.unwrap_or("-").to_string();
    let time = |value: Option<DateTime<Utc>>| value.map_or_else(|| "-".into(), format_time);
    let rows = [
        ("grant_id", g.grant_id().to_string()),
        ("status", g.status().to_string()),
        ("requester", g.requester().to_string()),
        ("approver", optional(g.approver())),
        ("reason", g.reason().to_string()),
        ("request_id", optional(g.request_id())),
        ("database", g.database().to_string()),
        ("target", format!("{} ({})", g.target(), g.strategy().as_str())),
        ("db_user", g.db_user().to_string()),
        ("roles", g.roles().join(",")),
        ("created_at", format_time(g.created_at())),
        ("activated_at", time(g.activated_at())),
        ("expires_at", format!("{} ({})", format_time(g.expires_at()), relative(g.expires_at(), now))),
        ("revoked_at", time(g.revoked_at())),
        ("revoked_by", optional(g.revoked_by())),
        ("revoke_attempts", g.revoke_attempts().to_string()),
        ("last_error", optional(g.last_error())),
    ];
    for (name, value) in rows {
        fields.add_row([name.to_string(), value]);
    }
    let mut history = table(["AT", "FROM", "TO", "ACTOR", "NOTE"]);
    for h in g.history() {
        let from = h.from.map_or_else(|| "-".into(), |s| s.to_string());
        history.add_row([format_time(h.at), from, h.to.to_string(), h.actor.clone(), h.note.clone()]);
    }
    format!("{fields}\n\nhistory:\n{history}\n")
}

pub fn history(requester: &str, grants: &[Grant], now: DateTime<Utc>) -> String {
    if grants.is_empty() {
        return format!("no grants for {requester}\n");
    }
    let mut table = table(["CREATED", "GRANT ID", "DATABASE", "TARGET", "DB USER", "STATUS", "ENDED", "BY", "REASON"]);
    for g in grants {
        let ended = match (g.revoked_at(), g.status().is_live()) {
            (Some(at), _) => format_time(at),
            (None, true) => format!("expires {}", relative(g.expires_at(), now)),
            (None, false) => "-".into(),
        };
        table.add_row([
            format_time(g.created_at()),
            g.grant_id().to_string(),
            g.database().to_string(),
            g.target().to_string(),
            g.db_user().to_string(),
            g.status().to_string(),
            ended,
            g.revoked_by().map(str::to_string).unwrap_or_else(|| "-".into()),
            g.reason().to_string(),
        ]);
    }
    format!("{table}\n{} grant(s) of {requester}, newest first\n", grants.len())
}

pub fn overdue(grants: &[Grant], now: DateTime<Utc>) -> String {
    if grants.is_empty() {
        return "no overdue grants\n".into();
    }
    let mut table = table(["GRANT ID", "DATABASE", "DB USER", "STATUS", "EXPIRED", "ATTEMPTS", "LAST ERROR"]);
    for g in grants {
        table.add_row([
            g.grant_id().to_string(),
            g.database().to_string(),
            g.db_user().to_string(),
            g.status().to_string(),
            relative(g.expires_at(), now),
            g.revoke_attempts().to_string(),
            g.last_error().map(str::to_string).unwrap_or_else(|| "-".into()),
        ]);
    }
    format!("{table}\n{} overdue grant(s): see the runbook, \"Overdue grants\"\n", grants.len())
}

/// The provisioner's answer to a revoke.
pub fn revoked(response: &Value) -> String {
    let grant = &response["grant"];
    let text = |name: &str| grant[name].as_str().unwrap_or("-").to_string();
    format!(
        "grant {}: {} (db_user {}, revoked_by {})\n",
        text("grant_id"),
        text("status"),
        text("db_user"),
        text("revoked_by")
    )
}

fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_header(header);
    table
}

/// "in 29m 10s" or "12m 00s ago".
pub(crate) fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    if seconds >= 0 {
        format!("in {}", span(seconds))
    } else {
        format!("{} ago", span(-seconds))
    }
}

fn span(seconds: i64) -> String {
    let (days, hours, minutes, secs) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{minutes}m {secs:02}s"),
        (0, _, _) => format!("{hours}h {minutes:02}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |offset: i64| now + chrono::Duration::seconds(offset);
        assert_eq!(relative(at(0), now), "in 0s");
        assert_eq!(relative(at(45), now), "in 45s");
        assert_eq!(relative(at(29 * 60 + 10), now), "in 29m 10s");
        assert_eq!(relative(at(-12 * 60), now), "12m 00s ago");
        assert_eq!(relative(at(3 * 3600 + 5 * 60), now), "in 3h 05m");
        assert_eq!(relative(at(-(2 * 86_400 + 3 * 3600)), now), "2d 3h ago");
    }
}
