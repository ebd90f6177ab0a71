//! One table of conditional writes, run against `MemoryStore` (the rule `lease::may_write` as code) and the
//! DynamoDB `GrantStore` on moto (the rule as condition expressions): every write must succeed or fail alike and
//! leave the same row, and the index reads must then agree. This is what lets the memory store's race tests
//! stand for the table. Times are a minute or more from now, so the two stores' clocks cannot disagree.

use chrono::{DateTime, Duration, Utc};
use grant_adapters::{GrantRepo, GrantStore, MemoryStore};
use grant_model::grant::{now_seconds, NewGrant};
use grant_model::item::GrantItem;
use grant_model::{Expect, Grant, Lease, Status, Strategy};
use test_support::{moto, unique_name};

/// The write a scenario makes, of the grant as it was read (`before`).
enum Write {
    Insert,
    Replace { after: Box<Grant>, holding: Option<Lease> },
    Claim { only_if_expired: bool },
}

struct Scenario {
    name: &'static str,
    /// What is in the table when the write is made.
    stored: Option<Grant>,
    before: Grant,
    write: Write,
    written: bool,
}

fn at(now: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    now + Duration::seconds(seconds)
}

/// An active grant created an hour ago, expiring `expires_in` seconds from `now`.
fn active(id: &str, now: DateTime<Utc>, expires_in: i64) -> Grant {
    let new = NewGrant {
        grant_id: id.into(),
        request_id: None,
        requester: "alice@example.com".into(),
        approver: None,
        reason: "INC-1".into(),
        database: "orders".into(),
        target: "dba".into(),
        strategy: Strategy::RoleEscalation,
        db_user: "alice".into(),
        roles: vec!["dba".into()],
        user_prefix: "jit_".into(),
        duration_seconds: u64::try_from(3600 + expires_in).unwrap(),
        break_glass: false,
    };
    let mut grant = Grant::new_pending(new, at(now, -3600));
    grant.activate(at(now, -3599)).unwrap();
    grant
}

fn lease(owner: &str, now: DateTime<Utc>, until: i64) -> Lease {
    Lease::from_parts(owner.into(), at(now, until).timestamp())
}

fn scenarios(now: DateTime<Utc>) -> Vec<Scenario> {
    let g = |n: &str| active(&format!("g-{n}"), now, -60); // expired a minute ago
    let fresh = |n: &str| active(&format!("g-{n}"), now, 3600);
    let mine = |n: i64| lease("revoke:test:mine", now, n);
    let theirs = |n: i64| lease("revoke:test:theirs", now, n);
    let replace = |before: &Grant, holding: Option<Lease>| {
        let mut after = before.clone();
        after.record_revoke_failure(now, "connection refused");
        Write::Replace { after: Box::new(after), holding }
    };
    // A grant in a state no lifecycle leads to: changed as the row it is stored as.
    let with = |grant: Grant, change: fn(&mut GrantItem)| {
        let mut item = GrantItem::from(&grant);
        change(&mut item);
        Grant::from(item)
    };
    let mut table = vec![
        Scenario { name: "insert a new id", stored: None, before: g("1"), write: Write::Insert, written: true },
        Scenario {
            name: "insert a taken id",
            stored: Some(g("2")),
            before: g("2"),
            write: Write::Insert,
            written: false,
        },
        Scenario {
            name: "replace with no row",
            stored: None,
            before: g("3"),
            write: replace(&g("3"), None),
            written: false,
        },
        Scenario {
            name: "replace as read",
            stored: Some(g("4")),
            before: g("4"),
            write: replace(&g("4"), None),
            written: true,
        },
        Scenario {
            name: "replace under another's live lease",
            stored: Some(g("5").leased(theirs(120))),
            before: g("5"),
            write: replace(&g("5"), None),
            written: false,
        },
        Scenario {
            name: "replace over a lease run out",
            stored: Some(g("6").leased(theirs(-60))),
            before: g("6"),
            write: replace(&g("6"), None),
            written: true,
        },
        Scenario {
            name: "replace after a status change",
            stored: Some(with(g("7"), |g| g.status = Status::Revoked)),
            before: g("7"),
            write: replace(&g("7"), None),
            written: false,
        },
        Scenario {
            name: "replace after a history entry",
            stored: Some(with(g("8"), |g| g.history.push(g.history[0].clone()))),
            before: g("8"),
            write: replace(&g("8"), None),
            written: false,
        },
        Scenario {
            name: "replace after a failed attempt",
            stored: Some(with(g("9"), |g| g.revoke_attempts = 1)),
            before: g("9"),
            write: replace(&g("9"), None),
            written: false,
        },
        Scenario {
            name: "record holding my live lease",
            stored: Some(g("10").leased(mine(120))),
            before: g("10").leased(mine(120)),
            write: replace(&g("10"), Some(mine(120))),
            written: true,
        },
        Scenario {
            name: "record holding my lease run out",
            stored: Some(g("11").leased(mine(-60))),
            before: g("11").leased(mine(-60)),
            write: replace(&g("11"), Some(mine(-60))),
            written: true,
        },
        Scenario {
            name: "record after another took over",
            stored: Some(g("12").leased(theirs(120))),
            before: g("12").leased(mine(-60)),
            write: replace(&g("12"), Some(mine(-60))),
            written: false,
        },
        Scenario {
            name: "record with no lease on the row",
            stored: Some(g("13")),
            before: g("13"),
            write: replace(&g("13"), Some(mine(120))),
            written: false,
        },
        Scenario {
            name: "claim an expired grant",
            stored: Some(g("14")),
            before: g("14"),
            write: Write::Claim { only_if_expired: true },
            written: true,
        },
        Scenario {
            name: "claim only if expired, not expired",
            stored: Some(fresh("15")),
            before: fresh("15"),
            write: Write::Claim { only_if_expired: true },
            written: false,
        },
        Scenario {
            name: "claim an unexpired grant early",
            stored: Some(fresh("16")),
            before: fresh("16"),
            write: Write::Claim { only_if_expired: false },
            written: true,
        },
        Scenario {
            name: "claim under another's live lease",
            stored: Some(g("17").leased(theirs(120))),
            before: g("17"),
            write: Write::Claim { only_if_expired: true },
            written: false,
        },
        Scenario {
            name: "claim over a lease run out",
            stored: Some(g("18").leased(theirs(-60))),
            before: g("18"),
            write: Write::Claim { only_if_expired: true },
            written: true,
        },
        Scenario {
            name: "claim after an extension (history unchanged)",
            stored: Some(fresh("19")),
            before: g("19"),
            write: Write::Claim { only_if_expired: true },
            written: false,
        },
        Scenario {
            name: "claim a pending grant",
            stored: Some(with(g("20"), |g| g.status = Status::Pending)),
            before: with(g("20"), |g| g.status = Status::Pending),
            write: Write::Claim { only_if_expired: false },
            written: true,
        },
    ];
    // A row that stays pending with no write, for the reads to find.
    let pending = with(fresh("21"), |g| g.status = Status::Pending);
    table.push(Scenario { name: "insert pending", stored: None, before: pending, write: Write::Insert, written: true });
    table
}

