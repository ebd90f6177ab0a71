//! The real `grantctl` binary against moto and a throwaway PostgreSQL cluster, reading rows the provisioner
//! wrote and revoking through the provisioner's code path.

use provisioner::App;
use serde_json::{json, Value};
use std::process::Command;
use test_support::fixture::{s, Fixture, DB};

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.status, 0, "grantctl failed: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs the binary with only the environment an operator would set: the table, the bucket, the endpoint.
fn grantctl(fixture: &Fixture, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_grantctl"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1")
        .envs(fixture.lambda_env())
        .envs(extra_env.iter().copied())
        .output()
        .expect("grantctl runs");
    Run {
        status: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

async fn grant(app: &App, requester: &str, target: &str, db_user: Option<&str>) -> Value {
    let mut request = json!({"requester": requester, "database": DB, "target": target, "reason": "INC-7 audit"});
    if let Some(user) = db_user {
        request["db_user"] = json!(user);
    }
    let response = app.handle(request).await.unwrap();
    assert_eq!(response["ok"], json!(true), "{response}");
    response["grant"].clone()
}

fn ids(items: &Value) -> Vec<&str> {
    items.as_array().expect("a JSON array").iter().map(|item| item["grant_id"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_show_and_history_read_what_the_provisioner_wrote() {
    let fixture = Fixture::new().await;
    let app = App::new(&fixture.sdk, fixture.settings.clone());
    let temp = grant(&app, "alice@example.com", "readonly", None).await;
    let escalation = grant(&app, "alice@example.com", "dba", Some("alice")).await;
    let ended = grant(&app, "carol@example.com", "readonly", None).await;
    let revoke = json!({"action": "revoke", "grant_id": ended["grant_id"], "actor": "carol@example.com"});
    assert_eq!(app.handle(revoke).await.unwrap()["ok"], json!(true));

    let active = grantctl(&fixture, &["active", "--json"], &[]).json();
    let mut active_ids = ids(&active);
    active_ids.sort();
    let mut expected = vec![temp["grant_id"].as_str().unwrap(), escalation["grant_id"].as_str().unwrap()];
    expected.sort();
    assert_eq!(active_ids, expected, "live grants only, not carol's revoked one");
    let row = active.as_array().unwrap().iter().find(|i| i["grant_id"] == temp["grant_id"]).unwrap();
    assert_eq!((row["status"].as_str(), row["db_user"].as_str()), (Some("active"), temp["db_user"].as_str()));
    assert_eq!(row["expires_at"], temp["expires_at"]);
    assert!(row["expires_at_epoch"].is_i64(), "the table's attribute names and types: {row}");

    let human = grantctl(&fixture, &["active"], &[]);
    assert_eq!(human.status, 0, "{}", human.stderr);
    println!("grantctl active:\n{}", human.stdout);
    assert!(human.stdout.contains(temp["db_user"].as_str().unwrap()), "{}", human.stdout);
    let in_an_hour = human.stdout.contains("in 59m") || human.stdout.contains("in 1h 00m");
    assert!(in_an_hour, "a one-hour grant expires in about an hour:\n{}", human.stdout);
    assert!(human.stdout.contains("2 live grant(s)"), "{}", human.stdout);
    assert_eq!(grantctl(&fixture, &["active", "--database", "nope", "--json"], &[]).json(), json!([]));

    let id = temp["grant_id"].as_str().unwrap();
    let shown = grantctl(&fixture, &["show", id, "--json"], &[]);
    let item = shown.json();
    let transitions: Vec<&str> =
        item["history"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap()).collect();
    assert_eq!(transitions, ["pending", "active"]);
    assert!(!shown.stdout.contains("password"), "{}", shown.stdout);
    let human = grantctl(&fixture, &["show", id], &[]);
    println!("grantctl show:\n{}", human.stdout);
    assert!(human.stdout.contains("history:") && human.stdout.contains("INC-7 audit"), "{}", human.stdout);

    let carol = grantctl(&fixture, &["history", "--requester", "carol@example.com", "--json"], &[]).json();
    assert_eq!(ids(&carol), [ended["grant_id"].as_str().unwrap()]);
    assert_eq!(
        (carol[0]["status"].as_str(), carol[0]["revoked_by"].as_str()),
        (Some("revoked"), Some("carol@example.com"))
    );
    let alice = grantctl(&fixture, &["history", "--requester", "alice@example.com", "--json"], &[]).json();
    let created: Vec<&str> = alice.as_array().unwrap().iter().map(|i| i["created_at"].as_str().unwrap()).collect();
    assert_eq!(created.len(), 2);
    assert!(created[0] >= created[1], "newest first: {created:?}");
    let limited = grantctl(&fixture, &["history", "--requester", "alice@example.com", "--limit", "1", "--json"], &[]);
    assert_eq!(ids(&limited.json()).len(), 1);
    let human = grantctl(&fixture, &["history", "--requester", "carol@example.com"], &[]);
    assert!(human.stdout.contains("revoked") && human.stdout.contains("1 grant(s) of carol@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_lists_live_grants_the_reaper_missed() {
    let fixture = Fixture::new().await;
    let app = App::new(&fixture.sdk, fixture.settings.clone());
    let missed = grant(&app, "dave@example.com", "readonly", None).await;
    let recent = grant(&app, "erin@example.com", "readonly", None).await;
    let _live = grant(&app, "frank@example.com", "readonly", None).await;
    assert_eq!(grantctl(&fixture, &["overdue", "--json"], &[]).json(), json!([]));
    assert!(grantctl(&fixture, &["overdue"], &[]).stdout.contains("no overdue grants"));

    fixture.expire(missed["grant_id"].as_str().unwrap(), 20 * 60).await;
    fixture.expire(recent["grant_id"].as_str().unwrap(), 5 * 60).await;
    let overdue = grantctl(&fixture, &["overdue", "--json"], &[]).json();
    assert_eq!(ids(&overdue), [missed["grant_id"].as_str().unwrap()], "five minutes late is within the schedule");
    let human = grantctl(&fixture, &["overdue"], &[]).stdout;
    println!("grantctl overdue:\n{human}");
    assert!(human.contains("20m 0") && human.contains("s ago") && human.contains("runbook"), "{human}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_goes_through_the_provisioner_and_is_idempotent() {
    let fixture = Fixture::new().await;
    let app = App::new(&fixture.sdk, fixture.settings.clone());
    let granted = grant(&app, "alice@example.com", "readonly", None).await;
    let (id, user) = (granted["grant_id"].as_str().unwrap(), granted["db_user"].as_str().unwrap());
    assert!(fixture.roles().await.contains(&user.to_string()));

    let args = ["revoke", id, "--reason", "INC-7 closed", "--actor", "ops@example.com"];
    let run = grantctl(&fixture, &args, &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("grant {id}: revoked")), "{}", run.stdout);
    assert!(!fixture.roles().await.contains(&user.to_string()), "the temporary user is dropped");
    let item = fixture.item(id).await;
    assert_eq!((s(&item, "status"), s(&item, "revoked_by")), ("revoked".into(), "ops@example.com".into()));
    let history = item["history"].as_l().unwrap();
    let last = history.last().unwrap().as_m().unwrap();
    assert!(last["note"].as_s().unwrap().contains("INC-7 closed"), "{last:?}");

    let again = grantctl(&fixture, &[&args[..], &["--json"]].concat(), &[]).json();
    assert_eq!((again["ok"].clone(), again["grant"]["status"].clone()), (json!(true), json!("revoked")));
    assert_eq!(
        fixture.item(id).await["history"].as_l().unwrap().len(),
        history.len(),
        "a second revoke records nothing"
    );

    // The actor may come from the environment, as a wrapper script would set it.
    let other = grant(&app, "bob2@example.com", "readonly", None).await;
    let other_id = other["grant_id"].as_str().unwrap();
    let run = grantctl(&fixture, &["revoke", other_id, "--reason", "x"], &[("GRANTCTL_ACTOR", "oncall@example.com")]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(s(&fixture.item(other_id).await, "revoked_by"), "oncall@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_and_faults_have_clear_errors_and_exit_statuses() {
    let fixture = Fixture::new().await;
    let before = fixture.items().await.len();

    let missing = grantctl(&fixture, &["show", "no-such-grant"], &[]);
    assert_eq!(missing.status, 1);
    assert!(missing.stderr.contains("not_found") && missing.stderr.contains("no-such-grant"), "{}", missing.stderr);
    let revoke = grantctl(&fixture, &["revoke", "no-such-grant", "--reason", "x", "--actor", "ops@example.com"], &[]);
    assert_eq!(revoke.status, 1, "{}", revoke.stderr);
    assert!(revoke.stderr.contains("not_found"), "{}", revoke.stderr);

    let no_reason = grantctl(&fixture, &["revoke", "g-1", "--actor", "ops@example.com"], &[]);
    assert_eq!(no_reason.status, 2);
    assert!(no_reason.stderr.contains("--reason"), "{}", no_reason.stderr);
    let no_actor = grantctl(&fixture, &["revoke", "g-1", "--reason", "x"], &[]);
    assert_eq!(no_actor.status, 2);
    assert!(no_actor.stderr.contains("--actor"), "{}", no_actor.stderr);
    let no_table = grantctl(&fixture, &["active", "--table", ""], &[]);
    assert_eq!(no_table.status, 2);
    assert!(no_table.stderr.contains("set GRANTS_TABLE"), "{}", no_table.stderr);

    let unreachable = grantctl(&fixture, &["active"], &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]);
    assert_eq!(unreachable.status, 3, "{}", unreachable.stderr);
    assert!(unreachable.stderr.contains("try again"), "{}", unreachable.stderr);
    assert_eq!(fixture.items().await.len(), before, "nothing was written");
}
