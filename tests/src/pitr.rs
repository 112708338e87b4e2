//! A real point-in-time restore on the local machine: the stand-in for an RDS instance's
//! storage, since the AWS emulator restores no data.
//!
//! [`PitrCluster::start`] creates a PostgreSQL cluster in a temporary directory on a free
//! loopback port, with WAL archiving into a directory beside it, and takes a base backup.
//! [`PitrCluster::restore_to`] then does what RDS does for a point-in-time restore: a
//! second cluster is made from the base backup and replays the archived WAL up to the
//! target time, then is promoted to accept writes. Both servers are stopped, and every
//! directory created is removed, by [`PitrCluster::stop`] or on drop, also after a failure.
//!
//! PostgreSQL refuses to run as root: when this process is root, the server programs run
//! as the `postgres` OS user (`runuser`), and the temporary directory is handed to it.

use chrono::{DateTime, SecondsFormat, Utc};
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use crate::teardown::process_alive;
use crate::teardown::{self, Registration};

/// Where the PostgreSQL server programs are looked for, newest version first.
const PG_ROOT: &str = "/usr/lib/postgresql";
/// How long a server may take to start, finish recovery or archive a WAL segment.
const WAIT: Duration = Duration::from_secs(120);
/// The OS user the servers run as when this process is root.
const PG_OS_USER: &str = "postgres";

/// What went wrong with the local point-in-time restore.
#[derive(Debug, thiserror::Error)]
pub enum PitrError {
    /// No PostgreSQL server programs were found.
    #[error(
        "no PostgreSQL server programs (initdb, pg_ctl, pg_basebackup) under {searched}/*/bin: \
         install the PostgreSQL server package (e.g. `apt-get install postgresql`)"
    )]
    NoPostgres {
        /// The directory searched.
        searched: String,
    },
    /// A file-system step failed.
    #[error("{what}: {source}")]
    Io {
        /// The step.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A PostgreSQL program failed.
    #[error("{what} failed ({status}): {detail}")]
    Program {
        /// The step.
        what: String,
        /// Its exit status.
        status: String,
        /// Its error output, or the server log's tail.
        detail: String,
    },
    /// A server did not reach the expected state in time.
    #[error("{what} did not happen within {seconds} s; server log ends with:\n{log_tail}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        seconds: u64,
        /// The last lines of the server log.
        log_tail: String,
    },
    /// The target time is before the base backup finished: there is nothing to restore it
    /// from.
    #[error(
        "restore time {target} is before the earliest restorable time {earliest} (the end of \
         the base backup): choose a time between {earliest} and now"
    )]
    BeforeWindow {
        /// The requested time.
        target: DateTime<Utc>,
        /// The earliest restorable time.
        earliest: DateTime<Utc>,
    },
    /// The target time has not happened yet.
    #[error(
        "restore time {target} is in the future (now is {now}): choose a time between \
         {earliest} and now"
    )]
    InFuture {
        /// The requested time.
        target: DateTime<Utc>,
        /// When it was checked.
        now: DateTime<Utc>,
        /// The earliest restorable time.
        earliest: DateTime<Utc>,
    },
    /// The cluster was already stopped.
    #[error("the PITR cluster was stopped: start a new one")]
    Stopped,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PitrError {
    let what = what.into();
    move |source| PitrError::Io { what, source }
}

/// One running PostgreSQL server of the harness.
#[derive(Debug)]
struct Server {
    data: PathBuf,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// A point-in-time restore, done.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// The restored, promoted server: `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The time it was restored to.
    pub target: DateTime<Utc>,
    /// From the copy of the base backup to the restored server accepting writes.
    pub duration: Duration,
}

/// A PostgreSQL cluster with WAL archiving and a base backup, and the clusters restored
/// from it. See the module documentation.
#[derive(Debug)]
pub struct PitrCluster {
    bin: PathBuf,
    as_postgres: bool,
    root: PathBuf,
    archive: PathBuf,
    base: PathBuf,
    source: Option<Server>,
    restored: Vec<Server>,
    earliest: DateTime<Utc>,
    stopped: bool,
    /// The port the next restore listens on, when chosen ahead.
    next_port: Option<u16>,
    /// Stops the servers and removes the directory should this process be told to stop.
    _on_signal: Registration,
}

