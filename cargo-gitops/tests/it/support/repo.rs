//! Temporary directories (`Dir`) that may be git repositories, built with the real `git` command
//! line with a fixed identity and date, branch `main` and no user or system configuration, so
//! that a test behaves the same on a laptop, inside a git hook and on a GitHub runner.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::command::TestCommand;

/// Variables set while a git hook runs: they would redirect every `git` call. Removed from
/// every `git` call and every run of the command under test.
pub(super) const GIT_REDIRECTS: &[&str] = &[
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
pub(super) const GIT_IDENTITY: &[(&str, &str)] = &[
    ("GIT_AUTHOR_NAME", "Test Author"),
    ("GIT_AUTHOR_EMAIL", "author@example.com"),
    ("GIT_AUTHOR_DATE", "2022-06-10T17:07:48Z"),
    ("GIT_COMMITTER_NAME", "Test Committer"),
    ("GIT_COMMITTER_EMAIL", "committer@example.com"),
    ("GIT_COMMITTER_DATE", "2022-06-10T17:07:48Z"),
];

/// Neither the machine's nor the user's configuration (signing, hooks, default branch).
pub(super) const NO_GIT_CONFIG: &[(&str, &str)] = &[
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
    pub fn create(&self, relative: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> &Dir {
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

    /// The commit `name` points at, or `None` when it names none.
    pub fn rev(&self, name: &str) -> Option<String> {
        let output = git_output(
            &self.root,
            ["rev-parse", "--verify", "-q", &format!("{name}^{{commit}}")],
        );
        output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).unwrap().trim().to_owned())
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

impl Default for Dir {
    fn default() -> Self {
        Dir::new()
    }
}

/// The `Cargo.toml` of an empty workspace whose image is `registry`/`image`, followed by
/// `extra` (more of its `[workspace.metadata.gitops]` table, or tables of its own).
pub fn gitops_manifest(registry: &str, image: &str, extra: &str) -> String {
    format!(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"{registry}\"\nimage = \"{image}\"\n{extra}"
    )
}

/// Runs `git` in `dir` with a fixed identity and no ambient configuration, whatever its exit
/// status.
fn git_output<I, S>(dir: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = std::process::Command::new("git");
    cmd.current_dir(dir).args(GIT_SETTINGS).args(args);
    for var in GIT_REDIRECTS {
        cmd.env_remove(var);
    }
    cmd.envs(GIT_IDENTITY.iter().copied())
        .envs(NO_GIT_CONFIG.iter().copied());
    cmd.output().expect("run git (is it installed?)")
}

/// Runs `git` in `dir` with a fixed identity and no ambient configuration; panics with git's
/// stderr if it fails. Returns stdout, trimmed.
pub fn git_in<I, S>(dir: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = git_output(dir, &args);
    assert!(
        output.status.success(),
        "git {args:?} in {dir:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("git output is UTF-8")
        .trim()
        .to_owned()
}
