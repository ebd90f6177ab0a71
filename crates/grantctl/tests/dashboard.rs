//! `grantctl serve` against moto, over grants the real provisioner wrote: each page lists what it should, hostile
//! values render as text, every page has its JSON twin, the reads are Queries and GetItems only (counted by SDK
//! interceptors on the server's own client), the real binary's pages in headless Chromium, and the live page's
//! cost and latency with a long history.

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::operation::scan::ScanInput;
use aws_sdk_dynamodb::types::AttributeValue;
use grant_adapters::GrantStore;
use provisioner::App;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::fixture::{Fixture, DB};
use test_support::ScannedCount;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";
const HOSTILE_REASON: &str = "<script>alert('reason')</script> INC-66";
const HOSTILE_REQUESTER: &str = "<img src=x onerror=alert(1)>@example.com";

// ---------------------------------------------------------------------------------------------------------------
// Helpers: grants through the real provisioner, time simulated in the table, a minimal HTTP client, servers.

async fn grant(app: &App, requester: &str, target: &str, reason: &str, db_user: Option<&str>) -> String {
    let mut request = json!({"requester": requester, "database": DB, "target": target, "reason": reason});
    if let Some(user) = db_user {
        request["db_user"] = json!(user);
    }
    let response = app.handle(request).await.unwrap();
    assert_eq!(response["ok"], json!(true), "{response}");
    response["grant"]["grant_id"].as_str().unwrap().to_string()
}

async fn revoke(app: &App, grant_id: &str, actor: &str) {
    let request = json!({"action": "revoke", "grant_id": grant_id, "actor": actor, "reason": "done"});
    let response = app.handle(request).await.unwrap();
    assert_eq!(response["ok"], json!(true), "{response}");
}

/// Sets attributes of an item directly: time passing (as `Fixture::expire` does) and `break_glass`, which the SPEC
/// defines on the item but this branch's provisioner does not write yet.
async fn set(fixture: &Fixture, grant_id: &str, values: &[(&str, AttributeValue)]) {
    let mut update = aws_sdk_dynamodb::Client::new(&fixture.sdk)
        .update_item()
        .table_name(&fixture.table)
        .key("grant_id", AttributeValue::S(grant_id.into()));
    let mut expression = Vec::new();
    for (n, (name, value)) in values.iter().enumerate() {
        expression.push(format!("#a{n} = :v{n}"));
        update = update
            .expression_attribute_names(format!("#a{n}"), *name)
            .expression_attribute_values(format!(":v{n}"), value.clone());
    }
    update.update_expression(format!("SET {}", expression.join(", "))).send().await.unwrap();
}

fn time(hours_ago: f64) -> AttributeValue {
    let at = chrono::Utc::now() - chrono::Duration::seconds((hours_ago * 3600.0) as i64);
    let at = chrono::DateTime::from_timestamp(at.timestamp(), 0).unwrap();
    AttributeValue::S(grant_model::grant::format_time(at))
}

/// Moves a revoked grant's life into the past: created and activated `from` hours ago, revoked `to` hours ago.
async fn backdate(fixture: &Fixture, grant_id: &str, from: f64, to: f64) {
    let values = [("created_at", time(from)), ("activated_at", time(from)), ("revoked_at", time(to))];
    set(fixture, grant_id, &values).await;
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
    fn json(&self) -> Value {
        assert_eq!(self.header("content-type"), Some("application/json"), "{}", self.head);
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn ok(self) -> Response {
        assert_eq!(self.status, 200, "{}\n{}", self.head, self.body);
        self
    }
}

/// One HTTP/1.1 request on its own connection, as a browser or curl would send it.
async fn request(addr: SocketAddr, method: &str, path: &str, accept: &str) -> Response {
    let text = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        stream.write_all(text.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        Response { status, head: head.to_string(), body: body.to_string() }
    })
    .await
    .unwrap()
}

async fn html(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, "text/html,application/xhtml+xml,*/*;q=0.8").await
}

async fn json_of(addr: SocketAddr, path: &str) -> Value {
    request(addr, "GET", path, "application/json").await.ok().json()
}

