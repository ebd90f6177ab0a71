//! (5) The dashboard's live page over a long history. A table with `--history` revoked rows and `--live` real
//! grants; `grantctl serve`'s router in this process, its DynamoDB client counting Queries and items read
//! (DynamoDB's own `ScannedCount`). Each round asks for the page as HTML and as JSON over HTTP and, side by side,
//! makes the floor: the same 16 index Queries through `GrantStore::live_grants` with no HTTP and no rendering. The
//! order rotates from round to round, because the machine is shared and noisy.

use crate::setup::Bench;
use crate::stats::{median, ms, percentile, verdict};
use anyhow::{ensure, Context, Result};
use grant_adapters::GrantStore;
use grant_model::item::EXPIRY_SHARDS;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use test_support::fixture::Fixture;
use test_support::history;
use test_support::ScannedCount;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Revoked grants in the table (history the live page must not read).
    #[arg(long, default_value_t = 10_000)]
    pub history: usize,
    /// Live grants (real grants, made by the provisioner), every one on the page.
    #[arg(long, default_value_t = 200)]
    pub live: usize,
    /// Rounds (HTML page, JSON page, floor) per run.
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
}

/// A page is one round of Queries: one per partition of the expiry index, active and pending.
const PAGE_QUERIES: u64 = 2 * EXPIRY_SHARDS as u64;

struct Run {
    html_ms: Vec<f64>,
    json_ms: Vec<f64>,
    floor_ms: Vec<f64>,
    queries_per_page: f64,
    items_per_page: f64,
    html_bytes: usize,
}

pub async fn run(options: &Options, runs: usize) -> Result<()> {
    println!("\n## dashboard: {} history rows + {} live grants, {runs} runs", options.history, options.live);
    let bench = Bench::on(Fixture::new().await);
    let took = history::load(&bench, options.history, 8).await;
    println!("loaded {} history rows in {:.1} s", options.history, took.as_secs_f64());
    let started = Instant::now();
    bench.grant_many("live", options.live).await?;
    println!("made {} grants through the provisioner in {:.1} s", options.live, started.elapsed().as_secs_f64());

    let page_reads = ScannedCount::default();
    let store = GrantStore::from_client(page_reads.client(&bench.sdk), &bench.table);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(grantctl::serve::serve_on(listener, store));
    let floor_reads = ScannedCount::default();
    let floor = GrantStore::from_client(floor_reads.client(&bench.sdk), &bench.table);
    let warm = get(addr, "application/json").await?;
    ensure!(warm.contains("\"grants\""), "unexpected page: {warm}");

    let mut results = Vec::new();
    for n in 1..=runs {
        let (queries, items) = (page_reads.requests(), page_reads.scanned());
        let mut run = Run {
            html_ms: Vec::new(),
            json_ms: Vec::new(),
            floor_ms: Vec::new(),
            queries_per_page: 0.0,
            items_per_page: 0.0,
            html_bytes: 0,
        };
        for round in 0..options.requests {
            for step in 0..3 {
                let started = Instant::now();
                match (round + step) % 3 {
                    0 => {
                        let page = get(addr, "text/html").await?;
                        ensure!(page.contains(&format!("id=\"count-live\">{}<", options.live)), "not every grant");
                        run.html_bytes = page.len();
                        run.html_ms.push(ms(started.elapsed()));
                    }
                    1 => {
                        get(addr, "application/json").await?;
                        run.json_ms.push(ms(started.elapsed()));
                    }
                    _ => {
                        let grants = floor.live_grants().await?;
                        ensure!(grants.len() == options.live, "the floor read {} grants", grants.len());
                        run.floor_ms.push(ms(started.elapsed()));
                    }
                }
            }
        }
        let pages = (2 * options.requests) as f64;
        run.queries_per_page = (page_reads.requests() - queries) as f64 / pages;
        run.items_per_page = (page_reads.scanned() - items) as f64 / pages;
        println!(
            "run {n}: live page HTML p50 {:.1} ms, JSON p50 {:.1} ms, floor p50 {:.1} ms; {:.1} Queries and {:.0} \
             items read per page ({} KB of HTML)",
            median(&run.html_ms),
            median(&run.json_ms),
            median(&run.floor_ms),
            run.queries_per_page,
            run.items_per_page,
            run.html_bytes / 1024
        );
        results.push(run);
    }
    report(options, &results);
    Ok(())
}

fn report(options: &Options, results: &[Run]) {
    let all = |f: &dyn Fn(&Run) -> &Vec<f64>| results.iter().flat_map(|r| f(r).iter().copied()).collect::<Vec<_>>();
    let (html, json, floor) = (all(&|r| &r.html_ms), all(&|r| &r.json_ms), all(&|r| &r.floor_ms));
    let queries = median(&results.iter().map(|r| r.queries_per_page).collect::<Vec<_>>());
    let items = median(&results.iter().map(|r| r.items_per_page).collect::<Vec<_>>());
    println!("\n| dashboard ({} runs x {} rounds) | p50 | p95 |", results.len(), options.requests);
    println!("|---|---|---|");
    println!("| live page, HTML | {:.1} ms | {:.1} ms |", median(&html), percentile(&html, 95.0));
    println!("| live page, JSON | {:.1} ms | {:.1} ms |", median(&json), percentile(&json, 95.0));
    println!(
        "| floor: the same Queries, no HTTP, no rendering | {:.1} ms | {:.1} ms |",
        median(&floor),
        percentile(&floor, 95.0)
    );
    println!("| Queries / items read per page | {queries:.0} / {items:.0} | |");
    println!(
        "target one round of {PAGE_QUERIES} Queries per page: {}",
        verdict((queries - PAGE_QUERIES as f64).abs() < f64::EPSILON)
    );
    println!("target items read = live grants ({}): {}", options.live, verdict(items <= options.live as f64));
    println!("page / floor at p50: {:.2}x", median(&html) / median(&floor));
}

/// `GET /` with `accept`, on its own connection; the body.
async fn get(addr: SocketAddr, accept: &'static str) -> Result<String> {
    tokio::task::spawn_blocking(move || -> Result<String> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        write!(stream, "GET / HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n")?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw)?;
        let (head, body) = raw.split_once("\r\n\r\n").context("no HTTP head")?;
        ensure!(head.starts_with("HTTP/1.1 200"), "{head}");
        Ok(body.to_string())
    })
    .await?
}
