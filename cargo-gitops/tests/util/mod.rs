//! Shared helpers for the integration tests, in the manner of ripgrep's `tests/util.rs`: each
//! test gets its own temporary directory (`Dir`), may turn it into a git repository built with
//! the real `git` command line, and runs the command under test there (`TestCommand`) with an
//! environment scrubbed of the caller's CI and git variables, so that a test behaves the same
//! on a laptop, inside a git hook and on a GitHub runner.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Variables that would leak the caller's context into a test: GitHub Actions' (the tool reads
/// them) and git's own (set while a git hook runs, they would redirect every `git` call).
const SCRUBBED_VARS: &[&str] = &[
    "GITHUB_ACTIONS",
    "GITHUB_REF",
    "GITHUB_REF_NAME",
    "GITHUB_SHA",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
];

/// A fixed identity and date, so that git works on a machine with no git configuration and
/// commits do not depend on the clock.
const GIT_IDENTITY: &[(&str, &str)] = &[
    ("GIT_AUTHOR_NAME", "Test Author"),
    ("GIT_AUTHOR_EMAIL", "author@example.com"),
    ("GIT_AUTHOR_DATE", "2022-06-10T17:07:48Z"),
    ("GIT_COMMITTER_NAME", "Test Committer"),
    ("GIT_COMMITTER_EMAIL", "committer@example.com"),
    ("GIT_COMMITTER_DATE", "2022-06-10T17:07:48Z"),
    // Neither the machine's nor the user's configuration (signing, hooks, default branch).
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
];

/// `-c` settings for every `git` call, for git versions that predate `GIT_CONFIG_GLOBAL`.
const GIT_SETTINGS: &[&str] = &[
    "-c",
    "user.name=Test Committer",
    "-c",
    "user.email=committer@example.com",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "tag.gpgsign=false",
    "-c",
    "advice.detachedHead=false",
    "-c",
    "advice.nestedTag=false",
];

/// A temporary directory, removed when the test ends.
pub struct Dir {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dir {
    /// An empty directory that is not inside any git repository or cargo workspace.
    pub fn new() -> Dir {
        let tmp = tempfile::Builder::new()
            .prefix("cargo-gitops-test-")
            .tempdir()
            .expect("create a temporary directory");
        // Canonical, so that paths printed by the tool compare equal to ours (macOS /private).
        let root = tmp
            .path()
            .canonicalize()
            .expect("canonicalize the temp dir");
        Dir { _tmp: tmp, root }
    }

    /// A new git repository on branch `main`, with no commit yet.
    pub fn git_repo() -> Dir {
        let dir = Dir::new();
        dir.git(["init", "--quiet"]);
        dir
    }

    /// A new git repository on branch `main` with one empty commit.
    pub fn git_repo_with_commit() -> Dir {
        let dir = Dir::git_repo();
        dir.commit("initial commit");
        dir
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.root.join(relative)
    }

    /// Writes a file (creating its directories), relative to the root.
    pub fn create(&self, relative: impl AsRef<Path>, contents: &str) -> &Dir {
        let path = self.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        self
    }

    /// Creates a directory (and its parents), relative to the root.
    pub fn create_dir(&self, relative: impl AsRef<Path>) -> PathBuf {
        let path = self.join(relative);
        std::fs::create_dir_all(&path).expect("create directory");
        path
    }

    /// Runs `git` in the root; panics with git's stderr if it fails. Returns stdout, trimmed.
    pub fn git<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        git_in(&self.root, args)
    }

    /// Commits everything in the working tree (or nothing) and returns the new commit's id.
    pub fn commit(&self, message: &str) -> String {
        self.git(["add", "--all"]);
        self.git(["commit", "--quiet", "--allow-empty", "-m", message]);
        self.head()
    }

    /// The 40-hex id of the commit HEAD points at.
    pub fn head(&self) -> String {
        self.git(["rev-parse", "HEAD"])
    }

    /// The command under test, run in the root.
    pub fn command(&self) -> TestCommand {
        TestCommand::new(&self.root)
    }

    /// The command under test, run in a directory below the root.
    pub fn command_in(&self, relative: impl AsRef<Path>) -> TestCommand {
        TestCommand::new(&self.join(relative))
    }
}

/// Runs `git` in `dir` with a fixed identity and no ambient configuration; panics with git's
/// stderr if it fails. Returns stdout, trimmed.
pub fn git_in<I, S>(dir: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = std::process::Command::new("git");
    cmd.current_dir(dir).args(GIT_SETTINGS).args(args);
    for var in SCRUBBED_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(GIT_IDENTITY.iter().copied());
    let output = cmd.output().expect("run git (is it installed?)");
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("git output is UTF-8")
        .trim()
        .to_owned()
}

/// The `cargo-gitops` binary of this package, run in one directory with a clean environment.
pub struct TestCommand {
    cmd: assert_cmd::Command,
}

impl TestCommand {
    fn new(dir: &Path) -> TestCommand {
        let mut cmd =
            assert_cmd::Command::cargo_bin("cargo-gitops").expect("cargo-gitops is built");
        cmd.current_dir(dir);
        for var in SCRUBBED_VARS {
            cmd.env_remove(var);
        }
        cmd.env("RUST_BACKTRACE", "1");
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

    /// Runs the command, whatever its exit status.
    pub fn output(&mut self) -> Output {
        self.cmd.output().expect("run cargo-gitops")
    }

    /// Runs the command, asserts that it exits 0, and returns its stdout.
    pub fn stdout(&mut self) -> String {
        let output = self.expect_exit(0);
        String::from_utf8(output.stdout).expect("stdout is UTF-8")
    }

    /// Runs the command, asserts that it exits 0, and parses its stdout as one JSON value.
    pub fn json(&mut self) -> serde_json::Value {
        let stdout = self.stdout();
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}"))
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
}