/// The DynamoDB operations a client sent, by name, from an interceptor that sees each request's input.
#[derive(Debug, Clone, Default)]
struct Operations(Arc<Mutex<Vec<&'static str>>>);

impl Operations {
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Operations {
    fn name(&self) -> &'static str {
        "Operations"
    }
    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let name = if input.downcast_ref::<QueryInput>().is_some() {
            "Query"
        } else if input.downcast_ref::<GetItemInput>().is_some() {
            "GetItem"
        } else if input.downcast_ref::<ScanInput>().is_some() {
            "Scan"
        } else {
            "other"
        };
        self.0.lock().unwrap().push(name);
        Ok(())
    }
    fn read_after_deserialization(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The dashboard in this process, its DynamoDB client counting operations and items read.
struct InProcess {
    addr: SocketAddr,
    operations: Operations,
    scanned: ScannedCount,
}

async fn in_process(fixture: &Fixture) -> InProcess {
    let (operations, scanned) = (Operations::default(), ScannedCount::default());
    let config = aws_sdk_dynamodb::config::Builder::from(&fixture.sdk)
        .interceptor(operations.clone())
        .interceptor(scanned.clone())
        .build();
    let store = GrantStore::from_client(aws_sdk_dynamodb::Client::from_conf(config), &fixture.table);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(grantctl::serve::serve_on(listener, store));
    InProcess { addr, operations, scanned }
}

/// The real binary, `grantctl serve --bind 127.0.0.1:0`, with only what an operator would set.
struct Binary {
    child: Child,
    addr: SocketAddr,
}

impl Binary {
    fn start(fixture: &Fixture) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_grantctl"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_REGION", "us-east-1")
            .envs(fixture.lambda_env().into_iter().filter(|(k, _)| k != "CONFIG_BUCKET"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("grantctl starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address announced: {line:?}"));
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::stderr()));
        Binary { child, addr }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `<tr class="…" data-grant-id="id">`: the classes of a grant's row, if the page lists it.
fn row_class<'a>(page: &'a str, grant_id: &str) -> Option<&'a str> {
    let marker = format!("\" data-grant-id=\"{grant_id}\"");
    let end = page.find(&marker)?;
    let start = page[..end].rfind("<tr class=\"")? + "<tr class=\"".len();
    Some(&page[start..end])
}

fn ids(value: &Value) -> BTreeSet<String> {
    value.as_array().expect("an array").iter().map(|i| i["grant_id"].as_str().unwrap().to_string()).collect()
}

