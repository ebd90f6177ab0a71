//! The timeline: who held access to a database when, over a window ending now, as an SVG drawn here (no script,
//! no assets). Pure: items in, spans and markup out, so the geometry is unit-tested.

use chrono::{DateTime, Duration, Utc};
use grant_model::item::GrantItem;
use grant_model::Status;
use maud::{html, Markup};

/// The windows the page offers, by their query value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Day,
    Week,
}

impl Window {
    pub fn parse(text: Option<&str>) -> Option<Window> {
        match text {
            None | Some("24h") => Some(Window::Day),
            Some("7d") => Some(Window::Week),
            Some(_) => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
        }
    }
    pub fn length(self) -> Duration {
        match self {
            Window::Day => Duration::hours(24),
            Window::Week => Duration::days(7),
        }
    }
    /// Distance between two labelled ticks of the axis.
    fn tick(self) -> Duration {
        match self {
            Window::Day => Duration::hours(3),
            Window::Week => Duration::days(1),
        }
    }
}

/// How one grant held access within the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub grant_id: String,
    pub requester: String,
    pub db_user: String,
    pub target: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Past `expires_at` and still not revoked: from then until now the bar is drawn red.
    pub overdue_from: Option<DateTime<Utc>>,
    pub live: bool,
    pub break_glass: bool,
}

/// The span of access of one grant, clipped to `[start, now]`; None if it held none in that window. Access runs
/// from activation (pending grants: from creation, their user may already exist) to revocation; a live grant
/// holds it until now, and past its expiry it is overdue. A failed grant never held access.
pub fn span(item: &GrantItem, start: DateTime<Utc>, now: DateTime<Utc>) -> Option<Span> {
    let (from, to, overdue_from) = match item.status {
        Status::Failed => return None,
        Status::Revoked => {
            let from = item.activated_at?;
            (from, item.revoked_at.unwrap_or(item.expires_at), None)
        }
        Status::Pending | Status::Active => {
            let from = item.activated_at.unwrap_or(item.created_at);
            (from, now, (item.expires_at < now).then_some(item.expires_at.max(start)))
        }
    };
    if to < start || from > now {
        return None;
    }
    Some(Span {
        grant_id: item.grant_id.clone(),
        requester: item.requester.clone(),
        db_user: item.db_user.clone(),
        target: item.target.clone(),
        start: from.max(start),
        end: to.min(now),
        overdue_from,
        live: item.status.is_live(),
        break_glass: item.break_glass,
    })
}

/// The spans of `items` within the window, earliest first.
pub fn spans(items: &[GrantItem], window: Window, now: DateTime<Utc>) -> Vec<Span> {
    let start = now - window.length();
    let mut spans: Vec<Span> = items.iter().filter_map(|item| span(item, start, now)).collect();
    spans.sort_by(|a, b| (a.start, &a.grant_id).cmp(&(b.start, &b.grant_id)));
    spans
}

const WIDTH: f64 = 1240.0;
const LABELS: f64 = 300.0;
/// Characters of a lane's label; the tooltip has the whole text.
const LABEL_CHARS: usize = 46;
const LANE: f64 = 20.0;
const AXIS: f64 = 24.0;

/// One database's spans as an SVG: a lane per grant, labelled with its user and requester; each bar links to the
/// grant's page and carries a tooltip. Every text is escaped by the template.
pub fn svg(database: &str, spans: &[Span], window: Window, now: DateTime<Utc>) -> Markup {
    let start = now - window.length();
    let plot = WIDTH - LABELS - 10.0;
    let seconds = window.length().num_seconds() as f64;
    let x = |t: DateTime<Utc>| LABELS + plot * ((t - start).num_seconds() as f64 / seconds).clamp(0.0, 1.0);
    let height = AXIS + LANE * spans.len().max(1) as f64 + 6.0;
    let ticks = ticks(start, now, window);
    let label = format!("Access to {database} over the last {}", window.as_str());
    html! {
        svg class="timeline" xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(label)
            width=(WIDTH) height=(height) viewBox={"0 0 " (WIDTH) " " (height)} {
            title { (label) }
            @for tick in &ticks {
                line class="tick" x1=(fmt(x(*tick))) x2=(fmt(x(*tick))) y1=(AXIS - 6.0) y2=(height) {}
                text class="tick-label" x=(fmt(x(*tick))) y="12" text-anchor="middle" { (tick_label(*tick, window)) }
            }
            @if spans.is_empty() {
                text class="empty" x=(LABELS) y=(AXIS + 14.0) { "no access in this window" }
            }
            @for (lane, s) in spans.iter().enumerate() {
                @let y = AXIS + LANE * lane as f64;
                @let class = if s.break_glass { "bar break-glass" } else if s.live { "bar live" } else { "bar ended" };
                text class="lane-label" x="4" y=(fmt(y + 14.0)) { (lane_label(s)) }
                a href={"/grants/" (super::encode(&s.grant_id))} {
                    rect class=(class) x=(fmt(x(s.start))) y=(fmt(y + 3.0))
                        width=(fmt((x(s.end) - x(s.start)).max(2.0))) height=(LANE - 6.0) {
                        title { (tooltip(s)) }
                    }
                    @if let Some(from) = s.overdue_from {
                        rect class="bar overdue" x=(fmt(x(from))) y=(fmt(y + 3.0))
                            width=(fmt((x(s.end) - x(from)).max(2.0))) height=(LANE - 6.0) {
                            title { "overdue since " (grant_model::grant::format_time(from)) ": " (tooltip(s)) }
                        }
                    }
                }
            }
            line class="now" x1=(fmt(x(now))) x2=(fmt(x(now))) y1=(AXIS - 6.0) y2=(height) {}
        }
    }
}

