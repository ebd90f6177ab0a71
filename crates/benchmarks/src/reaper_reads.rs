//! (1) Reaper read cost vs table size. A table with `--history` revoked rows and `--expired` expired grants; items
//! read by a reaper pass, side by side with a Scan-based pass (what a reaper without the sparse index would do)
//! over the same table, both counted from DynamoDB's own `ScannedCount` by an SDK interceptor on each client.

use crate::setup::Bench;
use crate::stats::{median, verdict};
use anyhow::{ensure, Result};
use aws_sdk_dynamodb::types::{AttributeValue, ComparisonOperator, Condition};
use grant_adapters::GrantStore;
use grant_model::item::EXPIRY_SHARDS;
use reaper::Reaper;
use std::time::{Duration, Instant};
use test_support::fixture::Fixture;
use test_support::history;
use test_support::ScannedCount;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Revoked grants in the table (history the reaper must not read).
    #[arg(long, default_value_t = 100_000)]
    pub history: usize,
    /// Expired active grants to reap in each run (real grants, made by the provisioner).
    #[arg(long, default_value_t = 100)]
    pub expired: usize,
    /// BatchWriteItem requests in flight while loading the history.
    #[arg(long, default_value_t = 8)]
    pub load_concurrency: usize,
}

/// Queries a pass makes: each active partition by expiry, each pending partition whole.
const PASS_QUERIES: u64 = 2 * EXPIRY_SHARDS as u64;
const TARGET_RATIO: f64 = 1000.0;
const PASS_DEADLINE: Duration = Duration::from_secs(900);

struct Run {
    table_items: u64,
    reaper_reads: u64,
    reaper_queries: u64,
    reaper_ms: f64,
    scan_reads: u64,
    scan_pages: u64,
    scan_ms: f64,
}

pub async fn run(options: &Options, runs: usize) -> Result<()> {
    println!("\n## reaper-reads: {} history rows + {} expired grants, {runs} runs", options.history, options.expired);
    let bench = Bench::on(Fixture::new().await);
    let took = history::load(&bench, options.history, options.load_concurrency).await;
    println!(
        "loaded {} history rows with BatchWriteItem ({} in flight) in {:.1} s: {:.0} rows/s",
        options.history,
        options.load_concurrency,
        took.as_secs_f64(),
        options.history as f64 / took.as_secs_f64()
    );

    let mut results = Vec::new();
    for n in 1..=runs {
        let expired = bench.grant_many(&format!("reads{n}"), options.expired).await?;
        bench.expire(&expired).await?;
        // The scan goes first, so both passes find the same expired grants.
        let (scan_found, scan_reads, scan_pages, scan_ms) = scan_pass(&bench).await?;
        ensure!(scan_found == expired.len(), "the scan found {scan_found} expired grants, not {}", expired.len());

        let reads = ScannedCount::default();
        let store = GrantStore::from_client(reads.client(&bench.sdk), &bench.table);
        let reaper = Reaper::with_store(store, &bench.sdk, bench.settings.clone());
        let started = Instant::now();
        let summary = reaper.run_pass(Instant::now() + PASS_DEADLINE).await?;
        let reaper_ms = started.elapsed().as_secs_f64() * 1000.0;
        ensure!(summary.revoked == expired.len() && summary.failed == 0, "unexpected pass: {summary:?}");

        let run = Run {
            table_items: (options.history + n * options.expired) as u64,
            reaper_reads: reads.scanned(),
            reaper_queries: reads.requests(),
            reaper_ms,
            scan_reads,
            scan_pages,
            scan_ms,
        };
        println!(
            "run {n}: table {} items; reaper pass read {} items in {} queries ({:.0} ms); Scan-based pass read {} \
             items in {} pages ({:.0} ms); {:.0}x fewer",
            run.table_items,
            run.reaper_reads,
            run.reaper_queries,
            run.reaper_ms,
            run.scan_reads,
            run.scan_pages,
            run.scan_ms,
            ratio(&run)
        );
        results.push(run);
    }
    report(options, &results);
    Ok(())
}

/// What a reaper without the index would do: a paged Scan for expired active grants. Returns (grants found,
/// items read, pages, milliseconds).
///
/// The filter is the legacy `ScanFilter`, not a `FilterExpression`: DynamoDB reads (and bills) the same items
/// either way, but moto re-sorts the whole table for every 1 MB page of a FilterExpression scan, which at 100,000
/// rows takes minutes, while with ScanFilter it returns everything in one page (DynamoDB would still page by 1 MB).
async fn scan_pass(bench: &Bench) -> Result<(usize, u64, u64, f64)> {
    let scan = ScannedCount::default();
    let condition = |operator: ComparisonOperator, value: AttributeValue| {
        Condition::builder().comparison_operator(operator).attribute_value_list(value).build()
    };
    let now = AttributeValue::N(chrono::Utc::now().timestamp().to_string());
    let started = Instant::now();
    let mut pages = scan
        .client(&bench.sdk)
        .scan()
        .table_name(&bench.table)
        .scan_filter("status", condition(ComparisonOperator::Eq, AttributeValue::S("active".into()))?)
        .scan_filter("expires_at_epoch", condition(ComparisonOperator::Le, now)?)
        .into_paginator()
        .send();
    let mut found = 0;
    while let Some(page) = pages.next().await {
        found += page?.items.unwrap_or_default().len();
    }
    Ok((found, scan.scanned(), scan.requests(), started.elapsed().as_secs_f64() * 1000.0))
}

fn ratio(run: &Run) -> f64 {
    run.scan_reads as f64 / run.reaper_reads.max(1) as f64
}

fn report(options: &Options, results: &[Run]) {
    let med = |f: &dyn Fn(&Run) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
    let reads = med(&|r| r.reaper_reads as f64);
    let ratio = med(&ratio);
    // "Page overhead": at most one item beyond what matched per query, for page boundaries.
    let allowed = (options.expired as u64 + PASS_QUERIES) as f64;
    println!("\n| reaper-reads (median of {} runs) | value |", results.len());
    println!("|---|---|");
    println!("| table items | {:.0} |", med(&|r| r.table_items as f64));
    println!("| expired grants | {} |", options.expired);
    println!("| items read by the reaper pass | {reads:.0} in {:.0} queries |", med(&|r| r.reaper_queries as f64));
    println!(
        "| items read by a Scan-based pass | {:.0} in {:.0} pages |",
        med(&|r| r.scan_reads as f64),
        med(&|r| { r.scan_pages as f64 })
    );
    println!("| ratio, measured side by side | {ratio:.0}x fewer |");
    println!(
        "| pass time on moto / Scan time on moto | {:.0} ms / {:.0} ms |",
        med(&|r| r.reaper_ms),
        med(&|r| r.scan_ms)
    );
    println!("target reads <= expired + page overhead ({allowed:.0}): {}", verdict(reads <= allowed));
    println!("target >= {TARGET_RATIO:.0}x fewer than the scan: {} ({ratio:.0}x)", verdict(ratio >= TARGET_RATIO));
}
