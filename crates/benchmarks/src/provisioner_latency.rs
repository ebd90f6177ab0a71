//! (3) Provisioner warm latency: `--grants` temporary-user grants through a warm `App` (what the Lambda runs per
//! invocation), interleaved one for one with the floor: the same CREATE ROLE transaction (the provisioner's plan,
//! SCRAM verifier and memberships included) sent in one round trip, plus the same two conditional PutItems issued
//! directly through the SDK.

use crate::dynamo_time::DynamoTime;
use crate::setup::Bench;
use crate::stats::{median, ms, percentile, verdict};
use anyhow::{ensure, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use grant_adapters::store::{self, to_item};
use grant_adapters::{ConfigSource, Connections, GrantStore};
use grant_model::grant::{now_seconds, NewGrant};
use grant_model::{naming, sql, Config, Grant, Password, TargetConfig};
use provisioner::App;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use test_support::fixture::{grant_request, Fixture, ADMIN_PASSWORD, ADMIN_USER, DB};

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Grants per run, each one beside a floor grant.
    #[arg(long, default_value_t = 500)]
    pub grants: usize,
}

const TARGET: &str = "readonly";
const TARGET_RATIO: f64 = 1.5;
/// Grants before measuring: config fetched, admin connection open, as in a warm container.
const WARM_UP: usize = 10;

type Item = HashMap<String, AttributeValue>;

/// One grant's timings, in milliseconds.
#[derive(Default)]
struct Sample {
    total: f64,
    dynamo: f64,
}

struct Run {
    provisioner: Vec<Sample>,
    floor: Vec<Sample>,
    verifier_ms: Vec<f64>,
}

pub async fn run(options: &Options, runs: usize) -> Result<()> {
    println!("\n## provisioner-latency: {} warm grants per run beside the floor, {runs} runs", options.grants);
    let bench = Bench::on(Fixture::new().await);
    let meter = DynamoTime::default();
    let app = App {
        store: std::sync::Arc::new(GrantStore::from_client(meter.client(&bench.sdk), &bench.table)),
        source: ConfigSource::new(&bench.sdk, &bench.settings),
        connections: Connections::default(),
        delivery: grant_adapters::Delivery::new(&bench.sdk, &bench.settings.secret_name_prefix),
        settings: bench.settings.clone(),
    };
    let floor = Floor::connect(&bench).await?;
    for n in 0..WARM_UP {
        grant(&app, &meter, &format!("warm-{n}@example.com")).await?;
        floor.grant(&floor.prepare(&format!("warm-floor-{n}@example.com"))?.0).await?;
    }

    let mut results = Vec::new();
    for n in 1..=runs {
        let mut run = Run { provisioner: Vec::new(), floor: Vec::new(), verifier_ms: Vec::new() };
        for i in 0..options.grants {
            let (prepared, verifier) = floor.prepare(&format!("floor{n}-{i}@example.com"))?;
            run.verifier_ms.push(ms(verifier));
            let requester = format!("grant{n}-{i}@example.com");
            // Alternate which goes first, so neither always finds the other's work just done.
            if i % 2 == 0 {
                run.provisioner.push(grant(&app, &meter, &requester).await?);
                run.floor.push(floor.grant(&prepared).await?);
            } else {
                run.floor.push(floor.grant(&prepared).await?);
                run.provisioner.push(grant(&app, &meter, &requester).await?);
            }
        }
        let (p, f) = (totals(&run.provisioner), totals(&run.floor));
        println!(
            "run {n}: provisioner p50 {:.2} ms, p99 {:.2} ms; floor p50 {:.2} ms, p99 {:.2} ms; p50 ratio {:.2}x",
            percentile(&p, 50.0),
            percentile(&p, 99.0),
            percentile(&f, 50.0),
            percentile(&f, 99.0),
            percentile(&p, 50.0) / percentile(&f, 50.0)
        );
        results.push(run);
    }
    report(options.grants, &results);
    Ok(())
}

/// One grant through the provisioner, with its DynamoDB part.
async fn grant(app: &App, meter: &DynamoTime, requester: &str) -> Result<Sample> {
    meter.take();
    let started = Instant::now();
    let response = app.handle(grant_request(requester, TARGET)).await?;
    let total = ms(started.elapsed());
    ensure!(response["ok"] == Value::Bool(true), "grant refused: {response}");
    Ok(Sample { total, dynamo: ms(meter.take().0) })
}

/// The floor's own admin connection and DynamoDB client, and the target as configured.
struct Floor {
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    admin: tokio_postgres::Client,
    target: TargetConfig,
    user_prefix: String,
    marker_role: String,
}

/// Everything the floor sends, made before its clock starts.
struct Prepared {
    pending: Item,
    active: Item,
    /// The pending grant as written: the second write's condition is made from it.
    pending_grant: Grant,
    transaction: String,
}