fn set_of(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The grants every page test reads: one per case a page must show.
struct Scene {
    alice: String,
    hostile: String,
    carol: String,
    dave: String,
    erin: String,
    frank: String,
}

impl Scene {
    async fn make(fixture: &Fixture) -> Scene {
        let app = App::new(&fixture.sdk, fixture.settings.clone());
        let alice = grant(&app, "alice@example.com", "readonly", HOSTILE_REASON, None).await;
        let hostile = grant(&app, HOSTILE_REQUESTER, "readonly", "INC-67 \"quoted\" & <b>bold</b>", None).await;
        let carol = grant(&app, "carol@example.com", "readonly", "INC-68 one query", None).await;
        revoke(&app, &carol, "carol@example.com").await;
        backdate(fixture, &carol, 5.0, 4.0).await;
        let dave = grant(&app, "dave@example.com", "readonly", "INC-69 migration", None).await;
        fixture.expire(&dave, 20 * 60).await;
        let erin = grant(&app, "erin@example.com", "writer", "INC-70 backfill", None).await;
        fixture.expire(&erin, -10 * 60).await;
        let frank = grant(&app, "frank@example.com", "dba", "INC-71 outage, nobody to approve", Some("alice")).await;
        set(fixture, &frank, &[("break_glass", AttributeValue::Bool(true))]).await;
        Scene { alice, hostile, carol, dave, erin, frank }
    }

    fn live(&self) -> BTreeSet<String> {
        set_of(&[&self.alice, &self.hostile, &self.dave, &self.erin, &self.frank])
    }
}

// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_lists_what_it_should_escaped_with_a_json_twin_from_queries_and_getitems_only() {
    let fixture = Fixture::new().await;
    let scene = Scene::make(&fixture).await;
    let server = in_process(&fixture).await;
    let addr = server.addr;

    // The live page: every live grant, per database, with its state as a row class.
    let live = html(addr, "/").await.ok();
    assert_eq!(live.header("content-security-policy"), Some(CSP));
    assert_eq!(live.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(live.header("content-type"), Some("text/html; charset=utf-8"));
    let page = &live.body;
    for id in scene.live() {
        assert!(row_class(page, &id).is_some(), "live grant {id} listed:\n{page}");
    }
    assert_eq!(row_class(page, &scene.carol), None, "a revoked grant is not live");
    assert_eq!(row_class(page, &scene.dave), Some("grant overdue"), "expired, not revoked: red");
    assert_eq!(row_class(page, &scene.erin), Some("grant expiring"));
    assert_eq!(row_class(page, &scene.frank), Some("grant break-glass"));
    assert_eq!(row_class(page, &scene.alice), Some("grant"));
    assert!(page.contains("id=\"db-orders\""), "grouped per database");
    for (count, n) in [("live", 5), ("overdue", 1), ("expiring", 1), ("break-glass", 1)] {
        assert!(page.contains(&format!("id=\"count-{count}\">{n}<")), "{count} = {n}:\n{page}");
    }
    assert!(page.contains("BREAK-GLASS") && page.contains("reaper late"), "{page}");
    assert!(page.contains(&format!("Link to this page: <code class=\"permalink\">http://{addr}/</code>")));
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"), "auto-refresh");

    // Escaping: caller-supplied text is text, in element content and in attributes.
    assert!(!page.contains("<script") && !page.contains("<img") && !page.contains("<b>"), "{page}");
    assert!(page.contains("&lt;script&gt;alert('reason')&lt;/script&gt; INC-66"), "{page}");
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;@example.com"), "{page}");
    assert!(page.contains("href=\"/requesters/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E@example.com\""));
    assert!(page.contains("INC-67 &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;"), "{page}");

    // Its JSON twin: items with the table's attribute names and values as stored.
    let twin = json_of(addr, "/").await;
    assert_eq!(ids(&twin["grants"]), scene.live());
    assert!(twin["generated_at"].as_str().unwrap().ends_with('Z'));
    for item in twin["grants"].as_array().unwrap() {
        for name in ["grant_id", "status", "requester", "database", "target", "strategy", "db_user", "expires_at"] {
            assert!(item[name].is_string(), "{name} in {item}");
        }
        assert!(item["expires_at_epoch"].is_i64() && item["history"].is_array(), "{item}");
        let flagged = item["grant_id"] == json!(scene.frank);
        assert_eq!(item.get("break_glass"), flagged.then_some(&json!(true)), "present only when true: {item}");
    }
    let alice = twin["grants"].as_array().unwrap().iter().find(|i| i["grant_id"] == json!(scene.alice)).unwrap();
    assert_eq!(alice["reason"], json!(HOSTILE_REASON), "JSON carries the value itself");
    assert!(!twin.to_string().contains("password"));
    assert_eq!(ids(&json_of(addr, "/?database=orders").await["grants"]), scene.live());
    assert_eq!(json_of(addr, "/?database=nope").await["grants"], json!([]));
    assert!(html(addr, "/?database=nope").await.ok().body.contains("nobody holds access"));

    // Expiring within 15 minutes; overdue (past expiry, not revoked).
    let expiring = html(addr, "/expiring").await.ok().body;
    assert_eq!(row_class(&expiring, &scene.erin), Some("grant expiring"));
    assert_eq!(ids(&json_of(addr, "/expiring").await["grants"]), set_of(&[&scene.erin]));
    let overdue = html(addr, "/overdue").await.ok().body;
    assert_eq!(row_class(&overdue, &scene.dave), Some("grant overdue"));
    assert!(overdue.contains("overdue: expired 20m ") && overdue.contains("reaper late"), "{overdue}");
    assert_eq!(ids(&json_of(addr, "/overdue").await["grants"]), set_of(&[&scene.dave]));
    for id in [&scene.alice, &scene.erin, &scene.frank] {
        assert_eq!(row_class(&overdue, id), None, "{id} is not overdue");
    }

    // One grant with its history.
    let shown = html(addr, &format!("/grants/{}", scene.alice)).await.ok().body;
    assert!(shown.contains("<h2>History</h2>") && shown.contains("&lt;script&gt;"), "{shown}");
    assert!(!shown.contains("<script"), "{shown}");
    let twin = json_of(addr, &format!("/grants/{}", scene.alice)).await;
    let steps: Vec<&str> =
        twin["grant"]["history"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(steps, ["pending", "active"]);
    assert_eq!(twin["grant"]["grant_id"], json!(scene.alice));
    let revoked = json_of(addr, &format!("/grants/{}", scene.carol)).await;
    assert_eq!(
        (revoked["grant"]["status"].as_str(), revoked["grant"]["revoked_by"].as_str()),
        (Some("revoked"), Some("carol@example.com"))
    );
    let missing = html(addr, "/grants/no-such-grant").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("no grant no-such-grant"));
    assert_eq!(missing.header("content-security-policy"), Some(CSP), "errors carry the headers too");
    assert_eq!(request(addr, "GET", "/grants/no-such-grant", "application/json").await.json()["error"]["status"], 404);
    let hostile_id = html(addr, "/grants/%3Cscript%3E").await;
    assert_eq!(hostile_id.status, 404);
    assert!(hostile_id.body.contains("no grant &lt;script&gt;") && !hostile_id.body.contains("<script"));

    // A requester's history, found by the exact recorded string, hostile or not.
    let carol = html(addr, "/requesters/carol@example.com").await.ok().body;
    assert_eq!(row_class(&carol, &scene.carol), Some("grant ended"));
    assert_eq!(ids(&json_of(addr, "/requesters/carol@example.com").await["grants"]), set_of(&[&scene.carol]));
    let path = "/requesters/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E@example.com";
    assert_eq!(ids(&json_of(addr, path).await["grants"]), set_of(&[&scene.hostile]));
    let hostile = html(addr, path).await.ok().body;
    assert!(hostile.contains("History of &lt;img src=x onerror=alert(1)&gt;@example.com") && !hostile.contains("<img"));
    let nobody = html(addr, "/requesters/nobody@example.com").await.ok().body;
    assert!(nobody.contains("No grants recorded for nobody@example.com"));

    // The lookup forms redirect to the addresses to paste.
    let found = request(addr, "GET", "/requesters?requester=carol%40example.com", "text/html").await;
    assert_eq!((found.status, found.header("location")), (303, Some("/requesters/carol@example.com")));
    let found = request(addr, "GET", &format!("/grants?grant_id={}", scene.alice), "text/html").await;
    assert_eq!(found.header("location"), Some(format!("/grants/{}", scene.alice).as_str()));

    // The timeline: every grant of the database that held access in the window, from `by-database`, including
    // carol's, ended 4 hours ago, though carol holds no live grant.
    let day = json_of(addr, "/timeline?window=24h").await;
    let mut with_carol = scene.live();
    with_carol.insert(scene.carol.clone());
    assert_eq!(ids(&day["grants"]), with_carol, "carol's past grant is on the timeline");
    assert_eq!(day["databases_read"], json!(["orders"]));
    assert!(day.get("requesters_read").is_none(), "{day}");
    assert_eq!(ids(&json_of(addr, "/timeline?window=24h&database=orders").await["grants"]), with_carol);
    let svg = html(addr, "/timeline?window=24h").await.ok().body;
    assert!(svg.contains("<svg class=\"timeline\""), "{svg}");
    assert_eq!(svg.matches("<rect class=\"bar ended\"").count(), 1, "carol's past grant, 5 to 4 hours ago");
    assert_eq!(svg.matches("<rect class=\"bar overdue\"").count(), 1, "dave's overdue part");
    assert_eq!(svg.matches("<rect class=\"bar break-glass\"").count(), 1, "frank's");
    assert_eq!(svg.matches("<rect class=\"bar live\"").count(), 4, "alice, the hostile one, dave, erin");
    assert!(svg.contains(&format!("href=\"/grants/{}\"", scene.carol)));
    assert!(!svg.contains("<img") && !svg.contains("<script"), "{svg}");
    // Its cost: the live round on by-expiry, then one Query on by-database, which reads the grants created since
    // the window's start less the lookback: the six of the scene.
    let mut seen = server.operations.take();
    let before = server.scanned.scanned();
    json_of(addr, "/timeline?window=24h&database=orders").await;
    let timeline = server.operations.take();
    assert_eq!(timeline, vec!["Query"; 16 + 1], "by-expiry's 16 partitions, then by-database");
    seen.extend(timeline);
    assert_eq!(server.scanned.scanned() - before, 5 + 6, "the five live grants, then the six of orders");
    let week = html(addr, "/timeline?window=7d&database=orders").await.ok().body;
    assert!(week.contains("Access over the last 7 days on orders"), "{week}");
    assert_eq!(json_of(addr, "/timeline?window=7d&database=nope").await["grants"], json!([]));
    assert_eq!(html(addr, "/timeline?window=1y").await.status, 400);
    // A database nobody holds access to now: not among those read by default, complete when asked for.
    set(&fixture, &scene.carol, &[("database", AttributeValue::S("billing".into()))]).await;
    let default = json_of(addr, "/timeline?window=24h").await;
    assert_eq!((ids(&default["grants"]), &default["databases_read"]), (scene.live(), &json!(["orders"])));
    let billing = json_of(addr, "/timeline?window=7d&database=billing").await;
    assert_eq!(ids(&billing["grants"]), set_of(&[&scene.carol]), "{billing}");
    let page = html(addr, "/timeline?window=7d&database=billing").await.ok().body;
    assert_eq!(page.matches("<rect class=\"bar ended\"").count(), 1, "{page}");

    // Read-only, and nothing else served.
    assert_eq!(request(addr, "POST", "/", "text/html").await.status, 405);
    assert_eq!(html(addr, "/nope").await.status, 404);
    let css = html(addr, "/static/dashboard.css").await.ok();
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));

    // Every read was a Query or a GetItem; the live page is one round of Queries, one per index partition, and
    // DynamoDB read the live grants only.
    let mut all = seen;
    all.extend(server.operations.take());
    assert!(all.iter().all(|op| *op == "Query" || *op == "GetItem"), "{all:?}");
    assert!(!all.contains(&"Scan") && all.contains(&"GetItem") && all.contains(&"Query"));
    let before = server.scanned.scanned();
    json_of(addr, "/").await;
    assert_eq!(server.operations.take(), vec!["Query"; 16], "8 active + 8 pending partitions of by-expiry");
    assert_eq!(server.scanned.scanned() - before, 5, "DynamoDB read the five live grants and nothing else");
}

