//! Running Lifeboat's functions the way a developer does: `cargo lambda watch` serving
//! them, `cargo lambda invoke` calling them. The watch process is started in its own
//! process group and stopped (the whole group, by its id) when the host is dropped, or
//! when this process is told to stop ([`crate::teardown`]).

use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::teardown::{self, Registration};

/// How long the watch and its functions get to end after SIGTERM, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A `cargo lambda watch` serving the workspace's functions.
pub struct FunctionHost {
    child: Child,
    port: u16,
    root: PathBuf,
    log: PathBuf,
    _on_signal: Registration,
}

/// An invocation that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    /// The function's error type (`Retryable`, `NonRetryable`), when it returned one.
    pub error_type: Option<String>,
    /// The message.
    pub message: String,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error_type {
            Some(t) => write!(f, "{t}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl FunctionHost {
    /// Start `cargo lambda watch` at the workspace `root`, with `env` for the functions.
    /// `cargo-lambda` must be on `PATH` (the project's `.venv/bin`).
    pub fn start(root: &Path, env: &[(String, String)]) -> Result<Self, String> {
        let port = free_port().map_err(|e| format!("no free port for cargo lambda watch: {e}"))?;
        let log =
            std::env::temp_dir().join(format!("lifeboat-watch-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut command = Command::new("cargo");
        command
            .current_dir(root)
            .args([
                "lambda",
                "watch",
                "--quiet",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()]);
        for (k, v) in env {
            command.arg("--env-var").arg(format!("{k}={v}"));
        }
        // A function that invokes another (a game day starts the failback) reaches it
        // through this watch, which serves Lambda's Invoke API.
        command.arg("--env-var").arg(format!(
            "{}=http://127.0.0.1:{port}",
            lifeboat::aws::LAMBDA_ENDPOINT_ENV
        ));
        {
            use std::os::unix::process::CommandExt;
            // Its own process group, so stopping it stops the functions it runs too.
            command.process_group(0);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| {
                format!("cannot start `cargo lambda watch` (is .venv/bin on PATH?): {e}")
            })?;
        let leader = child.id();
        let host = FunctionHost {
            child,
            port,
            root: root.to_path_buf(),
            log,
            _on_signal: teardown::on_signal(move || {
                teardown::stop_group(leader, STOP_GRACE, &mut || !teardown::process_alive(leader))
            }),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "cargo lambda watch did not listen within a minute; see {}",
                    host.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(host)
    }

    /// Invoke `function` with `payload` and return its JSON response.
    pub fn invoke(&self, function: &str, payload: &Value) -> Result<Value, InvokeError> {
        let output = Command::new("cargo")
            .current_dir(&self.root)
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
            ])
            .args([
                "--invoke-port",
                &self.port.to_string(),
                "--output-format",
                "json",
            ])
            .arg("--data-ascii")
            .arg(payload.to_string())
            .output()
            .map_err(|e| InvokeError {
                error_type: None,
                message: format!("cannot run cargo lambda invoke: {e}"),
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            return serde_json::from_str(&stdout).map_err(|e| InvokeError {
                error_type: None,
                message: format!("the response is not JSON ({e}): {stdout}"),
            });
        }
        // cargo lambda prints the function's error as `Error: <type>: <message>`-ish text.
        let text = format!("{stdout}{stderr}");
        let error_type = ["NonRetryable", "Retryable"]
            .into_iter()
            .find(|t| text.contains(t))
            .map(str::to_string);
        Err(InvokeError {
            error_type,
            message: text.trim().to_string(),
        })
    }

    /// Where the functions' logs go.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for FunctionHost {
    fn drop(&mut self) {
        let child = &mut self.child;
        teardown::stop_group(child.id(), STOP_GRACE, &mut || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        let _ = self.child.wait();
    }
}
