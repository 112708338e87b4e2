//! Reaching the local AWS (the launcher in `infra/local/launcher.py`).

use lifeboat::aws::{AwsClients, ClientSettings, RegionalClients};
use lifeboat::plan::Plan;
use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable naming the local AWS endpoint for tests (`infra/local/with-stack`
/// sets it).
pub const ENDPOINT_ENV: &str = "LIFEBOAT_TEST_ENDPOINT";

/// moto's default account, used by any access key that is not twelve digits.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// The local AWS emulator.
#[derive(Debug, Clone)]
pub struct LocalAws {
    /// Its URL, e.g. `http://127.0.0.1:4566`.
    pub endpoint: String,
}

impl LocalAws {
    /// The emulator named by `LIFEBOAT_TEST_ENDPOINT` (else `AWS_ENDPOINT_URL`).
    ///
    /// # Panics
    /// When neither is set: the integration tests run through `make test`, which starts
    /// the emulator and sets it.
    pub fn from_env() -> Self {
        let endpoint = std::env::var(ENDPOINT_ENV)
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|_| {
                panic!(
                    "{ENDPOINT_ENV} is not set: run the integration tests with `make test` \
                     (or `infra/local/with-stack cargo test -p tests`), which starts the local AWS"
                )
            });
        LocalAws { endpoint }
    }

    /// A fresh account nobody else uses: the launcher maps a twelve-digit access key to
    /// that account, so tests running in parallel never see each other's resources.
    pub fn fresh_account(&self) -> Account {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = u64::from(std::process::id()) % 100_000;
        let id = 200_000_000_000 + pid * 1_000_000 + n;
        Account {
            id: format!("{id:012}"),
            endpoint: self.endpoint.clone(),
        }
    }

    /// The emulator's default account (what `cargo lambda invoke` and the drill use).
    pub fn default_account(&self) -> Account {
        Account {
            id: DEFAULT_ACCOUNT.to_string(),
            endpoint: self.endpoint.clone(),
        }
    }

    /// Wipe every account's state (moto's reset).
    pub async fn reset(&self) -> Result<(), String> {
        http_post(&self.endpoint, "/moto-api/reset", "")
            .await
            .map(|_| ())
    }
}

/// One account in the emulator.
#[derive(Debug, Clone)]
pub struct Account {
    /// The twelve-digit account id.
    pub id: String,
    /// The emulator's URL.
    pub endpoint: String,
}

impl Account {
    /// Client settings that reach this account in the emulator.
    pub fn settings(&self) -> ClientSettings {
        let key = if self.id == DEFAULT_ACCOUNT {
            "testing".to_string()
        } else {
            self.id.clone()
        };
        ClientSettings {
            endpoint_url: Some(self.endpoint.clone()),
            static_credentials: Some((key, "testing".to_string())),
            max_attempts: 2,
        }
    }

    /// Clients for `region`.
    pub async fn regional(&self, region: &str) -> RegionalClients {
        RegionalClients::build(&self.settings(), region).await
    }

    /// Every client for `plan`, the control plane in the DR region.
    pub async fn clients(&self, plan: &Plan) -> AwsClients {
        AwsClients::build(
            &self.settings(),
            &plan.regions.primary,
            &plan.regions.dr,
            None,
        )
        .await
    }

    /// The ARN prefix of `service` in `region` for this account.
    pub fn arn(&self, service: &str, region: &str, rest: &str) -> String {
        format!("arn:aws:{service}:{region}:{}:{rest}", self.id)
    }
}

/// A bare HTTP/1.1 POST over TCP (the emulator's control paths need nothing more).
pub async fn http_post(endpoint: &str, path: &str, body: &str) -> Result<String, String> {
    let (status, body) = http_request(endpoint, "POST", path, body).await?;
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(format!("POST {path} answered {status}: {body}"))
    }
}

/// A bare HTTP/1.1 request over TCP: the status code and the body.
pub async fn http_request(
    endpoint: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .map_err(|e| format!("cannot reach the local AWS at {endpoint}: {e}"))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("{method} {path}: no HTTP status in the answer {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// An emulator of its own, for a test that resets the whole emulator (moto's reset wipes
/// every account, so it must not touch the one the other tests share). It is stopped, by
/// its PID, when dropped, and exits by itself should the test process die first.
#[derive(Debug)]
pub struct PrivateEmulator {
    /// How to reach it.
    pub local: LocalAws,
    child: std::process::Child,
}

impl PrivateEmulator {
    /// Start the launcher of this checkout on a free loopback port and wait until it
    /// answers (the virtualenv must exist: `make test` creates it).
    pub async fn start() -> Result<Self, String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("the tests crate has no parent directory")?
            .to_path_buf();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = std::process::Command::new(root.join(".venv/bin/python"))
            .arg(root.join("infra/local/launcher.py"))
            .args(["--port", &port.to_string()])
            .args(["--exit-with-pid", &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the launcher (run `make venv` first): {e}"))?;
        let emulator = PrivateEmulator {
            local: LocalAws {
                endpoint: format!("http://127.0.0.1:{port}"),
            },
            child,
        };
        for _ in 0..200 {
            if let Ok((200, _)) =
                http_request(&emulator.local.endpoint, "GET", "/_lifeboat/health", "").await
            {
                return Ok(emulator);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err("the private emulator did not answer within 20 s".into())
    }
}

impl Drop for PrivateEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
