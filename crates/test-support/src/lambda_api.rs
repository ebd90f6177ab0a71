//! A double of the AWS Lambda Runtime API
//! (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), so a test can run
//! the real built Lambda binary the way Lambda does, and a launcher for that binary.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::drain;

const PREFIX: &str = "/2018-06-01/runtime";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test-function";
/// What the function sees as its remaining time; the test's own timeout is `invoke`'s.
const DEADLINE: Duration = Duration::from_secs(60);

/// How one invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The handler's output, posted to `/invocation/{id}/response`.
    Response(Value),
    /// Posted to `/invocation/{id}/error`, or to `/init/error` (then for every invoke).
    Error { error_type: String, error_message: String },
    /// Nothing answered within the timeout given to `invoke`.
    TimedOut,
}

#[derive(Default)]
struct State {
    /// Events not yet handed out by `next`: (request id, body).
    queue: VecDeque<(String, Vec<u8>)>,
    results: HashMap<String, Invocation>,
    init_error: Option<Invocation>,
    closed: bool,
}

/// One condvar for every change (event queued, result posted, closed): few waiters.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The Runtime API on 127.0.0.1, served by a background thread (one thread per request,
/// since `next` long-polls).
pub struct RuntimeApi {
    address: String,
    shared: Arc<Shared>,
    server: Arc<Server>,
    acceptor: Option<JoinHandle<()>>,
}

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind runtime API"));
        let address = server.server_addr().to_ip().expect("ip address").to_string();
        let shared = Arc::new(Shared::default());
        let acceptor = std::thread::spawn({
            let (server, shared) = (server.clone(), shared.clone());
            move || {
                for request in server.incoming_requests() {
                    let shared = shared.clone();
                    std::thread::spawn(move || handle(&shared, request));
                }
            }
        });
        RuntimeApi { address, shared, server, acceptor: Some(acceptor) }
    }

    /// `127.0.0.1:PORT`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// Queues `event` for the function and blocks until it answers or `timeout` passes.
    pub fn invoke(&self, event: Value, timeout: Duration) -> Invocation {
        self.invoke_raw(event.to_string().into_bytes(), timeout)
    }

    /// Like `invoke`, with the body sent exactly as given: JSON a parser may refuse, or not JSON at all.
    pub fn invoke_raw(&self, body: Vec<u8>, timeout: Duration) -> Invocation {
        let id = request_id();
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        state.queue.push_back((id.clone(), body));
        self.shared.changed.notify_all();
        loop {
            if let Some(result) = state.results.remove(&id) {
                return result;
            }
            let now = Instant::now();
            let failed = match &state.init_error {
                Some(error) => Some(error.clone()),
                None => (now >= deadline).then_some(Invocation::TimedOut),
            };
            if let Some(result) = failed {
                state.queue.retain(|(queued, _)| *queued != id);
                return result;
            }
            state = self.shared.changed.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        self.server.unblock();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn handle(shared: &Shared, mut request: Request) {
    let path = request.url().split('?').next().unwrap_or("").to_owned();
    let route = path.strip_prefix(PREFIX).unwrap_or("");
    let method = request.method().clone();
    let invocation = route.strip_prefix("/invocation/");
    let (status, body) = match (method, invocation) {
        (Method::Get, Some("next")) => return next(shared, request),
        (Method::Post, Some(rest)) => {
            let body = read_body(&mut request);
            let result = if let Some(id) = rest.strip_suffix("/response") {
                // Handlers answer JSON; keep anything else visible as a string.
                let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                Some((id, Invocation::Response(value)))
            } else {
                rest.strip_suffix("/error").map(|id| (id, error(&body)))
            };
            match result {
                Some((id, result)) => {
                    shared.lock().results.insert(id.to_owned(), result);
                    shared.changed.notify_all();
                    (202, r#"{"status":"OK"}"#)
                }
                None => (404, r#"{"errorType":"NotFound"}"#),
            }
        }
        (Method::Post, None) if route == "/init/error" => {
            let body = read_body(&mut request);
            shared.lock().init_error = Some(error(&body));
            shared.changed.notify_all();
            (202, r#"{"status":"OK"}"#)
        }
        _ => (404, r#"{"errorType":"NotFound"}"#),
    };
    let _ = request.respond(json(body).with_status_code(status));
}

/// `GET /invocation/next`: blocks until an event is queued (or the API is dropped).
fn next(shared: &Shared, request: Request) {
    let mut state = shared.lock();
    while state.queue.is_empty() && !state.closed {
        state = shared.changed.wait(state).unwrap_or_else(|e| e.into_inner());
    }
    let Some((id, body)) = state.queue.pop_front() else {
        drop(state);
        let _ = request.respond(json(r#"{"errorType":"ShuttingDown"}"#).with_status_code(500));
        return;
    };
    drop(state);
    let deadline = SystemTime::now() + DEADLINE;
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let hex = id.replace('-', "");
    let trace = format!("Root=1-{:08x}-{};Parent={};Sampled=0", epoch_secs(), &hex[..24], &hex[16..]);
    let response = Response::from_data(body)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Lambda-Runtime-Aws-Request-Id", &id))
        .with_header(header("Lambda-Runtime-Deadline-Ms", &deadline_ms.to_string()))
        .with_header(header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN))
        .with_header(header("Lambda-Runtime-Trace-Id", &trace));
    let _ = request.respond(response);
}

fn read_body(request: &mut Request) -> String {
    let mut body = String::new();
    let _ = request.as_reader().read_to_string(&mut body);
    body
}

/// `{"errorType": ..., "errorMessage": ...}`, as the runtime posts it.
fn error(body: &str) -> Invocation {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    Invocation::Error {
        error_type: field("errorType").unwrap_or_else(|| "Unknown".to_owned()),
        error_message: field("errorMessage").unwrap_or_else(|| body.to_owned()),
    }
}

fn json(body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body).with_header(header("Content-Type", "application/json"))
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).expect("valid header")
}

fn epoch_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A fresh UUID-shaped id, unique within the process (pid, time, counter).
fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        std::process::id(),
        (nanos >> 32) & 0xffff,
        (nanos >> 20) & 0xfff,
        n & 0xfff,
        ((nanos & 0xffff_ffff) << 16) | (n & 0xffff)
    )
}

/// A Lambda binary running against a [`RuntimeApi`], with its stdout+stderr captured.
pub struct LambdaProcess {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl LambdaProcess {
    /// Starts `binary` with the environment Lambda provides (only PATH and HOME are
    /// inherited), plus `env`, which wins over the defaults.
    pub fn spawn(binary: &Path, api: &RuntimeApi, env: &[(String, String)]) -> LambdaProcess {
        let name = binary.file_stem().and_then(|n| n.to_str()).unwrap_or("function");
        let mut cmd = Command::new(binary);
        cmd.env_clear();
        for key in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        cmd.env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream")
            .env("AWS_REGION", "us-east-1")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn lambda {}: {e}", binary.display()));
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = output.clone();
            drain(pipe, move |line| output.lock().unwrap_or_else(|e| e.into_inner()).push_str(line));
        }
        LambdaProcess { child, output }
    }

    /// Everything the process wrote to stdout and stderr so far, line-interleaved.
    pub fn output(&self) -> String {
        self.output.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The exit status, if the process has exited (e.g. after an init error).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
