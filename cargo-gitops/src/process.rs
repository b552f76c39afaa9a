//! The one place that starts other programs (podman, docker, skopeo, crane, cargo): a command
//! is built as a `Command`, shown as a shell line (no secret is ever passed to one), and run as
//! one `duct` expression with its output captured so that a failure can quote the program's
//! last lines. Programs still running when the tool is interrupted are ended with it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::error::{Error, quote_external};

/// How many lines of a failed program's output go into the error.
const TAIL_LINES: usize = 20;

/// `--verbose`: show each command before it runs.
static ECHO_COMMANDS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every command run from now on print itself to stderr first.
pub fn echo_commands(on: bool) {
    ECHO_COMMANDS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The programs running now, so that an interrupted run can end them.
static RUNNING: Mutex<Vec<Arc<duct::Handle>>> = Mutex::new(Vec::new());

/// On SIGINT or SIGTERM, ends every program this process started and is still waiting for,
/// then exits as the signal asks (130 or 143). Installed with the first program started, so a
/// command that starts none (`env`) pays nothing for it.
fn end_children_on_signal() -> std::io::Result<()> {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| install_signal_handler().map_err(|e| e.to_string()))
        .clone()
        .map_err(std::io::Error::other)
}

fn install_signal_handler() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            end_children();
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

/// Ends every program this process started and is still waiting for, for a run about to
/// exit (a signal, the deadline). The programs stay in the list, so none can be started in
/// their place while the lock is held.
pub fn end_children() {
    let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    for handle in running.iter() {
        // Each program leads a process group of its own: the signal reaches what it
        // started in turn (cargo's rustc and build scripts), then it is killed.
        for pid in handle.pids() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = handle.kill();
    }
    // Held until the process exits: no program is started after this.
    std::mem::forget(running);
}

/// An external command, ready to show or to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Variables whose values are never shown (a token in git's configuration).
    secret_env: Vec<(String, String)>,
    dir: Option<PathBuf>,
}

/// What a program printed, once it succeeded.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Command {
    pub fn new(program: &str) -> Command {
        Command {
            program: program.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            secret_env: Vec::new(),
            dir: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Command {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Command {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable whose value is shown (not for secrets).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Command {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// An environment variable whose value is a secret: passed to the program, never shown
    /// by `display` (nor by `--dry-run`, `--verbose` or an error).
    pub fn secret_env(mut self, key: &str, value: impl Into<String>) -> Command {
        self.secret_env.push((key.to_owned(), value.into()));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Command {
        self.dir = Some(dir.into());
        self
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// The arguments, without the program, as they will be passed.
    pub fn argv(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }

    /// The command as a shell line, for `--dry-run` and `--verbose`.
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)))
            .collect();
        parts.push(shell_quote(&self.program));
        parts.extend(self.args.iter().map(|a| shell_quote(a)));
        parts.join(" ")
    }

    /// The expression with its input closed and its own process group; output is set by the
    /// caller (captured, or into pipes that are read as the program writes).
    fn base_expression(&self) -> duct::Expression {
        let args: Vec<OsString> = self.args.iter().map(OsString::from).collect();
        let mut expression = duct::cmd(&self.program, args);
        for (key, value) in self.env.iter().chain(&self.secret_env) {
            expression = expression.env(key, value);
        }
        if let Some(dir) = &self.dir {
            expression = expression.dir(dir);
        }
        expression = expression.stdin_null().before_spawn(|command| {
            std::os::unix::process::CommandExt::process_group(command, 0);
            Ok(())
        });
        expression.unchecked()
    }

    /// Starts `expression`, known to the signal handler until it ends.
    fn start_and_wait(
        &self,
        expression: duct::Expression,
    ) -> std::io::Result<std::process::Output> {
        end_children_on_signal()?;
        // Started with the list locked, so a run ending (`end_children`) either sees it or
        // holds the lock before it starts: never a program left behind.
        let handle = {
            let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
            let handle = Arc::new(expression.start()?);
            running.push(Arc::clone(&handle));
            handle
        };
        // What the expression holds (the write ends of output pipes) must not outlive the wait.
        drop(expression);
        let output = handle.wait().cloned();
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|h| !Arc::ptr_eq(h, &handle));
        output
    }

    /// Runs the command to completion. A non-zero exit is an error quoting the last lines the
    /// program printed; a program that is not installed is an error that says how to get it.
    pub fn run(&self) -> Result<Output, Error> {
        self.echo();
        let expression = self.base_expression().stdout_capture().stderr_capture();
        self.finish(self.start_and_wait(expression))
    }

    /// Runs the command like `run`, and copies each line it prints to stderr as it comes (a
    /// compile that takes minutes shows its progress in a CI log). Each line is quoted like
    /// a tool's output in an error, so none can become a CI workflow command.
    pub fn run_echoing(&self) -> Result<Output, Error> {
        self.echo();
        let started = (|| {
            let (stdout_reader, stdout_writer) = std::io::pipe()?;
            let (stderr_reader, stderr_writer) = std::io::pipe()?;
            let expression = self
                .base_expression()
                .stdout_file(stdout_writer)
                .stderr_file(stderr_writer);
            std::thread::scope(|scope| {
                let stdout = scope.spawn(move || copy_lines(stdout_reader));
                let stderr = scope.spawn(move || copy_lines(stderr_reader));
                // The pipes' write ends went with the expression: once the program (and what
                // it started) exits, both readers see the end and return what they read.
                let mut output = self.start_and_wait(expression);
                let stdout = stdout.join().unwrap_or_default();
                let stderr = stderr.join().unwrap_or_default();
                if let Ok(output) = &mut output {
                    output.stdout = stdout;
                    output.stderr = stderr;
                }
                output
            })
        })();
        self.finish(started)
    }

    fn echo(&self) {
        if ECHO_COMMANDS.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("$ {}", self.display());
        }
    }

    /// The outcome of a run: its output, or an error saying what failed and how.
    fn finish(&self, output: std::io::Result<std::process::Output>) -> Result<Output, Error> {
        let output = output.map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::ToolMissing {
                    tool: self.program.clone(),
                    hint: install_hint(&self.program),
                }
            } else {
                Error::Spawn {
                    command: self.display(),
                    source,
                }
            }
        })?;
        if output.status.success() {
            return Ok(Output {
                stdout: output.stdout,
                stderr: output.stderr,
            });
        }
        Err(Error::CommandFailed {
            command: self.display(),
            status: output
                .status
                .code()
                .map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}")),
            output: tail(&output.stderr, &output.stdout),
        })
    }
}

