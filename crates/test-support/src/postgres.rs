//! Throwaway PostgreSQL clusters: `initdb` once per test process into a template,
//! then a cheap copy of it per cluster, each served by its own `postgres` child.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use crate::certs::KeyType;
use crate::process::{free_port, stale_dirs, wait_exit};
use tokio_postgres::{Client, NoTls};

/// Password of the `postgres` superuser in every cluster (host connections use scram-sha-256).
pub const SUPERUSER_PASSWORD: &str = "test-superuser-password";

const HOST: &str = "127.0.0.1";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Every file this module creates in the temp dir starts with this, followed by the pid.
const DIR_PREFIX: &str = "test-support-pg-";

/// How `PgCluster::start_with_tls_options` sets up TLS; the default is what `start_with_tls` starts.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// The server certificate's names (subjectAltName syntax); default `IP:127.0.0.1,DNS:localhost`.
    pub cert_names: Option<String>,
    /// The key type of the CA and the server certificate.
    pub key: KeyType,
    /// This user's TLS logins are asked for a cleartext password (pg_hba `password`) instead of SCRAM, as an
    /// impostor server would ask.
    pub cleartext_password_user: Option<String>,
}

/// A PostgreSQL cluster in a temp dir, listening on 127.0.0.1:`port()`.
pub struct PgCluster {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    /// Extra `-c name=value` server settings (TLS).
    settings: Vec<String>,
}

impl PgCluster {
    /// Starts a fresh cluster and waits until it accepts connections (panics after 30 s).
    pub fn start() -> PgCluster {
        PgCluster::start_with(|_| Vec::new())
    }

    /// Starts a cluster that also accepts TLS, with a server certificate for 127.0.0.1 signed by a throwaway
    /// CA. Returns the CA certificate (PEM), what a client needs to verify the server.
    pub fn start_with_tls() -> (PgCluster, Vec<u8>) {
        PgCluster::start_with_tls_options(&TlsOptions::default())
    }

    /// `start_with_tls`, set up as `options` say. Connections and their authentication are logged
    /// (`log_connections`).
    pub fn start_with_tls_options(options: &TlsOptions) -> (PgCluster, Vec<u8>) {
        let mut ca = Vec::new();
        let cluster = PgCluster::start_with(|dir| {
            let names = options.cert_names.as_deref().unwrap_or(crate::certs::DEFAULT_NAMES);
            let files = crate::certs::server_certificate(&dir.join("tls"), names, options.key);
            for path in [&files.dir, &files.cert, &files.key] {
                give_to_owner(path);
            }
            ca = files.ca_pem;
            if let Some(user) = &options.cleartext_password_user {
                // pg_hba.conf: the first matching line wins, so this one goes before initdb's.
                let hba = dir.join("data/pg_hba.conf");
                let rest = fs::read_to_string(&hba).expect("read pg_hba.conf");
                fs::write(&hba, format!("hostssl all {user} {HOST}/32 password\n{rest}")).expect("write pg_hba.conf");
            }
            vec![
                "ssl=on".to_string(),
                format!("ssl_cert_file={}", files.cert.display()),
                format!("ssl_key_file={}", files.key.display()),
                "log_connections=on".to_string(),
            ]
        });
        (cluster, ca)
    }

