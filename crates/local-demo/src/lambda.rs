//! A real Lambda binary, run as Lambda runs it: through a Runtime API double, invoked with JSON.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use test_support::{Invocation, LambdaProcess, RuntimeApi};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a just-started function gets before `check_started` looks whether it is still running.
const START_GRACE: Duration = Duration::from_millis(200);
/// How much of the function's log to show when an invocation fails.
const LOG_TAIL_LINES: usize = 20;

/// The binary `name`: `explicit` if given, else next to this executable (`target/<profile>/` under cargo).
pub fn locate(name: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    let (path, how) = match explicit {
        Some(path) => (path.to_path_buf(), format!("--{name}")),
        None => {
            let exe = std::env::current_exe().context("find local-demo's own executable")?;
            let dir = exe.parent().context("local-demo's executable has no directory")?;
            (dir.join(name), "next to local-demo".to_string())
        }
    };
    if !path.is_file() {
        bail!(
            "the {name} binary is not at {} ({how}): build it with `cargo build --release -p {name}` \
             (scripts/demo.sh does) or pass --{name} PATH",
            path.display()
        );
    }
    Ok(path)
}

/// One running Lambda function. Dropping it kills the process, then stops the Runtime API.
pub struct Lambda {
    // Field order is drop order: the process goes first, so it never sees the API vanish.
    process: LambdaProcess,
    api: RuntimeApi,
    pub binary: PathBuf,
}

impl Lambda {
    pub fn start(binary: &Path, env: &[(String, String)]) -> Lambda {
        let api = RuntimeApi::start();
        let process = LambdaProcess::spawn(binary, &api, env);
        Lambda { process, api, binary: binary.to_path_buf() }
    }

    /// Gives the process a moment to start, and fails if it exited meanwhile (not a Lambda binary, a crash).
    /// An init error the function reports through the Runtime API comes back from the first `call`.
    pub fn check_started(&mut self) -> Result<()> {
        std::thread::sleep(START_GRACE);
        if let Some(status) = self.process.try_wait() {
            bail!(
                "{} exited right after starting ({status})\n--- last lines of its log ---\n{}",
                self.binary.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    pub fn runtime_api(&self) -> String {
        self.api.address()
    }

    /// Invokes the function and returns its response if it is `{"ok": true, ...}`; a client error
    /// (`ok: false`), a function error or no answer is an error that says which, with the log's tail.
    pub fn call(&mut self, payload: Value) -> Result<Value> {
        self.invoke(payload, |response| response["ok"] == Value::Bool(true))
    }

    /// Invokes a function whose responses have no `ok` field (the reaper): any response is success.
    pub fn call_any(&mut self, payload: Value) -> Result<Value> {
        self.invoke(payload, |_| true)
    }

    fn invoke(&mut self, payload: Value, accept: impl Fn(&Value) -> bool) -> Result<Value> {
        let action = payload["action"].as_str().unwrap_or("grant").to_string();
        if let Some(status) = self.process.try_wait() {
            bail!(
                "{action} via {}: the process is not running ({status})\n--- last lines of its log ---\n{}",
                self.binary.display(),
                self.log_tail()
            );
        }
        let invocation = tokio::task::block_in_place(|| self.api.invoke(payload, INVOKE_TIMEOUT));
        let problem = match invocation {
            Invocation::Response(response) if accept(&response) => return Ok(response),
            Invocation::Response(response) => match response.get("error") {
                Some(error) => format!(
                    "client error {}: {}",
                    error["code"].as_str().unwrap_or("?"),
                    error["message"].as_str().unwrap_or("?")
                ),
                None => format!("unexpected response {response}"),
            },
            Invocation::Error { error_type, error_message } => format!("function error {error_type}: {error_message}"),
            Invocation::TimedOut => match self.process.try_wait() {
                Some(status) => format!("the process exited ({status})"),
                None => format!("no answer within {} s", INVOKE_TIMEOUT.as_secs()),
            },
        };
        bail!("{action} via {}: {problem}\n--- last lines of its log ---\n{}", self.binary.display(), self.log_tail())
    }

    fn log_tail(&self) -> String {
        let output = self.process.output();
        let lines: Vec<&str> = output.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        match lines[start..].join("\n") {
            tail if tail.is_empty() => "(empty)".to_string(),
            tail => tail,
        }
    }
}
