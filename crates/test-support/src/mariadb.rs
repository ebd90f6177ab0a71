//! Throwaway MariaDB servers: `mariadb-install-db` once per test process into a template data dir, then a copy of
//! it per server, each served by its own `mariadbd` child on 127.0.0.1 and a unix socket in its temp dir.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::pg_versions::run;
use crate::process::{free_port, stale_dirs, wait_exit};

const HOST: &str = "127.0.0.1";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Every dir this module creates in the temp dir starts with this, followed by the pid.
const DIR_PREFIX: &str = "test-support-mariadb-";
/// What mariadbd writes to its error log once it accepts connections (on every start).
const READY_LINE: &str = "ready for connections";

/// What the MySQL engine's admin ("bot") account needs on MariaDB 10.11, for the runbook; `{admin}` stands for the
/// account (`'name'@'%'`). `MariaDb::create_admin` runs it after `CREATE USER`.
pub const ADMIN_GRANTS: &str = "\
-- CREATE USER: create, lock and drop the temporary users. PROCESS: see every user's sessions.
-- CONNECTION ADMIN: KILL other users' sessions (10.5+; without it: error 1095 'You are not owner of thread').
-- SET USER: give objects another DEFINER than the admin itself (10.5+; was SUPER).
GRANT CREATE USER, PROCESS, CONNECTION ADMIN, SET USER ON *.* TO {admin};
-- Role edges and accounts: mysql.roles_mapping, mysql.user.
GRANT SELECT ON mysql.* TO {admin};
-- MariaDB only: SET DEFAULT ROLE ... FOR another user needs UPDATE on the mysql schema (MySQL 8: CREATE USER).
GRANT UPDATE ON mysql.* TO {admin};
-- The bookkeeping schema `jit_expiry` (and only that one: `\\_` is a literal underscore, not a wildcard): the
-- admin creates it, the expiry procedure and the events in it.
GRANT ALL PRIVILEGES ON `jit\\_expiry`.* TO {admin};
";

/// What the admin needs on each schema where the targets let temporary users create views, routines, triggers or
/// events: to read them and re-create them with the retired account as their definer. `{schema}` is the schema.
pub const OBJECT_GRANTS: &str = "\
GRANT SELECT, SHOW VIEW, CREATE VIEW, DROP, TRIGGER, EVENT, CREATE ROUTINE, ALTER ROUTINE ON `{schema}`.* TO {admin};
";

/// A MariaDB server in a temp dir, listening on 127.0.0.1:`port()` and on `socket()`. Killed on drop.
pub struct MariaDb {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    /// Extra `mariadbd` options (TLS).
    options: Vec<String>,
}

impl MariaDb {
    /// Starts a fresh server without TLS and waits until it accepts connections (panics after 30 s).
    pub fn start() -> MariaDb {
        MariaDb::start_with(|_| Vec::new())
    }

    /// Starts a server that also accepts TLS, with a server certificate for 127.0.0.1 signed by a throwaway CA.
    /// Returns the CA certificate (PEM), what a client needs to verify the server.
    pub fn start_with_tls() -> (MariaDb, Vec<u8>) {
        let mut ca = Vec::new();
        let server = MariaDb::start_with(|dir| {
            let files =
                crate::certs::server_certificate(&dir.join("tls"), crate::certs::DEFAULT_NAMES, Default::default());
            ca = files.ca_pem;
            // Absolute paths: mariadbd changes into its data dir.
            vec![
                format!("--ssl-ca={}", files.dir.join("ca.pem").display()),
                format!("--ssl-cert={}", files.cert.display()),
                format!("--ssl-key={}", files.key.display()),
            ]
        });
        (server, ca)
    }