    fn start_with(settings: impl FnOnce(&Path) -> Vec<String>) -> PgCluster {
        let template = template();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("create cluster temp dir");
        give_to_owner(dir.path());
        run(Command::new("cp").arg("-a").arg(&template.data).arg(dir.path().join("data")));

        let settings = settings(dir.path());
        let mut cluster = PgCluster { dir, port: 0, child: None, settings };
        // The port is only free when we looked; if someone took it meanwhile, try another.
        for attempt in 1.. {
            cluster.port = free_port();
            cluster.spawn();
            match cluster.wait_ready() {
                Ok(()) => return cluster,
                Err(e) if attempt < 3 && cluster.log().contains("could not bind") => {
                    eprintln!("test-support: port {} taken, retrying: {e}", cluster.port);
                }
                Err(e) => cluster.fail(&e),
            }
        }
        unreachable!()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A hot standby of this cluster (`pg_basebackup -R`, streaming replication), started and ready: the local
    /// stand-in for an Aurora reader instance. It replays every change of this cluster, with a lag.
    pub fn start_standby(&self) -> PgCluster {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("create standby temp dir");
        give_to_owner(dir.path());
        let mut basebackup = Command::new(template().bin.join("pg_basebackup"));
        basebackup
            .args(["-h", HOST, "-p", &self.port.to_string(), "-U", "postgres", "-D"])
            .arg(dir.path().join("data"))
            .args(["-R", "-X", "stream", "--checkpoint=fast", "--no-sync"])
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .current_dir(dir.path());
        as_owner(&mut basebackup);
        run(&mut basebackup);
        let mut standby = PgCluster { dir, port: 0, child: None, settings: vec!["hot_standby=on".to_string()] };
        standby.port = free_port();
        standby.spawn();
        if let Err(e) = standby.wait_ready() {
            standby.fail(&e);
        }
        standby
    }

    /// Creates database `name`, owned by the superuser, with `CONNECT` for PUBLIC as PostgreSQL's default.
    pub async fn create_database(&self, name: &str) {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        self.superuser("postgres").await.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    pub fn host(&self) -> &'static str {
        HOST
    }

    /// Connects over TCP with password auth; the connection task runs on the current runtime.
    pub async fn connect(&self, user: &str, password: &str, dbname: &str) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = config(self.port, user, password, dbname).connect(NoTls).await?;
        tokio::spawn(async move {
            // Errors here mean the server went away, which the client reports on next use.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Connects as the `postgres` superuser; panics on error.
    pub async fn superuser(&self, dbname: &str) -> Client {
        self.connect("postgres", SUPERUSER_PASSWORD, dbname)
            .await
            .unwrap_or_else(|e| panic!("superuser connect to {dbname}: {e:?}"))
    }

    /// Fast shutdown (SIGINT): clients are disconnected, data is kept.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child, "INT");
        if !wait_exit(&mut child, READY_TIMEOUT) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("postgres did not stop within 30 s\n{}", self.log());
        }
    }

    /// Starts the stopped cluster again on the same port and waits until it is ready.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again: cluster is running");
        self.spawn();
        if let Err(e) = self.wait_ready() {
            self.fail(&e);
        }
    }

    /// Everything the server logged so far (all statements, since `log_statement=all`).
    pub fn log(&self) -> String {
        let bytes = fs::read(self.dir.path().join("postgres.log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .expect("open postgres.log");
        let log2 = log.try_clone().expect("clone log fd");
        let mut cmd = Command::new(template().bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "log_statement=all"])
            .args(["-c", "fsync=off"])
            .args(["-c", "logging_collector=off"])
            .args(["-c", "log_line_prefix=%m [%p] %u@%d "])
            .args(["-c", "password_encryption=scram-sha-256"])
            .args(self.settings.iter().flat_map(|setting| ["-c", setting.as_str()]))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        as_owner(&mut cmd);
        self.child = Some(cmd.spawn().expect("spawn postgres"));
    }

    /// Retries a real superuser login until it works, the child dies, or 30 s pass.
    fn wait_ready(&mut self) -> Result<(), String> {
        let port = self.port;
        let child = self.child.as_mut().expect("postgres child");
        // A private runtime on a scoped thread: callers may be inside a tokio runtime,
        // where block_on would panic.
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
                let deadline = Instant::now() + READY_TIMEOUT;
                loop {
                    if let Some(status) = child.try_wait().expect("try_wait postgres") {
                        return Err(format!("postgres exited during startup: {status}"));
                    }
                    let attempt = rt.block_on(async {
                        let (client, connection) =
                            config(port, "postgres", SUPERUSER_PASSWORD, "postgres").connect(NoTls).await?;
                        // Dropping the client first sends Terminate, so no EOF noise in the log.
                        drop(client);
                        connection.await
                    });
                    match attempt {
                        Ok(()) => return Ok(()),
                        Err(e) if Instant::now() > deadline => {
                            return Err(format!("postgres not ready after 30 s: {e}"))
                        }
                        Err(_) => sleep(Duration::from_millis(25)),
                    }
                }
            })
            .join()
            .expect("readiness thread panicked")
        })
    }

    fn fail(&mut self, error: &str) -> ! {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{error}\n--- postgres log ({}) ---\n{}", self.dir.path().display(), self.log());
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate shutdown (SIGQUIT): the data is about to be deleted anyway.
        if let Some(mut child) = self.child.take() {
            signal(&child, "QUIT");
            if !wait_exit(&mut child, Duration::from_secs(10)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // TempDir's own drop removes the directory.
    }
}

fn config(port: u16, user: &str, password: &str, dbname: &str) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config.host(HOST).port(port).user(user).password(password).dbname(dbname).connect_timeout(Duration::from_secs(5));
    config
}