impl PitrCluster {
    /// Create, start and back up a fresh cluster (a few seconds).
    pub fn start() -> Result<PitrCluster, PitrError> {
        let bin = find_bin()?;
        // Whether this process is root; `id -u` spares a libc dependency for one call.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .map_err(io("reading the current user (id -u)"))?;
        let root = unique_dir()?;
        let on_signal = {
            let root = root.clone();
            teardown::on_signal(move || stop_servers_under(&root))
        };
        // From here on, drop removes what exists, so every early return cleans up.
        let mut cluster = PitrCluster {
            bin,
            as_postgres,
            archive: root.join("archive"),
            base: root.join("base"),
            root,
            source: None,
            restored: vec![],
            earliest: Utc::now(),
            stopped: false,
            next_port: None,
            _on_signal: on_signal,
        };
        fs::create_dir(&cluster.archive).map_err(io("creating the WAL archive directory"))?;
        if as_postgres {
            let owner = format!("{PG_OS_USER}:");
            cluster.run(
                "handing the temporary directory to the postgres user",
                Command::new("chown")
                    .arg("-R")
                    .arg(owner)
                    .arg(&cluster.root),
            )?;
        }
        let data = cluster.root.join("source");
        cluster.pg(
            "initdb",
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                // A throw-away cluster: skipping fsync saves seconds on a busy machine.
                "--no-sync".as_ref(),
            ],
        )?;
        let port = free_port()?;
        let archive_command = format!(
            "test ! -f {dir}/%f && cp %p {dir}/%f",
            dir = quoted_path(&cluster.archive)?
        );
        append_conf(
            &data,
            &[
                ("port", port.to_string()),
                ("listen_addresses", "127.0.0.1".into()),
                ("unix_socket_directories", path_str(&cluster.root)?),
                ("wal_level", "replica".into()),
                ("archive_mode", "on".into()),
                ("archive_command", archive_command),
            ],
        )?;
        let server = Server {
            log: cluster.root.join("source.log"),
            data,
            port,
        };
        cluster.pg_start(&server, "starting the source cluster")?;
        cluster.source = Some(server);
        cluster.pg(
            "taking the base backup",
            "pg_basebackup",
            &[
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.to_string().as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-D".as_ref(),
                cluster.base.as_os_str(),
                "-c".as_ref(),
                "fast".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        // The backup is consistent from when it ended: no earlier instant can be restored.
        cluster.earliest = cluster.server_now()?;
        Ok(cluster)
    }

    /// The source cluster's URL: `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> Result<String, PitrError> {
        self.source
            .as_ref()
            .map(Server::url)
            .ok_or(PitrError::Stopped)
    }

    /// The earliest restorable time: when the base backup ended.
    pub fn earliest_restorable(&self) -> DateTime<Utc> {
        self.earliest
    }

    /// Every directory the harness created (the temporary root holds them all).
    pub fn directory(&self) -> &Path {
        &self.root
    }

    /// The process ids of the running servers (source first), read from `postmaster.pid`.
    pub fn pids(&self) -> Vec<u32> {
        self.source
            .iter()
            .chain(self.restored.iter())
            .filter_map(|s| postmaster_pid(&s.data))
            .collect()
    }

    /// Run SQL on the source cluster; the output unaligned, one row a line.
    pub fn sql(&self, sql: &str) -> Result<String, PitrError> {
        self.sql_in("postgres", sql)
    }

    /// Run SQL in `database` of the source cluster.
    pub fn sql_in(&self, database: &str, sql: &str) -> Result<String, PitrError> {
        let source = self.source.as_ref().ok_or(PitrError::Stopped)?;
        psql(&self.bin, source.port, database, sql)
    }

    /// Run SQL on a restored cluster; the output unaligned, one row a line.
    pub fn sql_restored(&self, restored: &Restored, sql: &str) -> Result<String, PitrError> {
        self.sql_restored_in(restored, "postgres", sql)
    }