fn lane_label(s: &Span) -> String {
    let text = format!("{} · {}", s.db_user, s.requester);
    if text.chars().count() <= LABEL_CHARS {
        return text;
    }
    text.chars().take(LABEL_CHARS - 1).chain(['…']).collect()
}

fn tooltip(s: &Span) -> String {
    let time = grant_model::grant::format_time;
    let end = if s.live { "now (live)".to_string() } else { time(s.end) };
    let glass = if s.break_glass { " BREAK-GLASS" } else { "" };
    format!("{} as {} ({}){glass}: {} to {end}", s.requester, s.db_user, s.target, time(s.start))
}

/// Tick instants: whole multiples of the tick length (UTC) inside the window.
fn ticks(start: DateTime<Utc>, now: DateTime<Utc>, window: Window) -> Vec<DateTime<Utc>> {
    let step = window.tick().num_seconds();
    let first = (start.timestamp() + step - 1).div_euclid(step) * step;
    (0..)
        .map(|n| first + n * step)
        .take_while(|t| *t <= now.timestamp())
        .filter_map(|t| DateTime::from_timestamp(t, 0))
        .collect()
}

fn tick_label(t: DateTime<Utc>, window: Window) -> String {
    match window {
        Window::Day => t.format("%H:%M").to_string(),
        Window::Week => t.format("%a %d").to_string(),
    }
}

/// Coordinates with one decimal: the SVG stays small and stable.
fn fmt(value: f64) -> String {
    format!("{value:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use grant_model::grant::format_time;
    use serde_json::json;

    fn at(hours_ago: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 - hours_ago * 3600, 0).unwrap()
    }

    /// An item as read from the table (through serde, so fields added to `GrantItem` later take their defaults).
    fn item(status: Status, created: i64, expires: i64, revoked: Option<i64>) -> GrantItem {
        let time = |hours_ago: i64| format_time(at(hours_ago));
        let mut item = json!({
            "grant_id": format!("g-{created}"), "status": status, "requester": "alice@example.com", "reason": "r",
            "database": "orders", "target": "readonly", "strategy": "temp_user", "db_user": "jit_alice_x",
            "roles": ["readonly"], "created_at": time(created), "expires_at": time(expires),
            "expires_at_epoch": at(expires).timestamp(), "history": [],
        });
        if status != Status::Pending {
            item["activated_at"] = json!(time(created));
        }
        if let Some(revoked) = revoked {
            item["revoked_at"] = json!(time(revoked));
        }
        serde_json::from_value(item).expect("a valid item")
    }

    #[test]
    fn spans_follow_access_and_are_clipped_to_the_window() {
        let now = at(0);
        let start = now - Window::Day.length();
        let ended = span(&item(Status::Revoked, 5, 4, Some(4)), start, now).unwrap();
        assert_eq!((ended.start, ended.end, ended.overdue_from, ended.live), (at(5), at(4), None, false));
        let long_ago = item(Status::Revoked, 50, 49, Some(49));
        assert_eq!(span(&long_ago, start, now), None, "ended before the window");
        let straddling = span(&item(Status::Revoked, 30, 20, Some(20)), start, now).unwrap();
        assert_eq!((straddling.start, straddling.end), (at(24), at(20)), "clipped to the window's start");
        let live = span(&item(Status::Active, 1, -1, None), start, now).unwrap();
        assert_eq!((live.start, live.end, live.overdue_from, live.live), (at(1), now, None, true));
        let overdue = span(&item(Status::Active, 3, 2, None), start, now).unwrap();
        assert_eq!((overdue.end, overdue.overdue_from), (now, Some(at(2))), "past expiry, not revoked");
        assert_eq!(span(&item(Status::Failed, 2, 1, None), start, now), None, "a failed grant held nothing");
        let pending = span(&item(Status::Pending, 1, -1, None), start, now).unwrap();
        assert_eq!(pending.start, at(1), "a pending grant's user may exist from creation");
    }

    #[test]
    fn the_svg_has_a_bar_per_span_linking_to_the_grant_and_escapes_text() {
        let now = at(0);
        let mut hostile = item(Status::Active, 2, 1, None);
        hostile.requester = "<script>alert(1)</script>".into();
        let spans = spans(&[hostile, item(Status::Revoked, 6, 5, Some(5))], Window::Day, now);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].start, at(6), "earliest first");
        let svg = svg("orders", &spans, Window::Day, now).into_string();
        assert_eq!(svg.matches("<rect class=\"bar ").count(), 3, "two bars and the overdue part: {svg}");
        assert!(svg.contains("href=\"/grants/g-2\""), "{svg}");
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"), "{svg}");
        assert_eq!(svg.matches("class=\"tick-label\"").count(), 8, "every 3 hours over 24: {svg}");
        let empty = super::svg("orders", &[], Window::Week, now).into_string();
        assert!(empty.contains("no access in this window") && empty.matches("class=\"tick-label\"").count() == 7);
    }

    #[test]
    fn windows_parse_from_the_query() {
        assert_eq!(Window::parse(None), Some(Window::Day));
        assert_eq!(Window::parse(Some("7d")), Some(Window::Week));
        assert_eq!(Window::parse(Some("1y")), None);
    }
}
