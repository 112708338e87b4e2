//! `lifeboat-coldstart`: whole-process timing of each function, as Lambda starts it.
//!
//! For each function binary it serves the Lambda Runtime API on a loopback port, starts
//! the process with that API and the local stack's settings, and measures: **cold start**
//! (process start to its first `GET /runtime/invocation/next`: settings read, plan
//! loaded, clients built), **first invocation** (event handed over to response posted,
//! against the local emulator) and **peak memory** (the process's `VmHWM`, its resident
//! high-water mark, read after the first invocation). Each function is started `--runs`
//! times; the median is reported, with the maximum peak memory.
//!
//! Usage (the local stack running, release binaries built; `make coldstart` does both):
//! `lifeboat-coldstart --plan infra/plans/local.json --endpoint http://127.0.0.1:4566
//!  --bin-dir target/release --runs 5 snapshot=events/snapshot-schedule.json ...`

use harness::{LocalAws, create_world};
use lifeboat::plan::{PlanSource, load_plan_text, parse_plan};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the runtime API saw, in order.
#[derive(Debug)]
enum Seen {
    /// The process asked for its first event: it is ready.
    Ready(Instant),
    /// It answered the event (or reported an error).
    Answered { at: Instant, ok: bool, body: String },
    /// It asked for the next event: the first invocation is over.
    Idle,
}

struct Args {
    plan: String,
    endpoint: String,
    bin_dir: PathBuf,
    runs: usize,
    functions: Vec<(String, PathBuf)>,
}

fn parse_args() -> Result<Args, String> {
    let mut plan = None;
    let mut endpoint = None;
    let mut bin_dir = None;
    let mut runs = 5;
    let mut functions = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--plan" => plan = Some(value("--plan")?),
            "--endpoint" => endpoint = Some(value("--endpoint")?),
            "--bin-dir" => bin_dir = Some(PathBuf::from(value("--bin-dir")?)),
            "--runs" => {
                runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            other => match other.split_once('=') {
                Some((f, event)) => functions.push((f.to_string(), PathBuf::from(event))),
                None => {
                    return Err(format!(
                        "unexpected {other:?}; give functions as <binary>=<event file>"
                    ));
                }
            },
        }
    }
    if functions.is_empty() || runs == 0 {
        return Err("give at least one <binary>=<event file>, and --runs of 1 or more".into());
    }
    Ok(Args {
        plan: plan.ok_or("--plan is required")?,
        endpoint: endpoint.ok_or("--endpoint is required")?,
        bin_dir: bin_dir.ok_or("--bin-dir is required")?,
        runs,
        functions,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifeboat-coldstart: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let text =
        load_plan_text(&PlanSource::Path(args.plan.clone().into())).map_err(|e| e.to_string())?;
    let plan = parse_plan(&text).map_err(|e| e.to_string())?;
    let account = LocalAws {
        endpoint: args.endpoint.clone(),
    }
    .default_account();
    let world = create_world(&account, &plan).await?;
    let env = world.function_env(&args.plan, &args.endpoint);
    println!(
        "| Function | Binary size | Cold start (median of {}) | First invocation (median) | Peak memory (max) |",
        args.runs
    );
    println!("|---|---|---|---|---|");
    for (function, event) in &args.functions {
        let binary = args.bin_dir.join(function);
        let size = std::fs::metadata(&binary)
            .map_err(|e| format!("{}: {e}", binary.display()))?
            .len();
        let payload =
            std::fs::read_to_string(event).map_err(|e| format!("{}: {e}", event.display()))?;
        let mut starts = Vec::new();
        let mut firsts = Vec::new();
        let mut peak = 0u64;
        for _ in 0..args.runs {
            let m = measure(&binary, function, &env, &payload).await?;
            starts.push(m.cold_start);
            firsts.push(m.first_invocation);
            peak = peak.max(m.peak_kib);
        }
        println!(
            "| {function} | {:.1} MB | {:.0} ms | {:.0} ms | {:.1} MB |",
            size as f64 / 1e6,
            median(&mut starts).as_secs_f64() * 1000.0,
            median(&mut firsts).as_secs_f64() * 1000.0,
            peak as f64 / 1024.0
        );
    }
    Ok(())
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

struct Measurement {
    cold_start: Duration,
    first_invocation: Duration,
    peak_kib: u64,
}

async fn measure(
    binary: &Path,
    function: &str,
    env: &[(String, String)],
    payload: &str,
) -> Result<Measurement, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let api = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let event = payload.to_string();
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, event.clone(), tx.clone()));
        }
    });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let pid = child.id().ok_or("the process exited at once")?;
    let result = async {
        let mut ready = None;
        let mut answered = None;
        loop {
            let seen = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                .await
                .map_err(|_| format!("{function} did not progress within 60 s"))?
                .ok_or("the runtime API stopped")?;
            match seen {
                Seen::Ready(at) if ready.is_none() => ready = Some(at),
                Seen::Ready(_) => {}
                Seen::Answered { at, ok, body } => {
                    if !ok {
                        return Err(format!("{function} failed its first invocation: {body}"));
                    }
                    answered = Some(at);
                }
                Seen::Idle => break,
            }
        }
        let ready = ready.ok_or("no request for an event")?;
        let answered = answered.ok_or("no answer to the event")?;
        Ok(Measurement {
            cold_start: ready - started,
            first_invocation: answered - ready,
            peak_kib: peak_resident_kib(pid)?,
        })
    }
    .await;
    let _ = child.kill().await;
    server.abort();
    result
}

/// The resident-set high-water mark of a live process, from `/proc/<pid>/status`.
fn peak_resident_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading the peak memory of {pid}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmHWM for process {pid}"))
}

/// One keep-alive connection of the runtime client: `next` hands out the event once and
/// then holds the request (the process is idle, waiting for work); responses and errors
/// are recorded.
async fn serve(mut socket: TcpStream, event: String, tx: mpsc::UnboundedSender<Seen>) {
    let mut handed_out = false;
    let mut buf = Vec::new();
    loop {
        let Some((head, body)) = read_request(&mut socket, &mut buf).await else {
            return;
        };
        let line = head.lines().next().unwrap_or_default().to_string();
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            if handed_out {
                let _ = tx.send(Seen::Idle);
                // Hold the request: the process stays idle until it is stopped.
                std::future::pending::<()>().await;
            }
            handed_out = true;
            let _ = tx.send(Seen::Ready(Instant::now()));
            let deadline = chrono::Utc::now().timestamp_millis() + 300_000;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Lambda-Runtime-Aws-Request-Id: coldstart-1\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-west-2:000000000000:function:coldstart\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                 Content-Length: {}\r\n\r\n{event}",
                event.len()
            );
            if socket.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        } else {
            let ok = path.ends_with("/response");
            if path.contains("/runtime/invocation/") {
                let _ = tx.send(Seen::Answered {
                    at: Instant::now(),
                    ok,
                    body,
                });
            }
            if socket
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Read one request (head and body) from a keep-alive connection.
async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String)> {
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let total = end + 4 + length;
            while buf.len() < total {
                let n = socket.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[end + 4..total]).to_string();
            buf.drain(..total);
            return Some((head, body));
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
