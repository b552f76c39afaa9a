//! The manifests repository, through the real `git` command line (run by `process`): a clone
//! of the one branch into a temporary folder, what the history says this tool wrote, one
//! commit, and a push that is never forced. A rejected push is reported as such, so that the
//! caller can fetch, redo its edits on the new tip and try again. A token, when there is one,
//! reaches git only through its environment, scoped to the repository's origin, and is never
//! shown.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::Error;
use crate::process::Command;

/// The trailer each deploy commit carries once per image digest it writes: how a later run
/// tells a digest this tool wrote from one set by hand.
pub const DIGEST_TRAILER: &str = "Gitops-Digest";

/// Identity for deploy commits when git has none configured.
const DEFAULT_NAME: &str = "cargo-gitops";
const DEFAULT_EMAIL: &str = "cargo-gitops@users.noreply.github.com";

/// A token for the repository: the variable's name (shown) and its value (never shown).
#[derive(Clone)]
pub struct Token {
    pub variable: String,
    pub value: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(${})", self.variable)
    }
}

/// A clone of the manifests branch.
#[derive(Debug)]
pub struct Checkout {
    _dir: tempfile::TempDir,
    worktree: PathBuf,
    url: String,
    pub branch: String,
    token: Option<Token>,
    /// The digests the branch's history says this tool wrote, read once per tip.
    written: std::cell::RefCell<Option<std::collections::HashSet<String>>>,
}

/// How a push went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Landed,
    /// Another writer moved the branch first (non-fast-forward).
    Rejected,
}

/// `https://host[:port]/` of an HTTP(S) URL: where a token may go.
fn http_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split('/').next()?;
    Some(format!("{scheme}://{authority}/"))
}

/// A git command with no terminal prompt and, for HTTP(S) with a token, the header that
/// carries it, for that origin only.
fn git(url: &str, token: Option<&Token>) -> Command {
    let mut command = Command::new("git")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true");
    if let (Some(token), Some(origin)) = (token, http_origin(url)) {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("x-access-token:{}", token.value));
        command = command
            .secret_env("GIT_CONFIG_COUNT", "1")
            .secret_env("GIT_CONFIG_KEY_0", format!("http.{origin}.extraHeader"))
            .secret_env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            );
    }
    command
}

/// What git said went wrong, safe to show: its `fatal:` or `error:` line (hints dropped), else
/// its last line.
fn last_words(error: &Error) -> String {
    match error {
        // `process` has already quoted each line and joined them with ` | `.
        Error::CommandFailed { output, .. } => {
            let lines: Vec<&str> = output.split(" | ").map(str::trim).collect();
            lines
                .iter()
                .find(|l| l.starts_with("fatal:"))
                .or_else(|| lines.iter().find(|l| l.starts_with("error:")))
                .or_else(|| lines.iter().rev().find(|l| !l.is_empty()))
                .map_or_else(|| "no output".to_owned(), |l| (*l).to_owned())
        }
        other => other.to_string(),
    }
}

