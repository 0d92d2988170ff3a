//! `refunds-server` as a child process, for the programs that drive one: the end-to-end
//! tests, the reliability suite and the benchmark. The server binds a free port
//! (`--bind 127.0.0.1:0`), is found by the `listening address=…` line of its log, and dies
//! with the process that started it.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long a server may take from its spawn to its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of log kept to explain a failed start.
const TAIL_LINES: usize = 30;

/// Which of the server's output streams a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

type LineHandler = Box<dyn FnMut(Stream, &str) + Send>;

enum Output {
    /// Read by the launcher, each line handed to the handler if there is one.
    Pipes(Option<LineHandler>),
    /// Stdout and stderr both appended to this file.
    File(PathBuf),
}

/// What to start: `binary args… --bind 127.0.0.1:0` with the caller's environment, changed
/// by `env` and `env_remove`.
pub struct ServerCommand {
    binary: PathBuf,
    command: Command,
    sets_rust_log: bool,
    output: Output,
}

impl ServerCommand {
    pub fn new(binary: impl AsRef<Path>, args: &[&str]) -> ServerCommand {
        let binary = binary.as_ref().to_owned();
        let mut command = Command::new(&binary);
        command.args(args).stdin(Stdio::null()).kill_on_drop(true);
        die_with_parent(&mut command);
        ServerCommand {
            binary,
            command,
            sets_rust_log: false,
            output: Output::Pipes(None),
        }
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> ServerCommand {
        self.sets_rust_log |= key == "RUST_LOG";
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> ServerCommand {
        self.sets_rust_log |= key == "RUST_LOG";
        self.command.env_remove(key);
        self
    }

    /// Appends the server's stdout and stderr to `path` instead of reading them.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> ServerCommand {
        self.output = Output::File(path.into());
        self
    }

    /// Hands every line the server prints to `handler`, without its line ending.
    pub fn on_line(mut self, handler: impl FnMut(Stream, &str) + Send + 'static) -> ServerCommand {
        self.output = Output::Pipes(Some(Box::new(handler)));
        self
    }

    /// Spawns the server and returns once it has logged the address it listens on.
    pub async fn start(self) -> Result<ServerProcess> {
        let ServerCommand {
            binary,
            mut command,
            sets_rust_log,
            output,
        } = self;
        // A RUST_LOG inherited from the caller must still let through the line that gives
        // the address; one the caller sets is its own business.
        if !sets_rust_log
            && let Ok(filter) = std::env::var("RUST_LOG")
            && !filter.trim().is_empty()
        {
            command.env(
                "RUST_LOG",
                format!("{filter},refunds_server::app::startup=info"),
            );
        }
        command.args(["--bind", "127.0.0.1:0"]);
        let mut log = match output {
            Output::Pipes(handler) => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
                Log::Pipes {
                    watch: Arc::default(),
                    readers: Vec::new(),
                    handler: handler.map(|handler| Arc::new(Mutex::new(handler))),
                }
            }
            Output::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                let offset = file.metadata()?.len();
                command.stdout(file.try_clone()?).stderr(file);
                Log::File { path, offset }
            }
        };
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let pid = child.id().context("the server exited at once")?;
        log.read_pipes(&mut child);
        loop {
            if let Some(addr) = log.address() {
                return Ok(ServerProcess {
                    child,
                    pid,
                    addr,
                    url: format!("http://{addr}"),
                    spawned,
                    startup: spawned.elapsed(),
                    log,
                    exited: None,
                });
            }
            if let Some(status) = child.try_wait()? {
                log.finish().await;
                bail!(
                    "the server exited at start-up ({status}); last log lines:\n{}",
                    log.tail()
                );
            }
            if spawned.elapsed() > START_TIMEOUT {
                bail!(
                    "the server did not log its address within {} s; last log lines:\n{}",
                    START_TIMEOUT.as_secs(),
                    log.tail()
                );
            }
            log.wait_for_news().await;
        }
    }
}

/// A started server. Dropping it kills the process.
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub spawned: Instant,
    /// From the spawn to the `listening` line.
    pub startup: Duration,
    log: Log,
    exited: Option<ExitStatus>,
}