    /// Run SQL in `database` of a restored cluster.
    pub fn sql_restored_in(
        &self,
        restored: &Restored,
        database: &str,
        sql: &str,
    ) -> Result<String, PitrError> {
        psql(&self.bin, restored.port, database, sql)
    }

    /// Choose now the loopback port the next restore will listen on, so that what
    /// connects to the restored cluster (a function's settings) can be told before the
    /// restore happens.
    pub fn reserve_restore_port(&mut self) -> Result<u16, PitrError> {
        let port = free_port()?;
        self.next_port = Some(port);
        Ok(port)
    }

    /// The source server's clock, in UTC.
    pub fn server_now(&self) -> Result<DateTime<Utc>, PitrError> {
        let text = self.sql(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        )?;
        DateTime::parse_from_rfc3339(text.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| PitrError::Program {
                what: "reading the server clock".into(),
                status: "unparsable answer".into(),
                detail: format!("{text:?}: {e}"),
            })
    }

    /// Switch to a new WAL segment and wait until the archiver has copied the finished
    /// one, so everything committed so far can be restored.
    pub fn archive_now(&self) -> Result<(), PitrError> {
        let segment = self.sql("SELECT pg_walfile_name(pg_switch_wal())")?;
        let segment = segment.trim().to_string();
        let started = Instant::now();
        loop {
            let status = self.sql(
                "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, '') \
                 FROM pg_stat_archiver",
            )?;
            let mut parts = status.trim().split('|');
            let archived = parts.next().unwrap_or_default();
            // WAL file names sort in the order they were written (timeline, then position).
            if !archived.is_empty() && archived >= segment.as_str() {
                return Ok(());
            }
            if started.elapsed() > WAIT {
                return Err(PitrError::Timeout {
                    what: format!(
                        "archiving WAL segment {segment} (last failed: {:?})",
                        parts.next().unwrap_or_default()
                    ),
                    seconds: WAIT.as_secs(),
                    log_tail: self.source_log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Restore the base backup into a new cluster, replaying the archived WAL up to
    /// `target`, and promote it. Refused before the earliest restorable time and in the
    /// future.
    pub fn restore_to(&mut self, target: DateTime<Utc>) -> Result<Restored, PitrError> {
        if self.stopped || self.source.is_none() {
            return Err(PitrError::Stopped);
        }
        let now = self.server_now()?;
        if target > now {
            return Err(PitrError::InFuture {
                target,
                now,
                earliest: self.earliest,
            });
        }
        if target < self.earliest {
            return Err(PitrError::BeforeWindow {
                target,
                earliest: self.earliest,
            });
        }
        // Recovery to a time stops at the first commit after it; PostgreSQL refuses to
        // finish if the archive ends before one. A commit now, after the target, makes
        // every instant up to now restorable (RDS's latest restorable time plays this role).
        self.sql("BEGIN; SELECT txid_current(); COMMIT;")?;
        self.archive_now()?;

        let n = self.restored.len() + 1;
        let data = self.root.join(format!("restored-{n}"));
        let started = Instant::now();
        let mut copy = Command::new("cp");
        copy.arg("-a").arg(&self.base).arg(&data);
        self.run_as_postgres("copying the base backup", &mut copy)?;
        let port = match self.next_port.take() {
            Some(p) => p,
            None => free_port()?,
        };
        let archive = quoted_path(&self.archive)?;
        append_conf(
            &data,
            &[
                ("port", port.to_string()),
                // The restored cluster is a new timeline: it must not write into the
                // source's archive.
                ("archive_mode", "off".into()),
                ("restore_command", format!("cp {archive}/%f %p")),
                ("recovery_target_time", pg_timestamp(target)),
                ("recovery_target_action", "promote".into()),
            ],
        )?;
        let signal = data.join("recovery.signal");
        fs::write(&signal, b"").map_err(io("writing recovery.signal"))?;
        if self.as_postgres {
            self.run(
                "handing recovery.signal to the postgres user",
                Command::new("chown")
                    .arg(format!("{PG_OS_USER}:"))
                    .arg(&signal),
            )?;
        }
        let server = Server {
            log: self.root.join(format!("restored-{n}.log")),
            data,
            port,
        };
        let started_server = self.pg_start(&server, "starting the restored cluster");
        // Registered before checking, so a failed start is still stopped and removed.
        self.restored.push(server);
        started_server?;
        self.wait_promoted(port, n)?;
        Ok(Restored {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            port,
            target,
            duration: started.elapsed(),
        })
    }

    /// Stop every server and remove every directory; safe to call twice.
    pub fn stop(&mut self) -> Result<(), PitrError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut first_error = None;
        let servers: Vec<Server> = self.restored.drain(..).chain(self.source.take()).collect();
        for server in &servers {
            if let Err(e) = self.stop_server(server) {
                first_error.get_or_insert(e);
            }
        }
        if self.root.exists()
            && let Err(e) = fs::remove_dir_all(&self.root)
        {
            first_error.get_or_insert(PitrError::Io {
                what: format!("removing {}", self.root.display()),
                source: e,
            });
        }
        first_error.map_or(Ok(()), Err)
    }

    fn stop_server(&self, server: &Server) -> Result<(), PitrError> {
        let Some(pid) = postmaster_pid(&server.data) else {
            return Ok(()); // never started, or already down
        };
        // pg_ctl returns once postmaster.pid is gone, a moment before the process exits.
        let _ = self.pg(
            "stopping a server (pg_ctl stop -m fast)",
            "pg_ctl",
            &[
                "-D".as_ref(),
                server.data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
        if !wait_gone(pid, Duration::from_secs(10)) {
            // The clean stop failed: an immediate shutdown of this server only, by its pid.
            let _ = Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status();
            wait_gone(pid, Duration::from_secs(10));
        }
        if process_alive(pid) {
            return Err(PitrError::Program {
                what: format!("stopping the server with pid {pid}"),
                status: "still running".into(),
                detail: tail(&server.log),
            });
        }
        Ok(())
    }

    fn wait_promoted(&self, port: u16, n: usize) -> Result<(), PitrError> {
        let started = Instant::now();
        loop {
            if let Ok(answer) = psql(&self.bin, port, "postgres", "SELECT pg_is_in_recovery()")
                && answer.trim() == "f"
            {
                return Ok(());
            }
            let server = &self.restored[n - 1];
            if postmaster_pid(&server.data).is_none_or(|pid| !process_alive(pid)) {
                return Err(PitrError::Program {
                    what: "the point-in-time recovery".into(),
                    status: "the restored server exited".into(),
                    detail: tail(&server.log),
                });
            }
            if started.elapsed() > WAIT {
                return Err(PitrError::Timeout {
                    what: "the restored cluster finishing recovery".into(),
                    seconds: WAIT.as_secs(),
                    log_tail: tail(&server.log),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pg_start(&self, server: &Server, what: &str) -> Result<(), PitrError> {
        self.pg(
            what,
            "pg_ctl",
            &[
                "-D".as_ref(),
                server.data.as_os_str(),
                "-l".as_ref(),
                server.log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                WAIT.as_secs().to_string().as_ref(),
                "start".as_ref(),
            ],
        )
        .map_err(|e| match e {
            PitrError::Program { what, status, .. } => PitrError::Program {
                what,
                status,
                detail: tail(&server.log),
            },
            other => other,
        })
    }

    fn source_log_tail(&self) -> String {
        self.source
            .as_ref()
            .map(|s| tail(&s.log))
            .unwrap_or_default()
    }

    /// Run a PostgreSQL server program (as the postgres user when root).
    fn pg(&self, what: &str, program: &str, args: &[&std::ffi::OsStr]) -> Result<(), PitrError> {
        let mut command = Command::new(self.bin.join(program));
        command.args(args);
        self.run_as_postgres(what, &mut command)
    }

    fn run_as_postgres(&self, what: &str, command: &mut Command) -> Result<(), PitrError> {
        if self.as_postgres {
            let mut wrapped = Command::new("runuser");
            wrapped
                .args(["-u", PG_OS_USER, "--"])
                .arg(command.get_program())
                .args(command.get_args());
            self.run(what, &mut wrapped)
        } else {
            self.run(what, command)
        }
    }

    fn run(&self, what: &str, command: &mut Command) -> Result<(), PitrError> {
        // The postgres user may not be able to read the caller's working directory.
        command.current_dir(&self.root);
        let output = command.output().map_err(io(what))?;
        check(what, output).map(|_| ())
    }
}

impl Drop for PitrCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("PITR cluster clean-up: {e}");
        }
    }
}

fn check(what: &str, output: Output) -> Result<String, PitrError> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(PitrError::Program {
            what: what.into(),
            status: output.status.to_string(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn psql(bin: &Path, port: u16, database: &str, sql: &str) -> Result<String, PitrError> {
    let output = Command::new(bin.join("psql"))
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", database])
        .arg("-p")
        .arg(port.to_string())
        .arg("-c")
        .arg(sql)
        .output()
        .map_err(io("running psql"))?;
    check(&format!("psql on port {port}: {sql}"), output)
}

/// The newest PostgreSQL version's program directory.
fn find_bin() -> Result<PathBuf, PitrError> {
    let none = || PitrError::NoPostgres {
        searched: PG_ROOT.into(),
    };
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(PG_ROOT)
        .map_err(|_| none())?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            ["initdb", "pg_ctl", "pg_basebackup", "psql"]
                .iter()
                .all(|p| bin.join(p).is_file())
                .then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(none)
}

fn unique_dir() -> Result<PathBuf, PitrError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "lifeboat-pitr-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&dir).map_err(io(format!("creating {}", dir.display())))?;
    Ok(dir)
}

/// A port free on 127.0.0.1 now (the OS picks it; the server binds it a moment later).
fn free_port() -> Result<u16, PitrError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io("finding a free loopback port"))
}

fn path_str(path: &Path) -> Result<String, PitrError> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| PitrError::Io {
            what: format!("using {}", path.display()),
            source: std::io::Error::other("the temporary directory's path is not UTF-8"),
        })
}

/// A path for a shell command inside a configuration value: no quotes or spaces allowed,
/// which holds for the directories this harness names itself.
fn quoted_path(path: &Path) -> Result<String, PitrError> {
    let s = path_str(path)?;
    if s.contains(['\'', '"', ' ', '\\']) {
        return Err(PitrError::Io {
            what: format!("using {s} in archive_command"),
            source: std::io::Error::other(
                "quotes, spaces or backslashes in the temporary directory: set TMPDIR to a plain path",
            ),
        });
    }
    Ok(s)
}

/// Append settings to a cluster's postgresql.conf (later lines win over earlier ones).
fn append_conf(data: &Path, settings: &[(&str, String)]) -> Result<(), PitrError> {
    use std::io::Write;
    let path = data.join("postgresql.conf");
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    let mut text = String::from("\n# Lifeboat PITR harness\n");
    for (name, value) in settings {
        text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    file.write_all(text.as_bytes())
        .map_err(io(format!("writing {}", path.display())))
}

/// A timestamp PostgreSQL reads exactly: microseconds, explicit UTC offset.
fn pg_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, false)
        .replace('T', " ")
}

fn postmaster_pid(data: &Path) -> Option<u32> {
    fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Wait until a process is gone; whether it is.
fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while process_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The last resort when this process is told to stop: an immediate shutdown (SIGQUIT) of
/// every server whose data directory is under `root`, by the pid in its postmaster.pid,
/// then the directory removed.
fn stop_servers_under(root: &Path) {
    let servers = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| postmaster_pid(&entry.path()));
    for pid in servers {
        let _ = Command::new("kill")
            .args(["-QUIT", &pid.to_string()])
            .status();
        wait_gone(pid, Duration::from_secs(10));
    }
    let _ = fs::remove_dir_all(root);
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
