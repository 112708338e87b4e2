//! Whatever the drill starts, it stops, also when it is interrupted: by `timeout` or CI
//! (SIGTERM to its process group), by Ctrl-C (SIGINT to its process group), or by a `kill`
//! of the script's own pid. Each test starts `infra/local/drill.sh` with a marker in its
//! environment, which every process it starts inherits, waits until the functions are
//! being served (the `cargo lambda watch` group and a function process exist), interrupts
//! it, and then finds no process carrying the marker.

use harness::teardown::{self, Registration};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MARK: &str = "LIFEBOAT_INTERRUPTION_MARK";
/// The first drill of a run builds its binaries.
const START_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Stopping the stack, the watch group (5 s grace) and database servers (10 s each).
const STOP_LIMIT: Duration = Duration::from_secs(90);

enum Interrupt {
    /// What `timeout` and CI do: the signal to the whole process group.
    GroupTerm,
    /// What Ctrl-C does.
    GroupInt,
    /// An operator's `kill PID` of the script alone.
    ScriptTerm,
}

#[test]
fn a_drill_terminated_like_timeout_does_leaves_nothing_running() {
    interrupted_drill_leaves_nothing(Interrupt::GroupTerm, "group-term");
}

#[test]
fn a_drill_interrupted_by_ctrl_c_leaves_nothing_running() {
    interrupted_drill_leaves_nothing(Interrupt::GroupInt, "group-int");
}

#[test]
fn a_drill_whose_script_alone_is_killed_leaves_nothing_running() {
    interrupted_drill_leaves_nothing(Interrupt::ScriptTerm, "script-term");
}

fn interrupted_drill_leaves_nothing(interrupt: Interrupt, name: &str) {
    let root = workspace_root();
    let mark = format!("{name}-{}", std::process::id());
    let log = std::env::temp_dir().join(format!("lifeboat-interrupted-drill-{mark}.log"));
    let port = free_port();
    let (mut drill, _on_signal) = start_drill(&root, &mark, port, &log);

    let started = Instant::now();
    loop {
        let marked = marked_processes(&mark);
        let watching = marked.iter().any(|p| p.command.contains("lambda watch"));
        let serving = marked.iter().any(|p| p.runs_a_function());
        if watching && serving {
            break;
        }
        if let Ok(Some(status)) = drill.try_wait() {
            panic!(
                "the drill ended ({status}) before its functions were served; log:\n{}",
                tail(&log)
            );
        }
        if started.elapsed() > START_LIMIT {
            stop_everything(&mut drill, &mark);
            panic!(
                "the drill's functions were not served within {START_LIMIT:?}; log:\n{}",
                tail(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    let (signal, target) = match interrupt {
        Interrupt::GroupTerm => ("-TERM", format!("-{}", drill.id())),
        Interrupt::GroupInt => ("-INT", format!("-{}", drill.id())),
        Interrupt::ScriptTerm => ("-TERM", drill.id().to_string()),
    };
    let sent = Command::new("kill")
        .args([signal, "--", &target])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {target} failed");

    let status = wait_for_exit(&mut drill, STOP_LIMIT).unwrap_or_else(|| {
        stop_everything(&mut drill, &mark);
        panic!(
            "the drill did not end within {STOP_LIMIT:?} of {signal}; log:\n{}",
            tail(&log)
        )
    });
    assert!(
        !status.success(),
        "an interrupted drill must not report success"
    );

    // Members of a stopped group may take a moment to be gone after the script ends.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut left = marked_processes(&mark);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        left = marked_processes(&mark);
    }
    if !left.is_empty() {
        let listing: Vec<String> = left
            .iter()
            .map(|p| format!("{} {}", p.pid, p.command))
            .collect();
        stop_everything(&mut drill, &mark);
        panic!(
            "after {signal} the drill left {} process(es) running:\n{}\nlog:\n{}",
            left.len(),
            listing.join("\n"),
            tail(&log)
        );
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the drill's emulator still listens on port {port}"
    );
    let _ = std::fs::remove_file(&log);
}

/// The drill, and how to stop it should this test process be told to stop first (its
/// script passes the signal on and stops its stack).
fn start_drill(root: &Path, mark: &str, port: u16, log: &Path) -> (Child, Registration) {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).expect("the drill's log can be created");
    // As a terminal starts it: with the stop signals at their default action, whatever
    // this test process inherited (a job started in the background of a script ignores
    // SIGINT, and a shell cannot trap a signal ignored when it started). `env` execs the
    // script, so the child's pid is the script's.
    let mut command = Command::new("env");
    command
        .arg("--default-signal=INT,TERM,HUP")
        .arg(root.join("infra/local/drill.sh"))
        .current_dir(root)
        .env(MARK, mark)
        .env("LIFEBOAT_LOCAL_PORT", port.to_string())
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log handle"))
        .stderr(out)
        // Its own process group, as a shell or `timeout` gives the command it runs.
        .process_group(0);
    let drill = command.spawn().expect("infra/local/drill.sh starts");
    let group = drill.id();
    let on_signal = teardown::on_signal(move || {
        teardown::stop_group(group, STOP_LIMIT, &mut || !teardown::process_alive(group))
    });
    (drill, on_signal)
}

/// A process started (directly or not) by the drill under test.
struct Marked {
    pid: u32,
    command: String,
}

impl Marked {
    fn runs_a_function(&self) -> bool {
        let program = self.command.split(' ').next().unwrap_or_default();
        [
            "snapshot",
            "retention",
            "restore-validator",
            "failover",
            "failback",
        ]
        .iter()
        .any(|f| program.ends_with(&format!("/debug/{f}")))
    }
}

/// Live processes whose environment carries the marker (zombies are gone already).
fn marked_processes(mark: &str) -> Vec<Marked> {
    let wanted = format!("{MARK}={mark}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| teardown::process_alive(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == wanted.as_bytes()))
        })
        .map(|pid| Marked {
            pid,
            command: std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .split('\0')
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
        })
        .collect()
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// After a failed assertion: leave nothing behind for the next test either.
fn stop_everything(drill: &mut Child, mark: &str) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", drill.id())])
        .status();
    let _ = drill.wait();
    for p in marked_processes(mark) {
        let _ = Command::new("kill")
            .args(["-KILL", &p.pid.to_string()])
            .status();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// The build directory this test binary was built in (`<target>/debug/deps/integration-…`),
/// unless CARGO_TARGET_DIR names one.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("the test binary's path");
            exe.ancestors()
                .nth(3)
                .expect("the test binary sits in <target>/debug/deps")
                .to_path_buf()
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
