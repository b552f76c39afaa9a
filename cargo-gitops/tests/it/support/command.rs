//! The `cargo-gitops` binary of this package run in one directory (`TestCommand`), with an
//! environment scrubbed of the caller's CI, git, registry-login and reproducible-build
//! variables; and the readers of what it prints: its JSON, and the error contract (exactly one
//! `error: ` line, never a panic).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::repo::{GIT_IDENTITY, GIT_REDIRECTS, NO_GIT_CONFIG};

/// Variables that would leak the caller's context into a run: GitHub Actions' (the tool reads
/// them), the registry login and the build time the tool takes from the environment. Every
/// other CI variable the tool reads (`ci::detect::VARIABLES`) is scrubbed too.
const SCRUBBED_VARS: &[&str] = &[
    "GITHUB_ACTIONS",
    "GITHUB_REF",
    "GITHUB_REF_NAME",
    "GITHUB_SHA",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITOPS_REGISTRY_USER",
    "GITOPS_REGISTRY_PASSWORD",
    "SOURCE_DATE_EPOCH",
    // git's identity (with the `GIT_AUTHOR_*`/`GIT_COMMITTER_*` of `GIT_IDENTITY`): the tool
    // signs release tags with the repository's configuration, then with these.
    "EMAIL",
];

/// How long one run may take before the test fails: a native build of demo-app is the longest.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Empty logins, so that the machine's own (Docker's `config.json`, podman's `auth.json`) never
/// leak into a test: `DOCKER_CONFIG` names a directory that does not exist, and
/// `REGISTRY_AUTH_FILE` a file with no login in it (podman refuses one that does not exist).
pub(super) fn no_logins() -> (PathBuf, PathBuf) {
    static AUTH_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let auth_file = AUTH_FILE.get_or_init(|| {
        let path = super::process_dir().join("auth.json");
        std::fs::write(&path, "{\"auths\":{}}").expect("write the empty auth file");
        path
    });
    (
        super::process_dir().join("no-docker-config"),
        auth_file.clone(),
    )
}

/// A docker configuration with no login and only the buildx CLI plugin (from `PATH`, where
/// .ci/test puts it), for the tests that run docker buildx; the others run docker with none.
pub fn docker_config_with_buildx() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = super::process_dir().join("docker-config-with-buildx");
        super::buildkit::link_buildx_plugin(&dir);
        dir
    })
    .clone()
}

/// The `cargo-gitops` binary of this package, run in one directory with a clean environment.
pub struct TestCommand {
    cmd: assert_cmd::Command,
}

impl TestCommand {
    pub fn new(dir: &Path) -> TestCommand {
        let mut cmd =
            assert_cmd::Command::cargo_bin("cargo-gitops").expect("cargo-gitops is built");
        cmd.current_dir(dir);
        let identity = GIT_IDENTITY.iter().map(|(var, _)| var);
        let ci = cargo_gitops::ci::detect::VARIABLES.iter();
        for var in SCRUBBED_VARS
            .iter()
            .chain(ci)
            .chain(GIT_REDIRECTS)
            .chain(identity)
        {
            cmd.env_remove(var);
        }
        let (docker_config, auth_file) = no_logins();
        cmd.envs(NO_GIT_CONFIG.iter().copied())
            .env("DOCKER_CONFIG", docker_config)
            .env("REGISTRY_AUTH_FILE", auth_file)
            // podman, when a run uses it: storage that works in a container and for any user.
            .env("STORAGE_DRIVER", "vfs")
            .env("RUST_BACKTRACE", "1")
            .timeout(TIMEOUT);
        TestCommand { cmd }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut TestCommand {
        self.cmd.env(key, value);
        self
    }

    /// What the command reads on its standard input (nothing otherwise).
    pub fn write_stdin(&mut self, input: impl Into<Vec<u8>>) -> &mut TestCommand {
        self.cmd.write_stdin(input);
        self
    }

    /// How long a run may take before it is killed and the test fails.
    pub fn timeout(&mut self, timeout: Duration) -> &mut TestCommand {
        self.cmd.timeout(timeout);
        self
    }

    /// The same command (program, arguments, environment and directory) as a plain
    /// `std::process::Command`, to spawn it and go on while it runs.
    pub fn std(&self) -> std::process::Command {
        let mut command = std::process::Command::new(self.cmd.get_program());
        command.args(self.cmd.get_args());
        if let Some(dir) = self.cmd.get_current_dir() {
            command.current_dir(dir);
        }
        for (key, value) in self.cmd.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
    }

    /// Runs the command, whatever its exit status.
    pub fn output(&mut self) -> Output {
        self.cmd.output().expect("run cargo-gitops")
    }

    /// Runs the command, for `assert_cmd`'s assertions.
    pub fn assert(&mut self) -> assert_cmd::assert::Assert {
        self.cmd.assert()
    }

    /// Runs the command and asserts its exit code; shows both streams when it differs.
    pub fn expect_exit(&mut self, code: i32) -> Output {
        let output = self.output();
        assert_eq!(
            output.status.code(),
            Some(code),
            "{:?}: unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.cmd,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Runs the command, asserts that it exits 0, and returns its stdout and stderr.
    pub fn succeeds(&mut self) -> (String, String) {
        let output = self.expect_exit(0);
        (
            String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        )
    }

    /// Runs the command, asserts that it exits 0, and returns its stdout.
    pub fn stdout(&mut self) -> String {
        self.succeeds().0
    }

    /// Runs the command, asserts that it exits 0, and parses its stdout as one JSON value.
    pub fn json(&mut self) -> Value {
        json(self.stdout().as_bytes())
    }

    /// Runs the command and asserts the error contract for a failure with exit `code`: among
    /// whatever else stderr says, exactly one line starts with `error: `, and nothing
    /// panicked. Returns that line.
    pub fn expect_error(&mut self, code: i32) -> String {
        one_error_line(&self.expect_exit(code))
    }

    /// Runs the command and asserts the error contract of a refusal with exit `code`: nothing
    /// on stdout, and stderr exactly one line starting with `error: `, with no panic and no
    /// backtrace (`RUST_BACKTRACE=1` is set). Returns the line.
    pub fn one_line_error(&mut self, code: i32) -> String {
        let output = self.expect_exit(code);
        let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
        assert!(
            output.stdout.is_empty(),
            "stdout: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
        assert!(stderr.ends_with('\n'), "{stderr:?}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        stderr.trim_end().to_owned()
    }

    /// `one_line_error` for a usage error: exit 2.
    pub fn usage_error(&mut self) -> String {
        self.one_line_error(2)
    }
}

/// Parses bytes as one JSON value; panics with them when they are not.
pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// The one line of a run's stderr that starts with `error: `; asserts that there is exactly
/// one and that nothing panicked.
fn one_error_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0].to_owned()
}

/// All a run printed, stdout then stderr: to prove what it never prints (a password).
pub fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