impl ServerProcess {
    /// SIGTERM: the server drains its connections and exits.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// SIGKILL, then reaps the process.
    pub async fn kill(&mut self) -> Result<()> {
        self.signal(libc::SIGKILL);
        self.wait(Duration::from_secs(10))
            .await
            .context("the server is not dead 10 s after SIGKILL")?;
        Ok(())
    }

    /// SIGTERM, and SIGKILL if the server has not exited within `timeout`, which is an error.
    pub async fn stop(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.terminate();
        match self.wait(timeout).await {
            Some(status) => Ok(status),
            None => {
                let _ = self.kill().await;
                bail!(
                    "the server did not stop within {} s of SIGTERM; killed",
                    timeout.as_secs()
                )
            }
        }
    }

    /// Waits at most `timeout` for the process to exit; once it has, every line it printed
    /// has been handed on.
    pub async fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_none()
            && let Ok(Ok(status)) = tokio::time::timeout(timeout, self.child.wait()).await
        {
            self.log.finish().await;
            self.exited = Some(status);
        }
        self.exited
    }

    /// The exit status if the process has exited, without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exited = Some(status);
        }
        self.exited
    }

    pub fn memory(&self) -> Option<Memory> {
        memory(self.pid)
    }

    fn signal(&self, signal: libc::c_int) {
        // Once reaped, the pid may belong to another process.
        if self.exited.is_none() {
            // SAFETY: kill(2) with the pid of our own, not yet reaped, child.
            unsafe {
                libc::kill(self.pid as libc::pid_t, signal);
            }
        }
    }
}

/// Resident and peak resident memory of a process, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// VmRSS
    pub resident_kib: u64,
    /// VmHWM
    pub peak_kib: u64,
}

pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse::<u64>().ok())
    };
    Some(Memory {
        resident_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// The child gets SIGKILL when its parent dies, even when the parent is killed outright and
/// has no time to clean up; otherwise `kill_on_drop` and explicit stops end it.
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and only touches the child being set up.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

enum Log {
    Pipes {
        watch: Arc<Watch>,
        readers: Vec<JoinHandle<()>>,
        handler: Option<Arc<Mutex<LineHandler>>>,
    },
    File {
        path: PathBuf,
        /// The file's length before the spawn: what this process logged comes after.
        offset: u64,
    },
}

/// What the pipe readers have seen: the address, and the last lines.
#[derive(Default)]
struct Watch {
    seen: Mutex<Seen>,
    address_found: Notify,
}

#[derive(Default)]
struct Seen {
    address: Option<SocketAddr>,
    tail: VecDeque<String>,
}

impl Watch {
    fn record(&self, line: &str) {
        let mut seen = self.seen.lock().unwrap();
        if seen.address.is_none()
            && let Some(addr) = listening_address(line)
        {
            seen.address = Some(addr);
            self.address_found.notify_one();
        }
        if seen.tail.len() == TAIL_LINES {
            seen.tail.pop_front();
        }
        seen.tail.push_back(line.to_owned());
    }
}

impl Log {
    fn read_pipes(&mut self, child: &mut Child) {
        if let Log::Pipes {
            watch,
            readers,
            handler,
        } = self
        {
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            readers.extend(stdout.map(|pipe| read_lines(pipe, Stream::Stdout, watch, handler)));
            readers.extend(stderr.map(|pipe| read_lines(pipe, Stream::Stderr, watch, handler)));
        }
    }

    fn address(&self) -> Option<SocketAddr> {
        match self {
            Log::Pipes { watch, .. } => watch.seen.lock().unwrap().address,
            Log::File { path, offset } => {
                read_from(path, *offset).lines().find_map(listening_address)
            }
        }
    }

    fn tail(&self) -> String {
        let lines: Vec<String> = match self {
            Log::Pipes { watch, .. } => watch.seen.lock().unwrap().tail.iter().cloned().collect(),
            Log::File { path, offset } => {
                let text = read_from(path, *offset);
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(TAIL_LINES)..]
                    .iter()
                    .map(|line| line.to_string())
                    .collect()
            }
        };
        lines.join("\n")
    }

    /// Returns when the address may have been logged: at once for pipes, after a short
    /// sleep for a file, which nothing announces.
    async fn wait_for_news(&self) {
        let poll = tokio::time::sleep(Duration::from_millis(10));
        match self {
            Log::Pipes { watch, .. } => {
                tokio::select! {
                    _ = watch.address_found.notified() => {}
                    _ = poll => {}
                }
            }
            Log::File { .. } => poll.await,
        }
    }

    /// Lets the readers finish the pipes of an exited process.
    async fn finish(&mut self) {
        if let Log::Pipes { readers, .. } = self {
            for reader in readers.drain(..) {
                // A grandchild holding the pipe open must not hang the caller.
                let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
            }
        }
    }
}

/// Reads `pipe` line by line until it closes, in a task of its own.
fn read_lines(
    pipe: impl AsyncRead + Unpin + Send + 'static,
    stream: Stream,
    watch: &Arc<Watch>,
    handler: &Option<Arc<Mutex<LineHandler>>>,
) -> JoinHandle<()> {
    let (watch, handler) = (watch.clone(), handler.clone());
    tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(64 * 1024, pipe);
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            match reader.read_until(b'\n', &mut bytes).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&bytes);
            let line = text.trim_end_matches(['\n', '\r']);
            watch.record(line);
            if let Some(handler) = &handler {
                (handler.lock().unwrap())(stream, line);
            }
        }
    })
}