/// Reads a program's output to its end, writing each line to stderr as it arrives (quoted),
/// and returns all of it for the error a failure shows.
fn copy_lines(reader: std::io::PipeReader) -> Vec<u8> {
    use std::io::{BufRead, Write};
    let mut all = Vec::new();
    let mut reader = std::io::BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                all.extend_from_slice(&line);
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                // One write per line, so lines of the two streams never interleave mid-line.
                let _ = writeln!(std::io::stderr().lock(), "{}", quote_external(text));
            }
        }
    }
    all
}

/// Whether `program` can be found on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(program);
            candidate.is_file()
                && std::fs::metadata(&candidate).is_ok_and(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o111 != 0
                })
        })
    })
}

/// How to get a missing program, or what to use instead.
pub fn install_hint(program: &str) -> String {
    match program {
        "docker" => "install Docker with the buildx plugin, or use --build-with podman or --build-with native".to_owned(),
        "podman" => "install podman (apt-get install podman), or use another --build-with".to_owned(),
        "skopeo" => "install skopeo (apt-get install skopeo), or use --retag-with builtin".to_owned(),
        "crane" => "install crane (go install github.com/google/go-containerregistry/cmd/crane@latest), or use --retag-with builtin".to_owned(),
        other => format!("install {other} and make sure it is on PATH"),
    }
}

/// The last lines a program printed, stderr first since that is where tools explain failures,
/// on one line: each line quoted (so none can become a CI workflow command), joined by ` | `.
fn tail(stderr: &[u8], stdout: &[u8]) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|line| quote_external(line.trim_end()))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_the_shell_would_split() {
        let command = Command::new("skopeo")
            .env("REGISTRY_AUTH_FILE", "/tmp/auth file.json")
            .args(["copy", "it's", "docker://127.0.0.1:5000/app:v1"]);
        assert_eq!(
            command.display(),
            r"REGISTRY_AUTH_FILE='/tmp/auth file.json' skopeo copy 'it'\''s' docker://127.0.0.1:5000/app:v1"
        );
    }

    #[test]
    fn failure_quotes_the_last_lines() {
        let err = Command::new("sh")
            .args(["-c", "echo one >&2; echo two >&2; exit 3"])
            .run()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exit code 3"), "{text}");
        assert!(text.ends_with(": one | two"), "{text}");
        // A tool's output cannot break the error's one line or start a workflow command.
        let err = Command::new("sh")
            .args(["-c", "printf 'bad\\n::warning title=X::y\\n' >&2; exit 1"])
            .run()
            .unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.ends_with(": bad | \\u{3a}:warning title=X::y"),
            "{text}"
        );
    }

    #[test]
    fn echoing_keeps_the_output_for_the_caller_and_the_error() {
        let output = Command::new("sh")
            .args(["-c", "echo out; echo err >&2"])
            .run_echoing()
            .unwrap();
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
        let err = Command::new("sh")
            .args(["-c", "echo one >&2; sleep 0.2; echo two >&2; exit 4"])
            .run_echoing()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("exit code 4") && text.ends_with(": one | two"),
            "{text}"
        );
        let err = Command::new("definitely-not-a-tool-gitops")
            .run_echoing()
            .unwrap_err();
        assert!(matches!(err, Error::ToolMissing { .. }), "{err:?}");
    }

    #[test]
    fn missing_program_says_what_to_do() {
        let err = Command::new("definitely-not-a-tool-gitops")
            .run()
            .unwrap_err();
        assert!(matches!(err, Error::ToolMissing { .. }), "{err:?}");
    }
}