fn refused_credential(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "authentication failed",
        "terminal prompts disabled",
        "could not read username",
        "could not read password",
        "the requested url returned error: 401",
        "the requested url returned error: 403",
        "permission denied",
        "access denied",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

fn credential_hint(token: Option<&Token>) -> String {
    match token {
        Some(token) => format!(
            "check that ${} holds a token with write access to it",
            token.variable
        ),
        None => "name a variable holding a token in `deploy.credential`".to_owned(),
    }
}

impl Checkout {
    /// Clones `branch` (else the default branch) of `url` into a temporary folder.
    pub fn clone(url: &str, branch: Option<&str>, token: Option<Token>) -> Result<Checkout, Error> {
        let dir = tempfile::Builder::new()
            .prefix("cargo-gitops-deploy-")
            .tempdir()
            .map_err(|source| Error::Write {
                what: "a temporary folder for the manifests".to_owned(),
                source,
            })?;
        let worktree = dir.path().join("manifests");
        let mut command =
            git(url, token.as_ref()).args(["clone", "--quiet", "--no-tags", "--single-branch"]);
        if let Some(branch) = branch {
            command = command.args(["--branch", branch]);
        }
        let target = worktree.display().to_string();
        command
            .args(["--", url, &target])
            .run()
            .map_err(|error| {
                let words = last_words(&error);
                if refused_credential(&words) {
                    Error::Deploy(format!(
                        "the manifests repository {url} refused the credential: {words}; {}",
                        credential_hint(token.as_ref())
                    ))
                } else if branch.is_some() && words.contains("not found in upstream") {
                    Error::Deploy(format!(
                        "the manifests repository {url} has no branch `{}`; create it, or fix `deploy.branch`",
                        branch.unwrap_or_default()
                    ))
                } else {
                    Error::Deploy(format!(
                        "cannot clone the manifests repository {url}: {words}; check `deploy.repository` and that the server is reachable"
                    ))
                }
            })?;
        let mut checkout = Checkout {
            _dir: dir,
            worktree,
            url: url.to_owned(),
            branch: branch.unwrap_or_default().to_owned(),
            token,
            written: std::cell::RefCell::new(None),
        };
        // One call says both that the branch has a commit and which branch it is.
        match checkout.git_here(["rev-parse", "--abbrev-ref", "HEAD"]) {
            Ok(name) if !name.is_empty() && name != "HEAD" => {
                if checkout.branch.is_empty() {
                    checkout.branch = name;
                }
            }
            _ => {
                return Err(Error::Deploy(format!(
                    "the manifests repository {url} has no commit on {}; push a first commit with the manifests",
                    if checkout.branch.is_empty() {
                        "its default branch"
                    } else {
                        &checkout.branch
                    }
                )));
            }
        }
        Ok(checkout)
    }

    /// The folder holding the clone's files.
    pub fn worktree(&self) -> &Path {
        &self.worktree
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn command(&self) -> Command {
        git(&self.url, self.token.as_ref()).current_dir(&self.worktree)
    }

    /// Runs git in the clone; its output, trimmed.
    fn git_here<const N: usize>(&self, args: [&str; N]) -> Result<String, Error> {
        let output = self.command().args(args).run()?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The commit the branch is at in the clone.
    pub fn head(&self) -> Result<String, Error> {
        self.git_here(["rev-parse", "HEAD"])
    }

    /// The source commit of the newest commit of the branch that wrote `digest` (its
    /// `Source commit:` line), when this tool wrote it.
    pub fn source_of(&self, digest: &str) -> Option<String> {
        let message = self
            .git_here([
                "log",
                "-1",
                "--format=%B",
                "--fixed-strings",
                &format!("--grep={DIGEST_TRAILER}: {digest}"),
                "HEAD",
            ])
            .ok()?;
        message
            .lines()
            .find_map(|line| line.strip_prefix("Source commit: "))
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|sha| crate::tags::is_sha40(sha))
            .map(str::to_owned)
    }

    /// Whether a commit of the branch says this tool wrote `digest`. The history is read once
    /// (the messages of the commits with the trailer only) and kept until the clone moves.
    pub fn wrote(&self, digest: &str) -> bool {
        let mut written = self.written.borrow_mut();
        if written.is_none() {
            let messages = self
                .git_here([
                    "log",
                    "--format=%B",
                    &format!("--grep=^{DIGEST_TRAILER}: "),
                    "HEAD",
                ])
                .unwrap_or_default();
            let prefix = format!("{DIGEST_TRAILER}: ");
            *written = Some(
                messages
                    .lines()
                    .filter_map(|line| line.strip_prefix(&prefix))
                    .map(|d| d.trim().to_owned())
                    .collect(),
            );
        }
        written.as_ref().is_some_and(|set| set.contains(digest))
    }

    /// Commits `paths` (already written in the worktree, and tracked) with `message`; the new
    /// commit. Without an identity configured for git, the commit is cargo-gitops's.
    pub fn commit(&self, paths: &[String], message: &str) -> Result<String, Error> {
        let commit = |identity: bool| {
            let mut command = self.command();
            if identity {
                command = command.args([
                    "-c",
                    &format!("user.name={DEFAULT_NAME}"),
                    "-c",
                    &format!("user.email={DEFAULT_EMAIL}"),
                ]);
            }
            command
                .args(["commit", "--quiet", "--no-verify", "-m", message, "--"])
                .args(paths.iter().cloned())
                .run()
        };
        match commit(false) {
            Ok(_) => {}
            Err(Error::CommandFailed { output, .. })
                if output.contains("tell me who you are")
                    || output.contains("unable to auto-detect email address")
                    || output.contains("empty ident name") =>
            {
                commit(true)?;
            }
            Err(error) => return Err(error),
        }
        self.head()
    }

    /// Pushes the branch, fast-forward only. A refused push counts as rejected when the
    /// branch has moved past the commit this one was made on (whatever git's words for it).
    pub fn push_to(&self, branch: &str) -> Result<Pushed, Error> {
        let refspec = format!("HEAD:refs/heads/{branch}");
        let error = match self
            .command()
            .args(["push", "--quiet", "origin", &refspec])
            .run()
        {
            Ok(_) => return Ok(Pushed::Landed),
            Err(error) => error,
        };
        if self.branch_moved(branch).unwrap_or(false) {
            return Ok(Pushed::Rejected);
        }
        let words = last_words(&error);
        Err(Error::Deploy(if refused_credential(&words) {
            format!(
                "the manifests repository {} refused the push: {words}; {}",
                self.url,
                credential_hint(self.token.as_ref())
            )
        } else {
            format!(
                "cannot push to the manifests repository {}: {words}; nothing was changed there",
                self.url
            )
        }))
    }

    /// Whether the remote branch is no longer where the local commit's parent is.
    fn branch_moved(&self, branch: &str) -> Result<bool, Error> {
        if !self.has_remote_branch(branch)? {
            return Ok(false);
        }
        self.git_here(["fetch", "--quiet", "--no-tags", "origin", branch])?;
        let remote = self.git_here(["rev-parse", "FETCH_HEAD"])?;
        let base = self.git_here(["rev-parse", "HEAD~1"])?;
        Ok(remote != base)
    }

    /// Fetches `branch` and moves the clone onto its tip, dropping the local commit.
    pub fn refresh(&self, branch: &str) -> Result<(), Error> {
        self.git_here(["fetch", "--quiet", "--no-tags", "origin", branch])?;
        self.git_here(["reset", "--quiet", "--hard", "FETCH_HEAD"])?;
        self.written.replace(None);
        Ok(())
    }

    /// Whether the remote has `branch`.
    pub fn has_remote_branch(&self, branch: &str) -> Result<bool, Error> {
        let found = self.git_here([
            "ls-remote",
            "--heads",
            "origin",
            &format!("refs/heads/{branch}"),
        ])?;
        Ok(!found.is_empty())
    }

    /// Deletes `branch` on the remote (a pull-request branch whose request is gone).
    pub fn delete_remote_branch(&self, branch: &str) -> Result<(), Error> {
        self.git_here([
            "push",
            "--quiet",
            "origin",
            &format!(":refs/heads/{branch}"),
        ])?;
        Ok(())
    }
}

/// The URL of `origin` of the repository at `dir`: the manifests repository when
/// `deploy.repository` is not set. A credential a CI wrote into it (GitLab's
/// `https://gitlab-ci-token:…@host/…`) is dropped: it is never shown, and the deploy's own
/// token (`deploy.credential`) is the one that pushes.
pub fn origin_of(dir: &Path) -> Result<String, Error> {
    let output = Command::new("git")
        .current_dir(dir)
        .args(["remote", "get-url", "origin"])
        .run()
        .map_err(|_| {
            Error::usage(
                "this repository has no `origin` remote to write the manifests to; set `deploy.repository`",
            )
        })?;
    Ok(without_userinfo(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// `scheme://user:secret@host/path` as `scheme://host/path`; other URLs as they are.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    match authority.rsplit_once('@') {
        Some((_, host)) if scheme.starts_with("http") => format!("{scheme}://{host}/{path}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_in_the_origin_url_is_dropped() {
        assert_eq!(
            without_userinfo("https://gitlab-ci-token:glcbt-secret@gitlab.com/acme/app.git"),
            "https://gitlab.com/acme/app.git"
        );
        assert_eq!(
            without_userinfo("https://github.com/acme/app"),
            "https://github.com/acme/app"
        );
        assert_eq!(
            without_userinfo("ssh://git@github.com/acme/app.git"),
            "ssh://git@github.com/acme/app.git"
        );
        assert_eq!(
            without_userinfo("git@github.com:acme/app.git"),
            "git@github.com:acme/app.git"
        );
    }

    #[test]
    fn tokens_go_to_the_origin_only_and_are_never_shown() {
        let token = Token {
            variable: "FLEET_TOKEN".to_owned(),
            value: "s3cret-value".to_owned(),
        };
        let command = git("https://git.example.com/acme/fleet.git", Some(&token)).args([
            "clone",
            "--",
            "https://git.example.com/acme/fleet.git",
        ]);
        let shown = command.display();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains(
            &base64::engine::general_purpose::STANDARD.encode("x-access-token:s3cret-value")
        ));
        assert!(!format!("{token:?}").contains("s3cret"));
        assert_eq!(
            http_origin("https://git.example.com:8443/a/b.git").as_deref(),
            Some("https://git.example.com:8443/")
        );
        assert_eq!(http_origin("git@github.com:a/b.git"), None);
        assert_eq!(http_origin("ssh://git@github.com/a/b.git"), None);
    }
}
