//! (4) Lambda footprint: the size of the release binaries (the `bootstrap` Lambda runs), the time from spawning a
//! binary to its first response under the Runtime API double (a cold start, with the config in S3 and moto as
//! the AWS endpoint), and peak RSS (`VmHWM`) after that first response and after warm invocations.

use crate::setup::{Bench, Granted};
use crate::stats::{median, ms, verdict};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use test_support::fixture::{grant_request, Fixture};
use test_support::{Invocation, LambdaProcess, RuntimeApi};

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Directory with the release `provisioner` and `reaper` binaries [default: this program's own directory].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Warm invocations after the first one, before peak RSS is read again.
    #[arg(long, default_value_t = 50)]
    pub warm_invocations: usize,
}

const SCHEDULED_EVENT: &str = include_str!("../../../eventbridge/scheduled-event.json");
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const MB: f64 = 1_000_000.0;
const TARGET_SIZE_MB: f64 = 10.0;
const TARGET_FIRST_RESPONSE_MS: f64 = 100.0;
const TARGET_RSS_MB: f64 = 40.0;

/// One cold start of one function.
struct Start {
    first_response_ms: f64,
    /// CPU time the process used up to its first response: the rest of that time it was waiting.
    cpu_first_ms: f64,
    /// Time moto spent serving the function's requests up to its first response, and how many there were.
    moto_first_ms: f64,
    moto_requests: u64,
    rss_after_first_kb: u64,
    rss_peak_kb: u64,
    warm_p50_ms: f64,
}

pub async fn run(options: &Options, runs: usize) -> Result<()> {
    println!("\n## footprint: {runs} cold starts of each function, {} warm invocations each", options.warm_invocations);
    let bin_dir = match &options.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?.parent().context("bench has no directory")?.to_path_buf(),
    };
    let binaries = [bin_dir.join("provisioner"), bin_dir.join("reaper")];
    let mut sizes = Vec::new();
    for binary in &binaries {
        let size = fs::metadata(binary)
            .with_context(|| format!("{} (build with `cargo build --release`)", binary.display()))?
            .len();
        println!("{}: {size} bytes", binary.display());
        sizes.push(size as f64 / MB);
    }

    let bench = Bench::on(Fixture::new().await);
    let (mut provisioner, mut reaper) = (Vec::new(), Vec::new());
    for n in 1..=runs {
        let (start, granted) = provisioner_start(&bench, &binaries[0], n, options.warm_invocations)?;
        print_start(n, "provisioner", &start);
        provisioner.push(start);
        let start = reaper_start(&bench, &binaries[1], &granted, options.warm_invocations).await?;
        print_start(n, "reaper", &start);
        reaper.push(start);
    }
    report(&sizes, &provisioner, &reaper);
    Ok(())
}

/// Cold start, then warm grants. Returns the grants made, for the reaper to revoke.
fn provisioner_start(bench: &Bench, binary: &Path, run: usize, warm: usize) -> Result<(Start, Vec<Granted>)> {
    let request = |n: usize| grant_request(&format!("cold{run}-{n}@example.com"), "readonly");
    let (cold, first) = ColdStart::run(bench, binary, request(0))?;
    let mut granted = vec![Granted::from_response(&first)?];
    let mut warm_ms = Vec::new();
    for n in 1..=warm {
        let started = Instant::now();
        granted.push(Granted::from_response(&cold.respond(request(n))?)?);
        warm_ms.push(ms(started.elapsed()));
    }
    Ok((cold.finish(warm_ms)?, granted))
}

/// Cold start on the schedule's event (nothing expired: the usual pass), then one pass revoking `granted`, then
/// more empty passes.
async fn reaper_start(bench: &Bench, binary: &Path, granted: &[Granted], warm: usize) -> Result<Start> {
    let event: Value = serde_json::from_str(SCHEDULED_EVENT)?;
    let (cold, _) = ColdStart::run(bench, binary, event.clone())?;
    bench.expire(granted).await?;
    let summary = cold.respond(event.clone())?;
    if summary["revoked"] != json!(granted.len()) {
        bail!("the reaper revoked {} of {} expired grants: {summary}", summary["revoked"], granted.len());
    }
    let mut warm_ms = Vec::new();
    for _ in 1..warm {
        let started = Instant::now();
        cold.respond(event.clone())?;
        warm_ms.push(ms(started.elapsed()));
    }
    cold.finish(warm_ms)
}

/// A function process from spawn to its first response, still running for warm invocations.
struct ColdStart {
    api: RuntimeApi,
    process: LambdaProcess,
    pid: u32,
    start: Start,
}

impl ColdStart {
    /// Spawns `binary` under a fresh Runtime API and answers `event`; returns the measures and the response.
    fn run(bench: &Bench, binary: &Path, event: Value) -> Result<(ColdStart, Value)> {
        let api = RuntimeApi::start();
        let moto_before = test_support::moto().busy()?;
        let started = Instant::now();
        let process = LambdaProcess::spawn(binary, &api, &bench.lambda_env());
        let response = respond(&api, &process, event)?;
        let first_response_ms = ms(started.elapsed());
        let moto_after = test_support::moto().busy()?;
        let pid = child_pid(binary)?;
        let start = Start {
            first_response_ms,
            cpu_first_ms: cpu_ms(pid)?,
            moto_first_ms: moto_after.busy_ms - moto_before.busy_ms,
            moto_requests: moto_after.requests - moto_before.requests,
            rss_after_first_kb: vm_hwm_kb(pid)?,
            rss_peak_kb: 0,
            warm_p50_ms: 0.0,
        };
        Ok((ColdStart { api, process, pid, start }, response))
    }

    fn respond(&self, event: Value) -> Result<Value> {
        respond(&self.api, &self.process, event)
    }