/// Each scenario's outcome and the row it left.
async fn run(store: &dyn GrantRepo, now: DateTime<Utc>) -> Vec<(&'static str, bool, Option<Grant>)> {
    let mut outcomes = Vec::new();
    for scenario in scenarios(now) {
        if let Some(stored) = &scenario.stored {
            assert!(store.insert(stored).await.unwrap(), "{}: set-up", scenario.name);
        }
        let before = &scenario.before;
        let written = match scenario.write {
            Write::Insert => store.insert(before).await.unwrap(),
            Write::Replace { after, holding: None } => {
                store.replace(before, &after, Expect::NoLiveLease).await.unwrap()
            }
            Write::Replace { after, holding: Some(lease) } => {
                store.replace(before, &after, Expect::Holding(&lease)).await.unwrap()
            }
            Write::Claim { only_if_expired } => {
                let lease = lease("revoke:test:claim", now, 120);
                store.claim(before, lease, only_if_expired).await.unwrap().is_some()
            }
        };
        assert_eq!(written, scenario.written, "{}", scenario.name);
        outcomes.push((scenario.name, written, store.get(before.grant_id()).await.unwrap()));
    }
    outcomes
}

/// What the index reads return, as sorted ids.
async fn reads(store: &dyn GrantRepo, now: DateTime<Utc>) -> Vec<Vec<String>> {
    let ids = |grants: Vec<Grant>| {
        let mut ids: Vec<String> = grants.into_iter().map(|g| g.grant_id().to_string()).collect();
        ids.sort();
        ids
    };
    let mut expired = Vec::new();
    let mut cursor = None;
    loop {
        // One a page: more expired rows than partitions, so some partition is read past its first page.
        let (page, next) = store.expired_page(now.timestamp(), 1, cursor).await.unwrap();
        expired.extend(page);
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    vec![
        ids(store.live_grants().await.unwrap()),
        ids(store.pending().await.unwrap()),
        ids(store.live_grants_for_user("orders", "alice").await.unwrap()),
        ids(expired),
        ids(store.grants_of_requester("alice@example.com", None).await.unwrap()),
    ]
}

#[tokio::test]
async fn memory_and_dynamodb_stores_agree() {
    let now = now_seconds();
    let table = unique_name("agreement");
    let dynamo = GrantStore::new(&moto().sdk_config().await, &table);
    dynamo.create_table().await.unwrap();
    let memory = MemoryStore::new();

    let in_memory = run(&memory, now).await;
    let in_dynamo = run(&dynamo, now).await;
    for (m, d) in in_memory.iter().zip(&in_dynamo) {
        assert_eq!(m, d, "{}: the stores disagree", m.0);
    }
    let (memory_reads, dynamo_reads) = (reads(&memory, now).await, reads(&dynamo, now).await);
    assert_eq!(memory_reads, dynamo_reads);
    assert!(memory_reads.iter().all(|ids| !ids.is_empty()), "every read found something: {memory_reads:?}");
}