#[test]
fn serve_refuses_an_address_it_cannot_listen_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_grantctl"))
        .args(["serve", "--bind", &addr])
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .env("GRANTS_TABLE", "grants")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("serve on {addr}")), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_grantctl")).args(["serve", "--bind", "nowhere"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--bind"));
}

// ---------------------------------------------------------------------------------------------------------------
// The real binary in a real browser.

fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.exists(),
        "headless Chromium is needed for this test: run scripts/setup.sh (installs Debian's chromium and chromium-driver)"
    );
    path
}

/// Runs headless Chromium with `args` then `url`; returns stdout and stderr. Fails after 60 s.
fn browse(profile: &Path, args: &[&str], url: &str) -> (String, String) {
    let mut child = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        out.read_to_string(&mut text).map(|_| text)
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        err.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish {url} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (stdout.join().unwrap().unwrap(), stderr.join().unwrap().unwrap())
}

/// The DOM as Chromium rendered it, after checking the console reported no Content-Security-Policy violation
/// (the stylesheet was allowed, nothing else was attempted).
fn dom(profile: &Path, url: &str) -> String {
    let (dom, log) = browse(profile, &["--dump-dom"], url);
    assert!(!log.contains("Content Security Policy") && !log.contains("Refused to"), "{url}: {log}");
    assert!(dom.contains("</html>"), "{url} rendered nothing: {dom}\n{log}");
    dom
}