    fn start_with(options: impl FnOnce(&Path) -> Vec<String>) -> MariaDb {
        let template = template();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("create mariadb temp dir");
        run(Command::new("cp").arg("-a").arg(template).arg(dir.path().join("data")));
        let options = options(dir.path());
        let mut server = MariaDb { dir, port: 0, child: None, options };
        // The port is only free when we looked; if someone took it meanwhile, try another.
        for attempt in 1.. {
            server.port = free_port();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(e) if attempt < 3 && server.error_log().contains("Address already in use") => {
                    eprintln!("test-support: port {} taken, retrying: {e}", server.port);
                }
                Err(e) => server.fail(&e),
            }
        }
        unreachable!()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> &'static str {
        HOST
    }

    /// The unix socket; `root` logs in through it.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("mariadbd.sock")
    }

    /// Every statement the server received so far (`general_log`), from every start.
    pub fn general_log(&self) -> String {
        read_lossy(&self.dir.path().join("general.log"))
    }

    /// The server's error log (startup, shutdown, warnings), from every start.
    pub fn error_log(&self) -> String {
        read_lossy(&self.dir.path().join("error.log"))
    }

    /// Runs `sql` as root (unix socket); its output (`--batch --skip-column-names`), or a panic with the error.
    pub fn root(&self, sql: &str) -> String {
        self.root_try(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs `sql` as root (unix socket): its output (`--batch --skip-column-names`), or the client's stderr.
    pub fn root_try(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["--user=root", "--batch", "--skip-column-names", "-e", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb (apt-get install mariadb-client)");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout)))
        }
    }

    /// Creates the admin account a deployment would have, `'user'@'%'` with `password` and `ADMIN_GRANTS`.
    pub fn create_admin(&self, user: &str, password: &str) {
        let account = format!("'{}'@'%'", quote(user));
        self.root(&format!("CREATE USER {account} IDENTIFIED BY '{}';", quote(password)));
        self.root(&ADMIN_GRANTS.replace("{admin}", &account));
    }

    /// A read-only replica of this server (binlog replication from its first statement on, so it holds what
    /// this one holds): the local stand-in for an Aurora MySQL reader instance. Replication runs as `repl`.
    pub fn start_replica(&self) -> MariaDb {
        self.root(
            "CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl'; \
             GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'",
        );
        let replica = MariaDb::start_with(|_| vec!["--read-only".to_string()]);
        replica.root(&format!(
            "CHANGE MASTER TO MASTER_HOST = '{HOST}', MASTER_PORT = {}, MASTER_USER = 'repl', \
             MASTER_PASSWORD = 'repl', MASTER_LOG_FILE = 'binlog.000001', MASTER_LOG_POS = 4; START SLAVE",
            self.port
        ));
        replica
    }

    /// Waits until `replica` has applied everything this server has written (30 s at most).
    pub fn wait_for_replica(&self, replica: &MariaDb) {
        let target = self.root("SELECT @@gtid_binlog_pos").trim().to_string();
        let waited = replica.root(&format!("SELECT MASTER_GTID_WAIT('{target}', 30)"));
        assert_eq!(waited.trim(), "0", "the replica did not catch up with {target}: {}", replica.error_log());
    }

    /// Gives the admin [`OBJECT_GRANTS`] on `schema`.
    pub fn grant_object_rights(&self, user: &str, schema: &str) {
        let account = format!("'{}'@'%'", quote(user));
        self.root(&OBJECT_GRANTS.replace("{admin}", &account).replace("{schema}", schema));
    }

    /// Clean shutdown (SIGTERM): clients are disconnected, data is kept.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        if !wait_exit(&mut child, READY_TIMEOUT) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mariadbd did not stop within 30 s\n{}", self.error_log());
        }
    }

    /// Starts the stopped server again on the same port and waits until it is ready.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again: server is running");
        if let Err(e) = self.spawn_and_wait() {
            self.fail(&e);
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let ready_before = self.error_log().matches(READY_LINE).count();
        let out = File::options().create(true).append(true).open(dir.join("mariadbd.out")).expect("mariadbd.out");
        let tmpdir = dir.join("tmp");
        fs::create_dir_all(&tmpdir).expect("mariadbd tmpdir");
        let mut cmd = Command::new("/usr/sbin/mariadbd");
        // --no-defaults first (mariadbd insists): nothing from /etc/mysql.
        cmd.arg("--no-defaults")
            .args(user_option())
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--bind-address={HOST}"))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .arg(format!("--general-log-file={}", dir.join("general.log").display()))
            // Its own: servers sharing /tmp trip over each other's temporary files.
            .arg(format!("--tmpdir={}", tmpdir.display()))
            .args(["--general-log=1", "--event-scheduler=ON", "--skip-name-resolve"])
            // A binlog, so any server can have a replica; its port is a server id no other server here has.
            .args(["--log-bin=binlog", "--binlog-format=ROW"])
            // As Aurora MySQL parameter groups commonly set it: without SUPER, triggers and functions need it
            // once a binlog is on.
            .arg("--log-bin-trust-function-creators=1")
            .arg(format!("--server-id={}", self.port))
            .args(SPEED_OPTIONS)
            .args(&self.options)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone fd"))
            .stderr(out);
        let child = self.child.insert(cmd.spawn().expect("spawn /usr/sbin/mariadbd"));
        // The error log says when it listens; polling it keeps probe logins out of the general log.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait mariadbd") {
                self.child = None;
                return Err(format!("mariadbd exited during startup: {status}"));
            }
            if read_lossy(&dir.join("error.log")).matches(READY_LINE).count() > ready_before {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("mariadbd not ready after 30 s".to_string());
            }
            sleep(Duration::from_millis(10));
        }
    }

    fn fail(&mut self, error: &str) -> ! {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let out = read_lossy(&self.dir.path().join("mariadbd.out"));
        panic!("{error}\n--- mariadb error log ({}) ---\n{}{out}", self.dir.path().display(), self.error_log());
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // SIGKILL: the data is about to be deleted anyway. Runs on a panicking test's unwind too.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // TempDir's own drop removes the directory.
    }
}

