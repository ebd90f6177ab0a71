//! The dashboard's HTML. maud escapes every spliced value, in text and in attributes, so a `<script>` in a
//! `reason` or a `requester` is shown as text. No inline style or script: the CSP allows neither.

use super::timeline::{self, Window};
use super::{encode, is_expiring, is_overdue, Context, TimelineData, EXPIRING_WITHIN};
use crate::render::relative;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use grant_model::grant::{format_time, OVERDUE_AFTER_SECONDS};
use grant_model::item::GrantItem;
use maud::{html, Markup, DOCTYPE};
use std::collections::BTreeMap;

/// Seconds between automatic reloads of pages about the present, and of pages about the past.
const REFRESH_LIVE: u32 = 30;
const REFRESH_PAST: u32 = 120;

fn layout(cx: &Context, title: &str, refresh: u32, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(refresh);
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · jit-access" }
                link rel="stylesheet" href="/static/dashboard.css";
            }
            body {
                header {
                    nav {
                        a.brand href="/" { "jit-access" }
                        a href="/" { "Live" }
                        a href="/expiring" { "Expiring" }
                        a href="/overdue" { "Overdue" }
                        a href="/timeline?window=24h" { "Timeline 24 h" }
                        a href="/timeline?window=7d" { "Timeline 7 d" }
                        form.lookup method="get" action="/requesters" {
                            input type="text" name="requester" placeholder="requester" aria-label="requester";
                            button type="submit" { "History" }
                        }
                        form.lookup method="get" action="/grants" {
                            input type="text" name="grant_id" placeholder="grant id" aria-label="grant id";
                            button type="submit" { "Grant" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    p.meta {
                        "As of " time datetime=(format_time(cx.now)) { (format_time(cx.now)) } " (UTC); reloads every "
                        (refresh) " s."
                        @if let Some(link) = &cx.permalink {
                            " Link to this page: " code.permalink { (link) }
                        }
                    }
                    (body)
                }
                footer { "Read-only: GetItem and Query on the grants table. JSON: the same address with "
                    code { "Accept: application/json" } "." }
            }
        }
    }
}

/// An instant as UTC text, with how far it is from now.
fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! { time datetime=(format_time(t)) { (format_time(t)) } " " span.relative { (relative(t, now)) } }
}

fn optional_when(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match t {
        Some(t) => when(t, now),
        None => html! { "–" },
    }
}

fn grant_link(item: &GrantItem) -> Markup {
    let short: String = item.grant_id.chars().take(8).collect();
    html! { a.grant href={"/grants/" (encode(&item.grant_id))} title=(item.grant_id) { (short) } }
}

fn requester_link(requester: &str) -> Markup {
    html! { a.requester href={"/requesters/" (encode(requester))} { (requester) } }
}

fn break_glass_badge(item: &GrantItem) -> Markup {
    html! { @if item.break_glass { " " span.badge.break-glass title="granted without an approver" { "BREAK-GLASS" } } }
}

/// The classes a live grant's row carries: overdue (red), expiring (amber), break-glass (highlighted).
fn row_class(item: &GrantItem, now: DateTime<Utc>) -> String {
    let mut classes = vec!["grant"];
    if is_overdue(item, now) {
        classes.push("overdue");
    } else if is_expiring(item, now) {
        classes.push("expiring");
    }
    if item.break_glass {
        classes.push("break-glass");
    }
    classes.join(" ")
}

/// Time left, or for an overdue grant how late its revocation is.
fn time_left(item: &GrantItem, now: DateTime<Utc>) -> Markup {
    let seconds = (item.expires_at - now).num_seconds();
    html! {
        @if seconds > 0 {
            span.left { (relative(item.expires_at, now)) }
        } @else {
            span.late { "overdue: expired " (relative(item.expires_at, now)) }
            @if -seconds >= OVERDUE_AFTER_SECONDS { " " span.badge.reaper { "reaper late" } }
        }
    }
}

fn live_table(items: &[&GrantItem], now: DateTime<Utc>) -> Markup {
    html! {
        table.grants {
            thead { tr {
                th { "grant" } th { "requester" } th { "target (strategy)" } th { "db_user" } th { "approver" }
                th { "reason" } th { "status" } th { "expires_at (UTC), time left" }
            } }
            tbody {
                @for item in items {
                    tr class=(row_class(item, now)) data-grant-id=(item.grant_id) {
                        td { (grant_link(item)) }
                        td { (requester_link(&item.requester)) (break_glass_badge(item)) }
                        td { (item.target) br; span.strategy { (item.strategy.as_str()) } }
                        td.mono { (item.db_user) }
                        td { @match &item.approver { Some(a) => { (requester_link(a)) } None => { span.none { "none" } } } }
                        td.reason { (item.reason) }
                        td { (item.status.as_str()) }
                        td {
                            time.nowrap datetime=(format_time(item.expires_at)) { (format_time(item.expires_at)) }
                            br; (time_left(item, now))
                        }
                    }
                }
            }
        }
    }
}