fn screenshot(profile: &Path, url: &str, name: &str, height: u32) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    let _ = std::fs::remove_file(&file);
    let size = format!("--window-size=1280,{height}");
    let (_, log) = browse(profile, &[&format!("--screenshot={}", file.display()), &size, "--hide-scrollbars"], url);
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("no screenshot of {url} ({e}): {log}"));
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{url}: a real picture, {} bytes", bytes.len());
    println!("screenshot of {url}: {} ({} KB)", file.display(), bytes.len() / 1024);
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binary_in_headless_chromium_renders_every_page() {
    let browser = chromium();
    let fixture = Fixture::new().await;
    let scene = Scene::make(&fixture).await;
    // Some history for the timeline to draw: grants that ended hours and days ago.
    let app = App::new(&fixture.sdk, fixture.settings.clone());
    for (requester, from, to) in
        [("alice@example.com", 9.0, 8.0), ("dave@example.com", 16.5, 13.0), ("alice@example.com", 60.0, 58.0)]
    {
        let id = grant(&app, requester, "readonly", "INC-60 earlier incident", None).await;
        revoke(&app, &id, requester).await;
        backdate(&fixture, &id, from, to).await;
    }
    // Live grants that started a while ago, so their bars have a length.
    for (id, hours) in
        [(&scene.frank, 2.5), (&scene.alice, 0.75), (&scene.hostile, 0.5), (&scene.dave, 1.3), (&scene.erin, 0.8)]
    {
        set(&fixture, id, &[("created_at", time(hours)), ("activated_at", time(hours))]).await;
    }
    let server = Binary::start(&fixture);
    let base = format!("http://{}", server.addr);
    let profile = tempfile::tempdir().unwrap();
    println!("{} against {base}", browser.display());

    let live = dom(profile.path(), &format!("{base}/"));
    assert!(live.contains("<h1>Live grants</h1>"), "{live}");
    for id in scene.live() {
        assert!(row_class(&live, &id).is_some(), "{id} in the rendered live page:\n{live}");
    }
    assert_eq!(row_class(&live, &scene.dave), Some("grant overdue"));
    assert_eq!(row_class(&live, &scene.frank), Some("grant break-glass"));
    assert_eq!(row_class(&live, &scene.carol), None);
    // The hostile values are text nodes in the rendered document: serialised escaped, never elements.
    assert!(live.contains("&lt;script&gt;alert('reason')&lt;/script&gt; INC-66"), "{live}");
    assert!(live.contains("&lt;img src=x onerror=alert(1)&gt;@example.com"), "{live}");
    assert!(!live.contains("<script") && !live.contains("<img"), "{live}");

    let expiring = dom(profile.path(), &format!("{base}/expiring"));
    assert_eq!(row_class(&expiring, &scene.erin), Some("grant expiring"), "{expiring}");
    let overdue = dom(profile.path(), &format!("{base}/overdue"));
    assert_eq!(row_class(&overdue, &scene.dave), Some("grant overdue"), "{overdue}");
    assert_eq!(row_class(&overdue, &scene.alice), None);
    let shown = dom(profile.path(), &format!("{base}/grants/{}", scene.frank));
    assert!(shown.contains("BREAK-GLASS") && shown.contains("INC-71 outage"), "{shown}");
    let history = dom(profile.path(), &format!("{base}/requesters/carol@example.com"));
    assert_eq!(row_class(&history, &scene.carol), Some("grant ended"), "{history}");
    let day = dom(profile.path(), &format!("{base}/timeline?window=24h"));
    assert!(day.contains("<svg class=\"timeline\""), "{day}");
    assert_eq!(day.matches("<rect class=\"bar ended\"").count(), 3, "carol's, alice's and dave's earlier: {day}");
    let week = dom(profile.path(), &format!("{base}/timeline?window=7d"));
    assert_eq!(week.matches("<rect class=\"bar ended\"").count(), 4, "and alice's of two days ago: {week}");

    screenshot(profile.path(), &format!("{base}/"), "live.png", 600);
    screenshot(profile.path(), &format!("{base}/timeline?window=24h"), "timeline.png", 520);
    screenshot(profile.path(), &format!("{base}/grants/{}", scene.frank), "grant.png", 900);
    screenshot(profile.path(), &format!("{base}/requesters/alice@example.com"), "requester.png", 500);
}

