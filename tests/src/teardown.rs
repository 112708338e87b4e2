//! Stopping what this process started, also when it is told to stop.
//!
//! Drop stops a child on every normal and failing exit path, but a process ended by
//! SIGTERM, SIGINT or SIGHUP (`timeout`, CI, Ctrl-C, the local-stack scripts passing a
//! signal on) runs no destructor: whatever it started in a process group of its own
//! (`cargo lambda watch` and the functions it serves) or as a daemon (PostgreSQL
//! servers) would be left running. Each such start registers how to stop it here; the
//! first of those signals runs every registered stop, then ends the process with the
//! conventional status (128 + the signal's number).

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

type Stop = Box<dyn FnOnce() + Send>;

static STOPS: Mutex<BTreeMap<u64, Stop>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);
static LISTEN: Once = Once::new();

/// A registered stop; dropping it (once the owner has stopped what it started) forgets
/// the stop without running it.
#[derive(Debug)]
#[must_use = "dropping the registration forgets the stop at once"]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        stops().remove(&self.0);
    }
}

/// Run `stop` should this process be told to stop before the registration is dropped.
pub fn on_signal(stop: impl FnOnce() + Send + 'static) -> Registration {
    listen();
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    stops().insert(id, Box::new(stop));
    Registration(id)
}

/// Stop a process group: SIGTERM to every member, SIGKILL to what is left after
/// `grace`. `leader` is the group's id (the pid of the process started with
/// `process_group(0)`); `is_gone` says whether the leader has ended (reaped or not).
pub fn stop_group(leader: u32, grace: Duration, is_gone: &mut dyn FnMut() -> bool) {
    let group = format!("-{leader}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", "--", &group])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if is_gone() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Members may outlive the leader (a function process cargo lambda started): the
    // group is killed whether or not the leader is gone; a group with no member left
    // makes this a no-op.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &group])
        .status();
}

/// Whether a process exists (a zombie counts as gone).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold any
        // character: read it after the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn stops() -> std::sync::MutexGuard<'static, BTreeMap<u64, Stop>> {
    // A stop that panicked must not keep the others from running.
    STOPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn listen() {
    LISTEN.call_once(|| {
        let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("teardown: cannot listen for SIGTERM/SIGINT/SIGHUP ({e}); children are stopped on drop only");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("teardown".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    let pending = std::mem::take(&mut *stops());
                    eprintln!(
                        "teardown: signal {signal}: stopping {} started process(es)",
                        pending.len()
                    );
                    for stop in pending.into_values() {
                        stop();
                    }
                    std::process::exit(128 + signal);
                }
            });
        if let Err(e) = spawned {
            eprintln!("teardown: cannot start the signal listener ({e}); children are stopped on drop only");
        }
    });
}
