//! `grantctl serve`: a read-only web dashboard over the grants table, with the operator's own AWS credentials.
//! It reads GetItem and Queries on the indexes (`by-database` for the timeline), never a Scan, and writes nothing.
//!
//! Every page is server-side HTML (maud escapes every value: all of them come from callers) with a JSON twin for
//! `Accept: application/json`, whose objects are items with the table's attribute names. Nothing is loaded from
//! elsewhere: the stylesheet is compiled in, there is no script, and the Content-Security-Policy says so.

mod pages;
pub mod timeline;

use axum::extract::{Path, Query, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use grant_adapters::{Fault, GrantStore};
use grant_model::grant::{format_time, now_seconds};
use grant_model::item::GrantItem;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use timeline::Window;

/// Nothing but this server's own stylesheet; no script at all; no framing; forms only to here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     script-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// A live grant expiring within this is listed as expiring soon (the SPEC's `Grant Expiring Soon` lead time).
pub const EXPIRING_WITHIN: Duration = Duration::minutes(15);
/// Grants created this long before a timeline window may still have held access in it: longer than any grant
/// lives under the default `max_total_seconds` (4 x a 4-hour maximum).
pub const TIMELINE_LOOKBACK: Duration = Duration::days(2);
/// Database histories the timeline reads at once.
const DATABASE_QUERIES_IN_FLIGHT: usize = 16;
const STYLESHEET: &str = include_str!("dashboard.css");

struct Dashboard {
    store: GrantStore,
}

/// The dashboard's routes over `store`; every response carries the security headers.
pub fn router(store: GrantStore) -> Router {
    Router::new()
        .route("/", get(live))
        .route("/expiring", get(expiring))
        .route("/overdue", get(overdue))
        .route("/grants", get(find_grant))
        .route("/grants/{grant_id}", get(grant))
        .route("/requesters", get(find_requester))
        .route("/requesters/{requester}", get(requester))
        .route("/timeline", get(timeline))
        .route("/static/dashboard.css", get(stylesheet))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(Arc::new(Dashboard { store }))
}

/// Binds `bind` and serves until the process ends.
pub async fn run(store: GrantStore, bind: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    serve_on(listener, store).await
}

/// Serves on a bound listener; announces the address on stderr (with `--bind 127.0.0.1:0`, the port chosen).
pub async fn serve_on(listener: tokio::net::TcpListener, store: GrantStore) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    eprintln!("grantctl: dashboard listening on http://{addr}/ (read-only)");
    if !addr.ip().is_loopback() {
        eprintln!(
            "grantctl: warning: {} is reachable from other machines and the dashboard has no authentication of \
             its own; put an authenticating proxy in front of it",
            addr.ip()
        );
    }
    axum::serve(listener, router(store)).await
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::VARY, "Accept");
    response
}

/// What the client asked for: the JSON twin if it accepts `application/json`, else HTML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
}

impl Format {
    fn of(headers: &HeaderMap) -> Format {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        if accept.split(',').any(|part| part.trim().starts_with("application/json")) {
            Format::Json
        } else {
            Format::Html
        }
    }
}

/// What every page knows about its request: the format, its own address (for links to paste), the time.
pub(crate) struct Context {
    format: Format,
    /// `http://host/path?query` as the browser asked for it, if it sent a Host.
    pub permalink: Option<String>,
    pub now: DateTime<Utc>,
}

impl Context {
    fn new(headers: &HeaderMap, uri: &axum::http::Uri) -> Context {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Context {
            format: Format::of(headers),
            permalink: host.map(|host| format!("http://{host}{path}")),
            now: now_seconds(),
        }
    }

    /// The page as HTML, or its JSON twin with `generated_at` added.
    fn respond(&self, html: impl FnOnce() -> maud::Markup, json: Value) -> Response {
        match self.format {
            Format::Html => html().into_response(),
            Format::Json => {
                let mut json = json;
                json["generated_at"] = json!(format_time(self.now));
                json_response(&json)
            }
        }
    }

    fn error(&self, status: StatusCode, message: String) -> Response {
        let response = match self.format {
            Format::Html => pages::error(self, status, &message).into_response(),
            Format::Json => json_response(&json!({"error": {"status": status.as_u16(), "message": message}})),
        };
        (status, response).into_response()
    }