// ---------------------------------------------------------------------------------------------------------------
// Cost and latency at scale.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_over_10000_history_rows_and_200_live_grants_is_one_round_of_queries() {
    let fixture = Fixture::new().await;
    let loaded = test_support::history::load(&fixture, 10_000, 8).await;
    let app = App::new(&fixture.sdk, fixture.settings.clone());
    let started = Instant::now();
    for n in 0..200 {
        grant(&app, &format!("user{n}@example.com"), "readonly", "INC-80 load", None).await;
    }
    println!(
        "10,000 history rows in {:.1} s, 200 grants through the provisioner in {:.1} s",
        loaded.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let server = in_process(&fixture).await;
    let addr = server.addr;
    assert_eq!(json_of(addr, "/").await["grants"].as_array().unwrap().len(), 200, "warm-up, and every live grant");
    server.operations.take();

    let runs = 5;
    let mut html_ms = Vec::new();
    let mut json_ms = Vec::new();
    let scanned_before = server.scanned.scanned();
    for _ in 0..runs {
        let t = Instant::now();
        let page = html(addr, "/").await.ok();
        html_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(page.body.contains("id=\"count-live\">200<"));
        let t = Instant::now();
        json_of(addr, "/").await;
        json_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let operations = server.operations.take();
    let scanned = server.scanned.scanned() - scanned_before;
    assert_eq!(operations, vec!["Query"; 16 * 2 * runs], "16 Queries a page, in one round, nothing else");
    assert_eq!(scanned, 200 * 2 * runs as u64, "DynamoDB read the 200 live grants, not the 10,000 history rows");

    let scanned_before = server.scanned.scanned();
    let t = Instant::now();
    let timeline = json_of(addr, "/timeline?window=24h").await;
    let timeline_ms = t.elapsed().as_secs_f64() * 1000.0;
    let timeline_ops = server.operations.take();
    assert_eq!(timeline["grants"].as_array().unwrap().len(), 200);
    assert!(timeline_ops.iter().all(|op| *op == "Query"));
    let timeline_scanned = server.scanned.scanned() - scanned_before;
    assert_eq!(timeline_scanned, 200 + 200, "the live grants twice, none of the month-old history rows");
    assert_eq!(timeline_ops.len(), 16 + 1, "one round on by-expiry, then one Query on by-database");

    let stats = |ms: &mut Vec<f64>| {
        ms.sort_by(f64::total_cmp);
        (ms[ms.len() / 2], ms[ms.len() * 95 / 100], ms[ms.len() - 1])
    };
    let (h50, h95, hmax) = stats(&mut html_ms);
    let (j50, j95, jmax) = stats(&mut json_ms);
    println!("dashboard live page, 200 live grants, 10,000 history rows, {runs} runs each:");
    println!(
        "  HTML: median {h50:.1} ms, p95 {h95:.1} ms, max {hmax:.1} ms ({} KB)",
        html(addr, "/").await.body.len() / 1024
    );
    println!("  JSON: median {j50:.1} ms, p95 {j95:.1} ms, max {jmax:.1} ms");
    println!("  per page: 16 Queries, {} items read by DynamoDB", scanned / (2 * runs as u64));
    println!("  timeline 24h: {timeline_ms:.1} ms, {} Queries", timeline_ops.len());
}