fn read_from(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = (offset as usize).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The address of the `listening` line, in either log format:
/// `… listening address=127.0.0.1:41234` or `{… "message":"listening","address":"127.0.0.1:41234"}`.
fn listening_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") {
        return None;
    }
    let (_, rest) = line
        .split_once("address=")
        .or_else(|| line.split_once("\"address\":"))?;
    let value = rest.trim_start_matches('"');
    let end = value
        .find(|c: char| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']')))
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::{ServerCommand, Stream, listening_address};

    /// `sh -c SCRIPT --bind 127.0.0.1:0` stands in for the server: the arguments the
    /// launcher appends become the script's `$0` and `$1`.
    fn fake_server(script: &str) -> ServerCommand {
        ServerCommand::new("/bin/sh", &["-c", script])
    }

    #[tokio::test]
    async fn finds_the_address_hands_on_every_line_and_stops_the_process() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let mut server = fake_server(
            "echo banner; echo \"INFO listening address=127.0.0.1:4321\" >&2; exec sleep 30",
        )
        .on_line(move |stream, line| seen.lock().unwrap().push((stream, line.to_owned())))
        .start()
        .await
        .unwrap();
        assert_eq!(server.url, "http://127.0.0.1:4321");
        let status = server.stop(Duration::from_secs(10)).await.unwrap();
        assert!(!status.success());
        let lines = lines.lock().unwrap();
        assert!(
            lines.contains(&(Stream::Stdout, "banner".to_owned())),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|(stream, _)| *stream == Stream::Stderr),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_exits_at_start_up_is_an_error_with_its_last_lines() {
        let log = std::env::temp_dir().join(format!("server-process-{}.log", std::process::id()));
        std::fs::write(&log, "an earlier run\n").unwrap();
        for command in [
            fake_server("echo boom >&2; exit 3"),
            fake_server("echo boom >&2; exit 3").log_file(&log),
        ] {
            let error = command.start().await.err().expect("an error").to_string();
            assert!(
                error.contains("exited at start-up") && error.contains("boom"),
                "{error}"
            );
            assert!(!error.contains("an earlier run"), "{error}");
        }
        std::fs::remove_file(&log).unwrap();
    }

    #[test]
    fn finds_the_listening_address_in_both_log_formats() {
        let human = "2026-01-01T00:00:00.000000Z  INFO refunds_server::app::startup: listening address=127.0.0.1:43125";
        assert_eq!(
            listening_address(human),
            Some("127.0.0.1:43125".parse().unwrap())
        );
        let json = r#"{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","fields":{"message":"listening","address":"127.0.0.1:43125"},"target":"refunds_server::app::startup"}"#;
        assert_eq!(
            listening_address(json),
            Some("127.0.0.1:43125".parse().unwrap())
        );
        assert_eq!(
            listening_address("INFO listening address=[::1]:8000 more"),
            Some("[::1]:8000".parse().unwrap())
        );
    }

    #[test]
    fn other_lines_have_no_address() {
        assert_eq!(listening_address("INFO migrations applied"), None);
        assert_eq!(
            listening_address("INFO request address=127.0.0.1:1 status=200"),
            None
        );
    }
}