/// A test server's data is thrown away: no fsync per commit, no doublewrite, a small redo log (less to copy).
const SPEED_OPTIONS: &[&str] =
    &["--innodb-flush-log-at-trx-commit=0", "--skip-innodb-doublewrite", "--innodb-log-file-size=8M"];

/// mariadbd refuses to run as root unless told to; as root, `--user=root` (no chown of every dir to `mysql`).
fn user_option() -> Option<&'static str> {
    static ROOT: OnceLock<bool> = OnceLock::new();
    let root = *ROOT.get_or_init(|| run(Command::new("id").arg("-u")).trim() == "0");
    root.then_some("--user=root")
}

/// The installed data dir every server copies, made once per test process.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        remove_stale_dirs();
        // Statics are never dropped, so this is a plain dir named after our pid; the next test process to start
        // removes it (see remove_stale_dirs).
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-template", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("create mariadb template dir");
        // Only root@localhost is left (no password; reachable only through the socket in the private temp dir):
        // no anonymous accounts, no root@<hostname>/127.0.0.1/::1, no proxy grant for them.
        let cleanup = dir.join("cleanup.sql");
        fs::write(
            &cleanup,
            "DELETE FROM mysql.global_priv WHERE User = '' OR Host <> 'localhost';\n\
             DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';\n",
        )
        .expect("write cleanup.sql");
        let data = dir.join("data");
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .args(user_option())
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--extra-file={}", cleanup.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"])
            .args(SPEED_OPTIONS)
            .current_dir(&dir);
        run(&mut install);
        data
    })
}

/// Removes dirs left by test processes that no longer exist (killed before their Drop ran), and kills the servers
/// still running in them: unlike postgres, mariadbd does not notice its data dir is gone.
fn remove_stale_dirs() {
    for dir in stale_dirs(DIR_PREFIX) {
        let server = fs::read_to_string(dir.join("mariadbd.pid")).unwrap_or_default();
        let server = server.trim();
        // Only if that pid is still a mariadbd of this dir (pids are reused).
        let cmdline = fs::read(format!("/proc/{server}/cmdline")).unwrap_or_default();
        if !server.is_empty() && String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy()) {
            let _ = Command::new("kill").arg("-KILL").arg(server).status();
        }
        let _ = fs::remove_dir_all(dir);
    }
}

/// `s` inside a single-quoted SQL string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}
