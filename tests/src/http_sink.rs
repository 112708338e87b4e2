//! A tiny HTTP endpoint that records what is POSTed to it: an SNS `http` subscriber, so
//! tests see the notifications the emulator really delivers.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A listening sink and the bodies it has received.
#[derive(Debug, Clone)]
pub struct HttpSink {
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    received: Arc<Mutex<Vec<String>>>,
}

impl HttpSink {
    /// Listen on a free loopback port until the test ends.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    if let Some(body) = read_request_body(&mut socket).await {
                        store.lock().unwrap().push(body);
                    }
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        HttpSink { url, received }
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }

    /// Wait (up to five seconds) until a body satisfies `pred`, and return it.
    pub async fn wait_for(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        for _ in 0..100 {
            if let Some(b) = self.bodies().into_iter().find(|b| pred(b)) {
                return Some(b);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    }
}

async fn read_request_body(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return Some(body[..length].to_string());
            }
        }
    }
}