    fn fault(&self, fault: Fault) -> Response {
        eprintln!("grantctl serve: {fault}");
        self.error(StatusCode::SERVICE_UNAVAILABLE, format!("{fault}; reload to try again"))
    }
}

fn json_response(value: &Value) -> Response {
    let body = serde_json::to_string_pretty(value).expect("JSON values serialise");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

type Page = Result<Response, Response>;

#[derive(Debug, Deserialize)]
struct DatabaseFilter {
    database: Option<String>,
}

impl Dashboard {
    /// Every live grant (one round of Queries on the expiry index's partitions), soonest expiry first.
    async fn live(&self, database: Option<&str>) -> Result<Vec<GrantItem>, Fault> {
        let mut items: Vec<GrantItem> = self.store.live_grants().await?.iter().map(GrantItem::from).collect();
        items.retain(|i| database.is_none_or(|d| i.database == d));
        items.sort_by(|a, b| (a.expires_at, &a.grant_id).cmp(&(b.expires_at, &b.grant_id)));
        Ok(items)
    }
}

/// Past `expires_at` and not revoked.
pub(crate) fn is_overdue(item: &GrantItem, now: DateTime<Utc>) -> bool {
    item.status.is_live() && item.expires_at <= now
}

pub(crate) fn is_expiring(item: &GrantItem, now: DateTime<Utc>) -> bool {
    item.status.is_live() && item.expires_at > now && item.expires_at <= now + EXPIRING_WITHIN
}

fn items_json(items: &[GrantItem]) -> Value {
    json!(items)
}

async fn live(
    State(d): State<Arc<Dashboard>>,
    Query(filter): Query<DatabaseFilter>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Page {
    let cx = Context::new(&headers, &uri);
    let items = d.live(filter.database.as_deref()).await.map_err(|f| cx.fault(f))?;
    let mut by_database: BTreeMap<&str, Vec<&GrantItem>> = BTreeMap::new();
    for item in &items {
        by_database.entry(item.database.as_str()).or_default().push(item);
    }
    let json = json!({"database": filter.database, "grants": items_json(&items)});
    Ok(cx.respond(|| pages::live(&cx, filter.database.as_deref(), &items, &by_database), json))
}

async fn expiring(State(d): State<Arc<Dashboard>>, headers: HeaderMap, uri: axum::http::Uri) -> Page {
    let cx = Context::new(&headers, &uri);
    let mut items = d.live(None).await.map_err(|f| cx.fault(f))?;
    items.retain(|i| is_expiring(i, cx.now));
    let json = json!({"within_seconds": EXPIRING_WITHIN.num_seconds(), "grants": items_json(&items)});
    Ok(cx.respond(|| pages::expiring(&cx, &items), json))
}

async fn overdue(State(d): State<Arc<Dashboard>>, headers: HeaderMap, uri: axum::http::Uri) -> Page {
    let cx = Context::new(&headers, &uri);
    let mut items = d.live(None).await.map_err(|f| cx.fault(f))?;
    items.retain(|i| is_overdue(i, cx.now));
    Ok(cx.respond(|| pages::overdue(&cx, &items), json!({"grants": items_json(&items)})))
}

#[derive(Debug, Deserialize)]
struct FindGrant {
    grant_id: String,
}

/// The lookup form's target: to the grant's own address, the one to paste.
async fn find_grant(Query(find): Query<FindGrant>) -> Redirect {
    Redirect::to(&format!("/grants/{}", encode(find.grant_id.trim())))
}

async fn grant(
    State(d): State<Arc<Dashboard>>,
    Path(grant_id): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Page {
    let cx = Context::new(&headers, &uri);
    let grant = d.store.get(&grant_id).await.map_err(|f| cx.fault(f))?;
    let Some(grant) = grant else {
        return Err(cx.error(StatusCode::NOT_FOUND, format!("no grant {grant_id}")));
    };
    let item = GrantItem::from(&grant);
    Ok(cx.respond(|| pages::grant(&cx, &item), json!({"grant": item})))
}

#[derive(Debug, Deserialize)]
struct FindRequester {
    requester: String,
}

async fn find_requester(Query(find): Query<FindRequester>) -> Redirect {
    Redirect::to(&format!("/requesters/{}", encode(find.requester.trim())))
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn requester(
    State(d): State<Arc<Dashboard>>,
    Path(requester): Path<String>,
    Query(limit): Query<Limit>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Page {
    let cx = Context::new(&headers, &uri);
    let limit = limit.limit.unwrap_or(100).clamp(1, 1000);
    let grants = d.store.grants_of_requester(&requester, Some(limit)).await.map_err(|f| cx.fault(f))?;
    let items: Vec<GrantItem> = grants.iter().map(GrantItem::from).collect();
    let json = json!({"requester": requester, "limit": limit, "grants": items_json(&items)});
    Ok(cx.respond(|| pages::requester(&cx, &requester, limit, &items), json))
}

/// What the timeline read: the live grants, and the grants of each database read on `by-database` since the
/// window's start less [`TIMELINE_LOOKBACK`].
pub(crate) struct TimelineData {
    pub window: Window,
    pub database: Option<String>,
    /// Databases whose grants were read: the one asked for, else every database with a live grant.
    pub databases: BTreeSet<String>,
    /// Every grant read, live and past, deduplicated.
    pub items: Vec<GrantItem>,
}

async fn timeline(
    State(d): State<Arc<Dashboard>>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Page {
    let cx = Context::new(&headers, &uri);
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(window) = Window::parse(param("window")) else {
        return Err(cx.error(StatusCode::BAD_REQUEST, "window is 24h or 7d".into()));
    };
    let database = param("database").map(str::trim).filter(|d| !d.is_empty()).map(str::to_string);
    let data = d.timeline(window, database, cx.now).await.map_err(|f| cx.fault(f))?;
    let json = json!({
        "window": window.as_str(),
        "window_start": format_time(cx.now - window.length()),
        "database": data.database,
        "databases_read": data.databases,
        "grants": items_json(&data.items),
    });
    Ok(cx.respond(|| pages::timeline(&cx, &data), json))
}

impl Dashboard {
    /// The live grants (one round on `by-expiry`: they may have been created before the lookback), then a second
    /// round, one Query (paginated) per database on `by-database`, of the grants created from
    /// `window start - TIMELINE_LOOKBACK` on: with the live ones, every grant that can have held access in the
    /// window.
    async fn timeline(
        &self,
        window: Window,
        database: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<TimelineData, Fault> {
        let live = self.live(database.as_deref()).await?;
        let databases: BTreeSet<String> = match &database {
            Some(d) => BTreeSet::from([d.clone()]),
            None => live.iter().map(|i| i.database.clone()).collect(),
        };
        let since = now - window.length() - TIMELINE_LOOKBACK;
        let store = &self.store;
        let histories: Vec<Vec<grant_model::Grant>> = stream::iter(databases.iter().cloned())
            .map(|db| async move { store.grants_of_database_since(&db, since).await })
            .buffer_unordered(DATABASE_QUERIES_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut by_id: BTreeMap<String, GrantItem> = BTreeMap::new();
        for item in histories.iter().flatten().map(GrantItem::from).chain(live) {
            by_id.insert(item.grant_id.clone(), item);
        }
        let items = by_id.into_values().collect();
        Ok(TimelineData { window, database, databases, items })
    }
}

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLESHEET)
}

async fn not_found(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let cx = Context::new(&headers, &uri);
    cx.error(StatusCode::NOT_FOUND, format!("no page {}", uri.path()))
}

/// Percent-encodes one path segment or query value: everything but RFC 3986's unreserved characters and `@`.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_addresses_readable_and_quotes_the_rest() {
        assert_eq!(encode("alice@example.com"), "alice@example.com");
        assert_eq!(encode("a b/../<x>?&#"), "a%20b%2F..%2F%3Cx%3E%3F%26%23");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn json_only_when_asked_for() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            Format::of(&headers)
        };
        assert_eq!(with("application/json"), Format::Json);
        assert_eq!(with("text/plain, application/json;q=0.9"), Format::Json);
        assert_eq!(with("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), Format::Html);
        assert_eq!(Format::of(&HeaderMap::new()), Format::Html);
    }
}