pub fn live(
    cx: &Context,
    database: Option<&str>,
    items: &[GrantItem],
    by_database: &BTreeMap<&str, Vec<&GrantItem>>,
) -> Markup {
    let now = cx.now;
    let overdue = items.iter().filter(|i| is_overdue(i, now)).count();
    let expiring = items.iter().filter(|i| is_expiring(i, now)).count();
    let break_glass = items.iter().filter(|i| i.break_glass).count();
    let title = match database {
        Some(d) => format!("Live grants on {d}"),
        None => "Live grants".to_string(),
    };
    layout(
        cx,
        &title,
        REFRESH_LIVE,
        html! {
            ul.summary {
                li { strong id="count-live" { (items.len()) } " live" }
                li.expiring { a href="/expiring" { strong id="count-expiring" { (expiring) } " expiring within 15 min" } }
                li.overdue { a href="/overdue" { strong id="count-overdue" { (overdue) } " overdue" } }
                li.break-glass { strong id="count-break-glass" { (break_glass) } " break-glass" }
            }
            @if items.is_empty() {
                p.empty { "No live grants: nobody holds access" @if let Some(d) = database { " to " (d) } "." }
            }
            @for (db, grants) in by_database {
                section.database id={"db-" (db)} {
                    h2 {
                        a href={"/?database=" (encode(db))} { (db) } " "
                        span.count { (grants.len()) " live" } " "
                        a.small href={"/timeline?window=24h&database=" (encode(db))} { "timeline" }
                    }
                    (live_table(grants, now))
                }
            }
        },
    )
}

pub fn expiring(cx: &Context, items: &[GrantItem]) -> Markup {
    let refs: Vec<&GrantItem> = items.iter().collect();
    let minutes = EXPIRING_WITHIN.num_minutes();
    layout(
        cx,
        &format!("Expiring within {minutes} minutes"),
        REFRESH_LIVE,
        html! {
            @if items.is_empty() { p.empty { "No live grant expires within " (minutes) " minutes." } }
            @else { (live_table(&refs, cx.now)) }
        },
    )
}

pub fn overdue(cx: &Context, items: &[GrantItem]) -> Markup {
    let refs: Vec<&GrantItem> = items.iter().collect();
    layout(
        cx,
        "Overdue: past expiry, not revoked",
        REFRESH_LIVE,
        html! {
            p.note {
                "The reaper runs every 5 minutes, so a grant a few minutes past expiry is normal; one marked "
                span.badge.reaper { "reaper late" } " is " (OVERDUE_AFTER_SECONDS / 60)
                "+ minutes past: see the runbook, \"Overdue grants\". PostgreSQL itself refuses password logins after "
                code { "expires_at" } "."
            }
            @if items.is_empty() { p.empty { "No overdue grants." } }
            @else {
                (live_table(&refs, cx.now))
                table.grants.attempts {
                    thead { tr { th { "grant" } th { "db_user" } th { "revoke_attempts" } th { "last_error" } } }
                    tbody { @for item in items { tr.overdue {
                        td { (grant_link(item)) } td.mono { (item.db_user) } td { (item.revoke_attempts) }
                        td.reason { (item.last_error.as_deref().unwrap_or("–")) }
                    } } }
                }
            }
        },
    )
}

pub fn grant(cx: &Context, item: &GrantItem) -> Markup {
    let now = cx.now;
    let text = |value: &Option<String>| value.clone().unwrap_or_else(|| "–".into());
    let class = if item.status.is_live() { row_class(item, now) } else { "grant ended".into() };
    layout(
        cx,
        &format!("Grant {}", item.grant_id),
        if item.status.is_live() { REFRESH_LIVE } else { REFRESH_PAST },
        html! {
            table.fields class=(class) {
                tbody {
                    tr { th { "grant_id" } td.mono { (item.grant_id) } }
                    tr { th { "status" } td { span.status { (item.status.as_str()) } (break_glass_badge(item))
                        @if is_overdue(item, now) { " " span.late { "overdue" } } } }
                    tr { th { "requester" } td { (requester_link(&item.requester)) } }
                    tr { th { "approver" } td { @match &item.approver { Some(a) => { (requester_link(a)) } None => { "–" } } } }
                    tr { th { "reason" } td.reason { (item.reason) } }
                    tr { th { "request_id" } td.mono { (text(&item.request_id)) } }
                    tr { th { "database" } td { a href={"/?database=" (encode(&item.database))} { (item.database) } } }
                    tr { th { "target" } td { (item.target) } }
                    tr { th { "strategy" } td { (item.strategy.as_str()) } }
                    tr { th { "db_user" } td.mono { (item.db_user) } }
                    tr { th { "roles" } td { (item.roles.join(", ")) } }
                    tr { th { "created_at" } td { (when(item.created_at, now)) } }
                    tr { th { "activated_at" } td { (optional_when(item.activated_at, now)) } }
                    tr { th { "expires_at" } td { (when(item.expires_at, now)) } }
                    tr { th { "revoked_at" } td { (optional_when(item.revoked_at, now)) } }
                    tr { th { "revoked_by" } td { (text(&item.revoked_by)) } }
                    tr { th { "revoke_attempts" } td { (item.revoke_attempts) } }
                    tr { th { "last_error" } td.reason { (text(&item.last_error)) } }
                }
            }
            h2 { "History" }
            table.history {
                thead { tr { th { "at (UTC)" } th { "from" } th { "to" } th { "actor" } th { "note" } } }
                tbody {
                    @for h in &item.history {
                        tr {
                            td { (when(h.at, now)) }
                            td { (h.from.map_or("–", |s| s.as_str())) }
                            td { (h.to.as_str()) }
                            td { (h.actor) }
                            td.reason { (h.note) }
                        }
                    }
                }
            }
        },
    )
}

