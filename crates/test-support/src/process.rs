//! What the throwaway servers (PostgreSQL, MariaDB) share: free ports, waiting for a child to exit, and finding
//! the dirs of test processes that died before their Drop ran.

use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Whether `child` exited within `timeout`.
pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        sleep(Duration::from_millis(10));
    }
    false
}

/// Binds 127.0.0.1:0 and releases it. Someone may take the port before the server binds it; the callers retry.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// The dirs in the temp dir named `<prefix><pid>-...` whose process no longer exists.
pub(crate) fn stale_dirs(prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    let dead = |name: &str| {
        let pid = name.strip_prefix(prefix).and_then(|rest| rest.split('-').next()).map(str::parse::<u32>);
        matches!(pid, Some(Ok(pid)) if !std::path::Path::new(&format!("/proc/{pid}")).exists())
    };
    entries.flatten().filter(|e| e.file_name().to_str().is_some_and(dead)).map(|e| e.path()).collect()
}
