//! One moto server (a local AWS double: S3, DynamoDB, ...) per test process.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

use crate::drain;

/// Starts moto and exits when its parent (this test process) is gone, even after SIGKILL.
const GUARD: &str = include_str!("../moto_guard.py");
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The process-wide moto server; see [`moto()`].
pub struct Moto {
    pub(crate) port: u16,
    /// Never waited on: statics are not dropped, the guard exits by itself.
    _guard: Child,
}

/// The moto server of this test process, started on first use (panics after 30 s).
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

impl Moto {
    fn start() -> Moto {
        let mut guard = Command::new("python3")
            .arg("-c")
            .arg(GUARD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn python3 for moto: {e} (run scripts/setup.sh)"));

        // Keep draining both pipes for the guard's whole life so it never blocks on a
        // full pipe; stderr is kept for the panic message.
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(guard.stderr.take().expect("stderr"), {
            let stderr = stderr.clone();
            move |line| stderr.lock().unwrap().push_str(line)
        });
        let (ready, ready_rx) = mpsc::channel();
        drain(guard.stdout.take().expect("stdout"), move |line| {
            if let Some(port) = line.trim().strip_prefix("MOTO READY ") {
                let _ = ready.send(port.parse::<u16>().expect("moto port"));
            }
        });

        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(port) => Moto { port, _guard: guard },
            Err(_) => {
                let _ = guard.kill();
                let _ = guard.wait();
                // The stderr reader may still be copying the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "moto did not start within 30 s (is `moto[server]` installed? run scripts/setup.sh)\n{}",
                    stderr.lock().unwrap()
                );
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How long moto has spent serving requests, and how many, since it started (the guard serves one at a time,
    /// so these add up). A benchmark takes the difference around a cold start to tell moto's time from ours.
    pub fn busy(&self) -> std::io::Result<MotoBusy> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        stream.write_all(b"GET /__guard/busy HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        // The JSON object, whatever the framing (werkzeug may answer a 1.0 request chunked).
        let body = match (response.find('{'), response.rfind('}')) {
            (Some(start), Some(end)) if start < end => &response[start..=end],
            _ => "",
        };
        let totals: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        match (totals["busy_ms"].as_f64(), totals["requests"].as_u64()) {
            (Some(busy_ms), Some(requests)) => Ok(MotoBusy { busy_ms, requests }),
            _ => Err(std::io::Error::other(format!("the guard answered {response:?}"))),
        }
    }

    /// Config for any AWS SDK client, pointed at moto. Ignores the process environment
    /// and ~/.aws entirely, so host settings cannot leak into tests.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .empty_test_environment()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test-support"))
            .endpoint_url(self.endpoint())
            .load()
            .await
    }

    /// An S3 client for moto. Path-style addressing: `bucket.127.0.0.1` does not resolve.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config().await).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// A DynamoDB client for moto.
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }
}

/// Totals from the guard (`moto_guard.py`).
#[derive(Debug, Clone, Copy)]
pub struct MotoBusy {
    pub busy_ms: f64,
    pub requests: u64,
}

/// `prefix-PID-N`, lowercased, unique within and across test processes, and valid as an
/// S3 bucket name (3-63 chars of `a-z0-9-`) and a DynamoDB table name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = prefix
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .take(40)
        .collect();
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "t" } else { clean };
    format!("{clean}-{}-{n}", std::process::id())
}