impl Floor {
    async fn connect(bench: &Bench) -> Result<Floor> {
        let config = Config::parse(bench.config().to_string().as_bytes())?;
        let target = config.databases[DB].targets[TARGET].clone();
        Ok(Floor {
            dynamo: aws_sdk_dynamodb::Client::new(&bench.sdk),
            table: bench.table.clone(),
            admin: bench.pg.connect(ADMIN_USER, ADMIN_PASSWORD, DB).await.context("floor admin connection")?,
            target,
            marker_role: config.marker_role(),
            user_prefix: config.user_prefix.clone(),
        })
    }

    /// The rows and the transaction for a grant to `requester`, and how long the SCRAM verifier took to compute
    /// (the provisioner pays that inside its latency; the floor gets it for free).
    fn prepare(&self, requester: &str) -> Result<(Prepared, Duration)> {
        let now = now_seconds();
        let pending = Grant::new_pending(
            NewGrant {
                grant_id: uuid::Uuid::new_v4().to_string(),
                request_id: None,
                requester: requester.into(),
                approver: Some("bob@example.com".into()),
                reason: "INC-4521 check failed migration".into(),
                database: DB.into(),
                target: TARGET.into(),
                strategy: self.target.strategy,
                db_user: naming::temp_username(&self.user_prefix, requester),
                roles: self.target.roles.clone(),
                duration_seconds: self.target.default_duration_seconds.unwrap_or(3600),
                user_prefix: "jit_".into(),
                break_glass: false,
            },
            now,
        );
        let mut active = pending.clone();
        active.activate(now)?;
        let started = Instant::now();
        let verifier = Password::generate().scram_verifier();
        let verifier_took = started.elapsed();
        let statements = sql::create_temp_user(&sql::TempUser {
            username: pending.db_user(),
            scram_verifier: Some(&verifier),
            valid_until: pending.expires_at(),
            connection_limit: self.target.connection_limit,
            roles: pending.roles(),
            marker_role: &self.marker_role,
            statements: &self.target.statements,
        });
        let body: String = statements.iter().map(|s| format!("{};", s.sql)).collect();
        let prepared = Prepared {
            pending: to_item(&pending)?,
            active: to_item(&active)?,
            pending_grant: pending,
            transaction: format!("BEGIN;{body}COMMIT;"),
        };
        Ok((prepared, verifier_took))
    }

    /// PutItem pending (if new), the transaction in one round trip, PutItem active (if unchanged and not leased):
    /// the provisioner's conditions, taken from the store.
    async fn grant(&self, prepared: &Prepared) -> Result<Sample> {
        let started = Instant::now();
        self.dynamo
            .put_item()
            .table_name(&self.table)
            .set_item(Some(prepared.pending.clone()))
            .condition_expression("attribute_not_exists(grant_id)")
            .send()
            .await?;
        let dynamo_first = started.elapsed();
        self.admin.batch_execute(&prepared.transaction).await?;
        let before_second = Instant::now();
        let condition = store::replace_condition(&prepared.pending_grant, store::Expect::NoLiveLease);
        let names = store::ATTRIBUTE_ALIASES.iter().map(|(alias, name)| (alias.to_string(), name.to_string()));
        let values = condition.values.into_iter().map(|(name, value)| (name.to_string(), value));
        let (names, values) = (names.collect(), values.collect());
        self.dynamo
            .put_item()
            .table_name(&self.table)
            .set_item(Some(prepared.active.clone()))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await?;
        let total = started.elapsed();
        Ok(Sample { total: ms(total), dynamo: ms(dynamo_first + before_second.elapsed()) })
    }
}

fn totals(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.total).collect()
}

/// The provisioner's or the floor's samples of a run.
type Side = fn(&Run) -> &Vec<Sample>;

fn report(grants: usize, results: &[Run]) {
    let med = |f: &dyn Fn(&Run) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
    let p = |samples: Side, q: f64| med(&|r| percentile(&totals(samples(r)), q));
    let dynamo = |samples: Side| med(&|r| percentile(&samples(r).iter().map(|s| s.dynamo).collect::<Vec<_>>(), 50.0));
    let (provisioner, floor): (Side, Side) = (|r| &r.provisioner, |r| &r.floor);
    let ratio = med(&|r| percentile(&totals(&r.provisioner), 50.0) / percentile(&totals(&r.floor), 50.0));
    println!("\n| provisioner-latency, {grants} grants (median of {} runs) | p50 | p99 |", results.len());
    println!("|---|---|---|");
    println!("| provisioner `grant`, warm | {:.2} ms | {:.2} ms |", p(provisioner, 50.0), p(provisioner, 99.0));
    println!("| floor: CREATE ROLE transaction + 2 PutItem | {:.2} ms | {:.2} ms |", p(floor, 50.0), p(floor, 99.0));
    println!(
        "| of which DynamoDB (moto): provisioner / floor | {:.2} / {:.2} ms | |",
        dynamo(provisioner),
        dynamo(floor)
    );
    println!(
        "| SCRAM verifier, computed by the provisioner (floor: beforehand) | {:.2} ms | |",
        med(&|r| { median(&r.verifier_ms) })
    );
    println!("| p50 ratio, measured side by side | {ratio:.2}x | |");
    println!("target p50 <= {TARGET_RATIO}x the floor: {} ({ratio:.2}x)", verdict(ratio <= TARGET_RATIO));
}