    /// The measures, with peak RSS read now and the warm invocations' median.
    fn finish(self, warm_ms: Vec<f64>) -> Result<Start> {
        Ok(Start { rss_peak_kb: vm_hwm_kb(self.pid)?, warm_p50_ms: median(&warm_ms), ..self.start })
    }
}

/// Invokes and returns the function's response; an error, or no answer, fails the benchmark.
fn respond(api: &RuntimeApi, process: &LambdaProcess, event: Value) -> Result<Value> {
    match tokio::task::block_in_place(|| api.invoke(event, INVOKE_TIMEOUT)) {
        Invocation::Response(response) => Ok(response),
        other => bail!("{other:?}\n--- function output ---\n{}", process.output()),
    }
}

/// The pid of our child process running `binary` (LambdaProcess does not say).
fn child_pid(binary: &Path) -> Result<u32> {
    let me = std::process::id();
    let exe = binary.canonicalize()?;
    for entry in fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name, which ends with the last ')': state, then the parent's pid.
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if parent == Some(me) && fs::read_link(format!("/proc/{pid}/exe")).ok().as_deref() == Some(exe.as_path()) {
            return Ok(pid);
        }
    }
    bail!("no child process runs {}", exe.display())
}

/// Peak resident set size so far, from /proc (kB).
fn vm_hwm_kb(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).context("no VmHWM in /proc/<pid>/status")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// CPU time of all the process's threads so far, from the scheduler's own accounting (ns in /proc).
fn cpu_ms(pid: u32) -> Result<f64> {
    let mut nanos = 0u64;
    for task in fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        let schedstat = fs::read_to_string(task.path().join("schedstat"))?;
        nanos += schedstat.split_whitespace().next().context("empty schedstat")?.parse::<u64>()?;
    }
    Ok(nanos as f64 / 1e6)
}

fn print_start(run: usize, name: &str, start: &Start) {
    println!(
        "run {run}: {name}: first response {:.1} ms after spawn ({:.1} ms of it on CPU, {:.1} ms of it moto serving {} \
         requests); peak RSS {:.1} MB after it, {:.1} MB after the warm invocations (warm p50 {:.2} ms)",
        start.first_response_ms,
        start.cpu_first_ms,
        start.moto_first_ms,
        start.moto_requests,
        start.rss_after_first_kb as f64 * 1024.0 / MB,
        start.rss_peak_kb as f64 * 1024.0 / MB,
        start.warm_p50_ms
    );
}

fn report(sizes: &[f64], provisioner: &[Start], reaper: &[Start]) {
    let med = |starts: &[Start], f: &dyn Fn(&Start) -> f64| median(&starts.iter().map(f).collect::<Vec<_>>());
    let rss = |s: &Start| s.rss_peak_kb as f64 * 1024.0 / MB;
    println!("\n| footprint (median of {} cold starts) | provisioner | reaper | target |", provisioner.len());
    println!("|---|---|---|---|");
    println!("| binary size | {:.2} MB | {:.2} MB | <= {TARGET_SIZE_MB} MB |", sizes[0], sizes[1]);
    let first = |s: &Start| s.first_response_ms;
    println!(
        "| spawn to first response | {:.1} ms | {:.1} ms | <= {TARGET_FIRST_RESPONSE_MS} ms |",
        med(provisioner, &first),
        med(reaper, &first)
    );
    let cpu = |s: &Start| s.cpu_first_ms;
    println!("| of which on CPU (all threads) | {:.1} ms | {:.1} ms | |", med(provisioner, &cpu), med(reaper, &cpu));
    let moto = |s: &Start| s.moto_first_ms;
    let requests = |s: &Start| s.moto_requests as f64;
    println!(
        "| of which moto serving requests | {:.1} ms ({:.0} requests) | {:.1} ms ({:.0} requests) | |",
        med(provisioner, &moto),
        med(provisioner, &requests),
        med(reaper, &moto),
        med(reaper, &requests)
    );
    let not_moto = |s: &Start| s.first_response_ms - s.moto_first_ms;
    println!(
        "| spawn to first response, less moto's time | {:.1} ms | {:.1} ms | |",
        med(provisioner, &not_moto),
        med(reaper, &not_moto)
    );
    let after_first = |s: &Start| s.rss_after_first_kb as f64 * 1024.0 / MB;
    println!(
        "| peak RSS after the first response | {:.1} MB | {:.1} MB | |",
        med(provisioner, &after_first),
        med(reaper, &after_first)
    );
    println!(
        "| peak RSS after the warm invocations | {:.1} MB | {:.1} MB | <= {TARGET_RSS_MB} MB |",
        med(provisioner, &rss),
        med(reaper, &rss)
    );
    let warm = |s: &Start| s.warm_p50_ms;
    println!(
        "| warm invocation p50 (incl. Runtime API) | {:.2} ms | {:.2} ms | |",
        med(provisioner, &warm),
        med(reaper, &warm)
    );
    let worst = |f: &dyn Fn(&Start) -> f64| med(provisioner, f).max(med(reaper, f));
    let largest = sizes.iter().copied().fold(0.0, f64::max);
    println!("target size <= {TARGET_SIZE_MB} MB: {} ({largest:.2} MB)", verdict(largest <= TARGET_SIZE_MB));
    println!(
        "target first response <= {TARGET_FIRST_RESPONSE_MS} ms: {} ({:.1} ms)",
        verdict(worst(&first) <= TARGET_FIRST_RESPONSE_MS),
        worst(&first)
    );
    println!(
        "target peak RSS <= {TARGET_RSS_MB} MB: {} ({:.1} MB)",
        verdict(worst(&rss) <= TARGET_RSS_MB),
        worst(&rss)
    );
}
