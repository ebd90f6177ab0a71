//! Proves `MariaDb` starts a real MariaDB 10.11 as the MySQL engine's tests need it: TLS, the event scheduler, no
//! anonymous accounts, the admin account's grants, the general log, stop and start again.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use test_support::MariaDb;

/// `sql` as `user` over TCP with TLS, the server certificate verified against `ca`.
fn tls_client(db: &MariaDb, ca: &Path, user: &str, password: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .arg("--no-defaults")
        .arg(format!("--host={}", db.host()))
        .arg(format!("--port={}", db.port()))
        .arg(format!("--user={user}"))
        .arg(format!("--password={password}"))
        .arg("--ssl")
        .arg(format!("--ssl-ca={}", ca.display()))
        .args(["--ssl-verify-server-cert", "--batch", "--skip-column-names", "-e", sql])
        .output()
        .expect("run mariadb");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

#[test]
fn mariadb_with_tls_admin_and_logs() {
    let started = Instant::now();
    let (db, ca_pem) = MariaDb::start_with_tls();
    eprintln!("MariaDb::start_with_tls took {:?}", started.elapsed());
    assert_eq!(db.host(), "127.0.0.1");
    assert!(db.socket().exists(), "socket {}", db.socket().display());

    assert!(db.root("SELECT @@version").contains("10.11"), "{}", db.root("SELECT @@version"));
    assert_eq!(db.root("SELECT @@event_scheduler").trim(), "ON");
    assert_eq!(db.root("SELECT count(*) FROM mysql.user WHERE user = ''").trim(), "0");
    assert_eq!(db.root("SELECT concat(user, '@', host) FROM mysql.user WHERE user = 'root'").trim(), "root@localhost");
    assert!(db.root_try("SELEKT 1").unwrap_err().contains("ERROR 1064"));

    db.create_admin("jit_bot", "bot-s3cret'\\");
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &ca_pem).unwrap();
    let cipher = tls_client(&db, ca.path(), "jit_bot", "bot-s3cret'\\", "SHOW STATUS LIKE 'Ssl_cipher'").unwrap();
    let cipher = cipher.trim().strip_prefix("Ssl_cipher").unwrap_or("").trim();
    assert!(!cipher.is_empty(), "no TLS cipher: {cipher:?}");
    eprintln!("admin over TLS: {cipher}");
    let wrong = tls_client(&db, ca.path(), "jit_bot", "wrong", "SELECT 1").unwrap_err();
    assert!(wrong.contains("Access denied"), "{wrong}");

    // The admin may create `jit_expiry` and only that schema (the `_` in the grant is not a wildcard).
    tls_client(
        &db,
        ca.path(),
        "jit_bot",
        "bot-s3cret'\\",
        "CREATE DATABASE jit_expiry; CREATE TABLE jit_expiry.t (a INT)",
    )
    .unwrap();
    let denied = tls_client(&db, ca.path(), "jit_bot", "bot-s3cret'\\", "CREATE DATABASE jitXexpiry").unwrap_err();
    assert!(denied.contains("Access denied"), "{denied}");
    db.grant_object_rights("jit_bot", "shop");
    let grants = db.root("SHOW GRANTS FOR 'jit_bot'@'%'");
    for privilege in ["CREATE USER", "PROCESS", "CONNECTION ADMIN", "SET USER", "EVENT", "ALTER ROUTINE", "CREATE VIEW"]
    {
        assert!(grants.contains(privilege), "{privilege} missing: {grants}");
    }
    assert!(!grants.contains("ON *.* TO `jit_bot`@`%` WITH GRANT OPTION"), "{grants}");

    let log = db.general_log();
    assert!(log.contains("SHOW STATUS LIKE 'Ssl_cipher'"), "{log}");
    assert!(log.contains("CREATE TABLE jit_expiry.t"), "{log}");
    assert!(db.error_log().contains("ready for connections"));
}

#[test]
fn mariadb_stop_start_again_keeps_data() {
    let started = Instant::now();
    let mut db = MariaDb::start();
    eprintln!("MariaDb::start took {:?}", started.elapsed());
    db.root("CREATE DATABASE kept; CREATE TABLE kept.t (a INT) ENGINE=InnoDB; INSERT INTO kept.t VALUES (7)");

    let stopping = Instant::now();
    db.stop();
    eprintln!("MariaDb::stop took {:?}", stopping.elapsed());
    assert!(db.root_try("SELECT 1").is_err(), "server still answers after stop");

    let restarting = Instant::now();
    let port = db.port();
    db.start_again();
    eprintln!("MariaDb::start_again took {:?}", restarting.elapsed());
    assert_eq!(db.port(), port);
    assert_eq!(db.root("SELECT a FROM kept.t").trim(), "7");
}

#[test]
fn mariadb_dies_with_a_panicking_test() {
    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let db = MariaDb::start();
        let pid = std::fs::read_to_string(db.socket().with_file_name("mariadbd.pid")).unwrap();
        tx.send(pid.trim().to_string()).unwrap();
        panic!("a failing test");
    })
    .join();
    assert!(panicked.is_err());
    let pid = rx.recv().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "mariadbd {pid} outlived the panicking test");
}
