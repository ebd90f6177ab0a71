//! A TCP proxy in front of PostgreSQL that makes a COMMIT ambiguous: it passes the first `COMMIT` on to the
//! server, lets the server commit, then closes the connection without passing the answer back. The client sees
//! an error although the transaction committed, as after a network failure at the worst moment.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct CutAfterCommit {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl CutAfterCommit {
    /// A proxy on a free local port to `127.0.0.1:upstream`, cutting after the first COMMIT it sees.
    pub fn start(upstream: u16) -> CutAfterCommit {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let port = listener.local_addr().expect("local address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let done = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                relay(client, server, done.clone());
            }
        });
        CutAfterCommit { port, cut }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether a COMMIT was cut.
    pub fn has_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

fn relay(client: TcpStream, server: TcpStream, cut: Arc<AtomicBool>) {
    let (mut client_in, mut server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut server_in, mut client_out) = (server, client);
    let closing = Arc::new(AtomicBool::new(false));
    let stop = closing.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n) = client_in.read(&mut buf) {
            let commit = buf[..n].windows(7).any(|w| w == b"COMMIT\0") && !cut.swap(true, Ordering::SeqCst);
            // The answer must not reach the client: stop relaying it before the COMMIT goes out.
            stop.store(commit, Ordering::SeqCst);
            if n == 0 || server_out.write_all(&buf[..n]).is_err() {
                break;
            }
            if commit {
                std::thread::sleep(Duration::from_millis(300)); // the server commits meanwhile
                let _ = client_in.shutdown(Shutdown::Both);
                let _ = server_out.shutdown(Shutdown::Both);
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n) = server_in.read(&mut buf) {
            if n == 0 || closing.load(Ordering::SeqCst) || client_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
}