pub fn requester(cx: &Context, requester: &str, limit: usize, items: &[GrantItem]) -> Markup {
    let now = cx.now;
    layout(
        cx,
        &format!("History of {requester}"),
        REFRESH_PAST,
        html! {
            p.note { "Newest first, at most " (limit) " (" code { "?limit=" } " up to 1000). Read from the "
                code { "by-requester" } " index, which matches the requester exactly as recorded." }
            @if items.is_empty() { p.empty { "No grants recorded for " (requester) "." } }
            @else {
                table.grants {
                    thead { tr {
                        th { "created_at (UTC)" } th { "database" } th { "target" } th { "db_user" } th { "status" }
                        th { "ended / expires" } th { "revoked_by" } th { "approver" } th { "reason" } th { "grant" }
                    } }
                    tbody {
                        @for item in items {
                            tr class=(if item.status.is_live() { row_class(item, now) } else { "grant ended".into() })
                                data-grant-id=(item.grant_id) {
                                td { (when(item.created_at, now)) }
                                td { (item.database) }
                                td { (item.target) (break_glass_badge(item)) }
                                td.mono { (item.db_user) }
                                td { (item.status.as_str()) }
                                td {
                                    @if let Some(at) = item.revoked_at { (when(at, now)) }
                                    @else if item.status.is_live() { (time_left(item, now)) }
                                    @else { "–" }
                                }
                                td { (item.revoked_by.as_deref().unwrap_or("–")) }
                                td { (item.approver.as_deref().unwrap_or("–")) }
                                td.reason { (item.reason) }
                                td { (grant_link(item)) }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn timeline(cx: &Context, data: &TimelineData) -> Markup {
    let now = cx.now;
    let window = data.window;
    let mut by_database: BTreeMap<&str, Vec<GrantItem>> = BTreeMap::new();
    for item in &data.items {
        by_database.entry(item.database.as_str()).or_default().push(item.clone());
    }
    let other = match window {
        Window::Day => ("7d", "7 days"),
        Window::Week => ("24h", "24 hours"),
    };
    let database_param = data.database.as_deref().map(|d| format!("&database={}", encode(d))).unwrap_or_default();
    let title = format!(
        "Access over the last {}{}",
        if window == Window::Day { "24 hours" } else { "7 days" },
        data.database.as_deref().map(|d| format!(" on {d}")).unwrap_or_default()
    );
    layout(
        cx,
        &title,
        REFRESH_LIVE,
        html! {
            p.note {
                a href={"/timeline?window=" (other.0) (database_param)} { "Show the last " (other.1) }
                ". Green: live; grey: ended; red: overdue (past expiry, not revoked); orange: break-glass."
            }
            p.note.coverage {
                "Every grant of the databases read ("
                @for (n, db) in data.databases.iter().enumerate() {
                    @if n > 0 { ", " } code { (db) }
                }
                @if data.databases.is_empty() { "none" }
                ") that held access in this window, from the "
                code { "by-database" } " index."
                @if data.database.is_none() {
                    " Without " code { "&database=" } ", the databases read are those with a live grant: pick one "
                    "below for a database nobody holds access to now."
                }
                " See docs/dashboard.md."
            }
            form.lookup method="get" action="/timeline" {
                input type="hidden" name="window" value=(window.as_str());
                input type="text" name="database" placeholder="database" aria-label="database"
                    value=[data.database.as_deref()];
                button type="submit" { "Show" }
            }
            @if by_database.is_empty() { p.empty { "No access in this window to the databases read." } }
            @for (db, items) in &by_database {
                @let spans = timeline::spans(items, window, now);
                section.database id={"timeline-" (db)} {
                    h2 { a href={"/?database=" (encode(db))} { (db) } " " span.count { (spans.len()) " grant(s)" } }
                    div.chart { (timeline::svg(db, &spans, window, now)) }
                }
            }
        },
    )
}

pub fn error(cx: &Context, status: StatusCode, message: &str) -> Markup {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("error"));
    layout(cx, &title, REFRESH_PAST, html! { p.error { (message) } })
}