/// The initdb'ed data dir every cluster copies, plus where the binaries are.
struct Template {
    bin: PathBuf,
    data: PathBuf,
    /// uid/gid to run the server as, when we are root (postgres refuses to run as root).
    owner: Option<(u32, u32)>,
}

fn template_dir() -> PathBuf {
    std::env::temp_dir().join(format!("{DIR_PREFIX}{}-template", std::process::id()))
}

/// Removes this process's initdb template, for a program (not a test) that leaves nothing behind. Call it once
/// every cluster is dropped; a later `PgCluster::start` in the same process would fail.
pub fn remove_template() {
    let _ = fs::remove_dir_all(template_dir());
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        remove_stale_dirs();
        let owner = (id(&["-u"]) == 0).then(|| (id(&["-u", "postgres"]), id(&["-g", "postgres"])));
        // Statics are never dropped, so this is a plain dir named after our pid; the next
        // test process to start removes it (see remove_stale_dirs).
        let dir = template_dir();
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("create template dir");
        let template = Template { bin: crate::pg_versions::bin_dir(), data: dir.join("data"), owner };
        let pwfile = dir.join("pwfile");
        fs::write(&pwfile, SUPERUSER_PASSWORD).expect("write pwfile");
        for path in [&dir, &pwfile] {
            chown_to(path, owner);
        }
        let mut initdb = Command::new(template.bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&template.data)
            .args(["--auth-local=trust", "--auth-host=scram-sha-256", "-U", "postgres"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--no-sync", "-E", "UTF8", "--locale=C"])
            .current_dir(&dir);
        if let Some((uid, gid)) = owner {
            initdb.uid(uid).gid(gid);
        }
        run(&mut initdb);
        template
    })
}

/// Removes cluster and template dirs left by test processes that no longer exist
/// (killed before their Drop ran). A server still running in one shuts down once it
/// notices its data dir is gone.
fn remove_stale_dirs() {
    for dir in stale_dirs(DIR_PREFIX) {
        let _ = fs::remove_dir_all(dir);
    }
}

fn as_owner(cmd: &mut Command) {
    if let Some((uid, gid)) = template().owner {
        cmd.uid(uid).gid(gid);
    }
}

fn give_to_owner(path: &Path) {
    chown_to(path, template().owner);
}

fn chown_to(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        chown(path, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// `id <args>` as a number (`id -u`, `id -u postgres`, ...).
fn id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("run id");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("`id {}` failed: {}{}", args.join(" "), text, String::from_utf8_lossy(&out.stderr)))
}

/// Runs a command to completion, panicking with its output if it fails (`pg_versions::run`, stdout dropped).
fn run(cmd: &mut Command) {
    crate::pg_versions::run(cmd);
}

/// std can only SIGKILL; postgres' shutdown modes are other signals, so use kill(1).
fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status();
}
