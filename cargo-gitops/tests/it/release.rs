//! `cargo gitops release` and `cargo gitops promote`, the git side of promotion, run as the real
//! binary in real repositories made with the `git` command line (with a bare repository as
//! `origin` where pushing matters), and checked with `git` itself.

use std::ops::Deref;

use crate::support::{Dir, TestCommand, git_in};

/// A repository with one commit on `main`, its identity in its own configuration (where
/// libgit2 reads it), and an empty home so the machine's settings stay out.
struct Repo {
    dir: Dir,
    home: Dir,
}

impl Deref for Repo {
    type Target = Dir;

    fn deref(&self) -> &Dir {
        &self.dir
    }
}

impl Repo {
    fn new() -> Repo {
        Repo::with_identity(true)
    }

    fn with_identity(identity: bool) -> Repo {
        let repo = Repo {
            dir: Dir::git_repo(),
            home: Dir::new(),
        };
        if identity {
            repo.git(["config", "user.name", "Release Tester"]);
            repo.git(["config", "user.email", "release@example.com"]);
        }
        repo.create("README", "hello\n");
        repo.commit("first");
        repo
    }

    /// Commits a change and returns the new HEAD.
    fn commit(&self, message: &str) -> String {
        self.create(format!("{}.txt", message.replace(' ', "-")), message);
        self.dir.commit(message)
    }

    /// A bare repository as `origin`, with `main` pushed; it lives as long as the returned dir.
    fn with_origin(&self) -> Dir {
        let remote = Dir::new();
        remote.git(["init", "-q", "--bare"]);
        self.git(["remote", "add", "origin", remote.path().to_str().unwrap()]);
        self.git(["push", "-q", "origin", "main"]);
        remote
    }

    /// The tool with `args`, run in the repository with the empty home.
    fn tool(&self, args: &[&str]) -> TestCommand {
        let mut command = self.command();
        command
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .args(args);
        command
    }

    /// Runs the tool; asserts exit 0; returns stdout and stderr.
    fn ok(&self, args: &[&str]) -> (String, String) {
        self.tool(args).succeeds()
    }

    /// Runs the tool; asserts exit 2, no stdout, one stderr line without a panic; returns it.
    fn refused(&self, args: &[&str]) -> String {
        self.tool(args).usage_error()
    }

    fn tags(&self) -> Vec<String> {
        let text = self.git(["tag", "--list"]);
        text.lines().map(str::to_owned).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// release
// ---------------------------------------------------------------------------------------------

#[test]
fn first_release_is_an_annotated_v_tag_on_head() {
    let repo = Repo::new();
    let (stdout, stderr) = repo.ok(&["release", "minor"]);
    assert_eq!(stdout, "v0.1.0\n");
    assert!(stderr.contains("created tag v0.1.0"), "{stderr}");
    assert!(stderr.contains("next: git push origin v0.1.0"), "{stderr}");
    assert_eq!(repo.git(["cat-file", "-t", "v0.1.0"]), "tag", "annotated");
    assert_eq!(repo.rev("v0.1.0").unwrap(), repo.head());
    assert_eq!(
        repo.git([
            "for-each-ref",
            "--format=%(taggername) %(taggeremail) %(contents:subject)",
            "refs/tags/v0.1.0"
        ]),
        "Release Tester <release@example.com> Release v0.1.0"
    );
}

#[test]
fn next_versions_follow_the_existing_tags() {
    let repo = Repo::new();
    repo.git(["tag", "v1.2.3"]);
    repo.git(["tag", "-a", "-m", "alpha", "v1.3.0-alpha.1"]);
    repo.commit("two");
    assert_eq!(repo.ok(&["release", "patch"]).0, "v1.2.4\n");
    repo.commit("three");
    // The channel's next number for the next minor.
    assert_eq!(
        repo.ok(&["release", "minor", "--channel", "alpha"]).0,
        "v1.3.0-alpha.2\n"
    );
    assert_eq!(repo.ok(&["release", "minor"]).0, "v1.3.0\n");
    repo.commit("four");
    assert_eq!(
        repo.ok(&["release", "major", "--channel", "beta"]).0,
        "v2.0.0-beta.1\n"
    );
    assert_eq!(
        repo.ok(&["release", "2.0.0", "--channel", "beta", "-m", "second beta"])
            .0,
        "v2.0.0-beta.2\n"
    );
    assert_eq!(
        repo.git([
            "for-each-ref",
            "--format=%(contents:subject)",
            "refs/tags/v2.0.0-beta.2"
        ]),
        "second beta"
    );
    let json = repo.tool(&["release", "major", "--format", "json"]).json();
    assert_eq!(json["tag"], "v2.0.0");
    assert_eq!(json["version"], "2.0.0");
    assert_eq!(json["previous"], "v1.3.0");
    assert_eq!(json["environment"], "production");
    assert_eq!(json["commit"], repo.head());
    assert_eq!(json["pushed"], false);
}

#[test]
fn a_channel_continues_the_label_form_the_repository_uses() {
    let repo = Repo::new();
    repo.git(["tag", "v1.0.0"]);
    repo.commit("two");
    // The README's example tag: `alpha1`, without a dot.
    repo.git(["tag", "-a", "-m", "alpha", "v1.1.0-alpha1"]);
    repo.commit("three");
    assert_eq!(
        repo.ok(&["release", "--channel", "alpha", "minor"]).0,
        "v1.1.0-alpha2\n"
    );
    repo.commit("four");
    // A channel with no tag yet starts in the dotted form.
    assert_eq!(
        repo.ok(&["release", "--channel", "beta", "minor"]).0,
        "v1.1.0-beta.1\n"
    );
}

#[test]
fn the_first_release_is_the_package_version() {
    let repo = Repo::new();
    repo.create(
        "Cargo.toml",
        "[package]\nname = \"svc\"\nversion = \"0.3.0\"\nedition = \"2021\"\n\n[package.metadata.gitops]\n",
    );
    repo.create("src/main.rs", "fn main() {}\n");
    repo.commit("svc");
    assert_eq!(repo.ok(&["release", "patch"]).0, "v0.3.0\n");
    repo.commit("more");
    // From then on, the tags decide.
    assert_eq!(repo.ok(&["release", "patch"]).0, "v0.3.1\n");
}

#[test]
fn a_repository_without_v_keeps_it_that_way() {
    let repo = Repo::new();
    repo.git(["tag", "1.0.0"]);
    repo.commit("two");
    assert_eq!(repo.ok(&["release", "patch"]).0, "1.0.1\n");
    assert_eq!(repo.ok(&["release", "v1.1.0"]).0, "1.1.0\n");
}

#[test]
fn release_refuses_with_the_reason() {
    let repo = Repo::new();
    repo.git(["tag", "v1.2.3"]);

    // An untracked file is not part of any commit; a changed tracked one is.
    repo.create("notes.tmp", "scratch");
    repo.create("README", "changed\n");
    let error = repo.refused(&["release", "patch"]);
    assert!(error.contains("uncommitted changes (README)"), "{error}");
    repo.git(["checkout", "--", "README"]);

    let error = repo.refused(&["release", "1.2.3"]);
    assert!(error.contains("tag v1.2.3 already exists"), "{error}");
    let error = repo.refused(&["release", "1.0.0"]);
    assert!(
        error.contains("v1.0.0 is not above the current release v1.2.3"),
        "{error}"
    );
    let error = repo.refused(&["release", "1.2.3", "--channel", "alpha"]);
    assert!(error.contains("is not above"), "{error}");
    let error = repo.refused(&["release", "1.3.0-rc.1", "--channel", "alpha"]);
    assert!(error.contains("--channel"), "{error}");
    let error = repo.refused(&["release", "minor", "--channel", "gamma"]);
    assert!(
        error.contains("no environment tracks tag v1.3.0-gamma.1"),
        "{error}"
    );

    repo.git(["switch", "-q", "-c", "feature/x"]);
    let error = repo.refused(&["release", "patch"]);
    assert!(
        error
            .contains("HEAD is on `feature/x`, not on `main`, the branch of environment `staging`"),
        "{error}"
    );
    repo.git(["switch", "-q", "--detach", "main"]);
    let error = repo.refused(&["release", "patch"]);
    assert!(error.contains("HEAD is detached"), "{error}");
    assert_eq!(repo.tags(), ["v1.2.3"], "nothing was created");
    assert_eq!(repo.ok(&["release", "patch", "--force"]).0, "v1.2.4\n");

    // clap's own usage error for a bad argument: exit 2, no panic.
    let output = repo.tool(&["release", "sideways"]).expect_exit(2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("sideways"));
}

#[test]
fn release_follows_the_configured_staging_branch() {
    let repo = Repo::new();
    repo.create(
        "Cargo.toml",
        "[workspace]\n\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"staging\"\nbranches = [\"trunk\"]\n",
    );
    repo.commit("config");
    let error = repo.refused(&["release", "patch"]);
    assert!(
        error.contains("not on `trunk`, the branch of environment `staging`"),
        "{error}"
    );
    repo.git(["switch", "-q", "-c", "trunk"]);
    assert_eq!(repo.ok(&["release", "patch"]).0, "v0.0.1\n");
}

#[test]
fn release_needs_an_identity_to_sign_the_tag() {
    let repo = Repo::with_identity(false);
    let error = repo.refused(&["release", "patch"]);
    assert!(error.contains("git has no identity"), "{error}");
    assert!(error.contains("git config user.name"), "{error}");
    assert!(repo.tags().is_empty());
}

#[test]
fn release_dry_run_and_push() {
    let repo = Repo::new();
    let head = repo.head();
    // Without a remote, --push is refused before anything is made, dry run or not.
    let error = repo.refused(&["release", "patch", "--push"]);
    assert!(error.contains("no remote `origin`"), "{error}");
    repo.refused(&["release", "patch", "--push", "--dry-run"]);
    assert!(repo.tags().is_empty());

    let remote = repo.with_origin();
    let (stdout, _) = repo.ok(&["release", "patch", "--dry-run", "--push"]);
    assert_eq!(
        stdout,
        format!(
            "# release v0.0.1 (first release) on {}, for environment production\ngit tag -a v0.0.1 -m 'Release v0.0.1' {head}\ngit push origin v0.0.1\n",
            &head[..7]
        )
    );
    assert!(repo.tags().is_empty(), "a dry run creates nothing");

    let (stdout, stderr) = repo.ok(&["release", "patch", "--push"]);
    assert_eq!(stdout, "v0.0.1\n");
    assert!(stderr.contains("pushed v0.0.1 to origin"), "{stderr}");
    let remote_tags = git_in(remote.path(), ["tag", "--list"]);
    assert_eq!(remote_tags, "v0.0.1");
    assert_eq!(
        git_in(remote.path(), ["rev-parse", "v0.0.1^{commit}"]),
        head
    );
}

// ---------------------------------------------------------------------------------------------
// promote
// ---------------------------------------------------------------------------------------------

#[test]
fn promote_fast_forwards_a_testing_branch() {
    let repo = Repo::new();
    let (_, stderr) = repo.ok(&["promote", "testing", "--branch", "test/uat1"]);
    assert!(stderr.contains("create test/uat1 at"), "{stderr}");
    assert!(
        stderr.contains("next: git push origin HEAD:refs/heads/test/uat1"),
        "{stderr}"
    );
    assert_eq!(repo.rev("test/uat1").unwrap(), repo.head());

    repo.commit("two");
    let head = repo.commit("three");
    let (_, stderr) = repo.ok(&["promote", "testing", "--branch", "test/uat1"]);
    assert!(stderr.contains("fast-forward, 2 commits"), "{stderr}");
    assert_eq!(repo.rev("test/uat1").unwrap(), head);
    assert_eq!(
        repo.git(["symbolic-ref", "--short", "HEAD"]),
        "main",
        "HEAD stays where it was"
    );

    let (_, stderr) = repo.ok(&["promote", "testing", "--branch", "test/uat1"]);
    assert!(stderr.contains("test/uat1 is already at"), "{stderr}");
}

#[test]
fn promote_counts_the_commits_from_where_the_branch_moves() {
    let repo = Repo::new();
    let _origin = repo.with_origin();
    repo.ok(&["promote", "testing", "--branch", "test/uat1", "--push"]);
    repo.commit("two");
    // Moved locally only: origin stays one commit behind.
    repo.ok(&["promote", "testing", "--branch", "test/uat1"]);
    let from = repo.head();
    repo.commit("three");
    let (_, stderr) = repo.ok(&["promote", "testing", "--branch", "test/uat1"]);
    assert!(
        stderr.contains(&format!("from {} to", &from[..7])),
        "{stderr}"
    );
    assert!(stderr.contains("fast-forward, 1 commit)"), "{stderr}");
}

#[test]
fn promote_refuses_what_is_not_a_fast_forward() {
    let repo = Repo::new();
    repo.git(["branch", "test/uat1"]);
    repo.git(["switch", "-q", "test/uat1"]);
    let theirs = repo.commit("only on uat1");
    repo.git(["switch", "-q", "main"]);
    repo.commit("only on main");
    let error = repo.refused(&["promote", "testing", "--branch", "test/uat1"]);
    assert!(
        error.contains("`test/uat1` cannot fast-forward to HEAD"),
        "{error}"
    );
    assert!(error.contains("1 commit HEAD does not have"), "{error}");
    assert!(error.contains("--pr"), "{error}");
    assert_eq!(repo.rev("test/uat1").unwrap(), theirs, "unchanged");
}

#[test]
fn promote_pushes_and_checks_origin_too() {
    let repo = Repo::new();
    let remote = repo.with_origin();
    let head = repo.commit("two");
    let (_, stderr) = repo.ok(&["promote", "testing", "--branch", "test/uat1", "--push"]);
    assert!(stderr.contains("pushed test/uat1 to origin"), "{stderr}");
    assert_eq!(
        git_in(remote.path(), ["rev-parse", "refs/heads/test/uat1"]),
        head
    );

    // Someone else moves test/uat1 at origin; once fetched, a promotion would drop their commit.
    let other = Dir::new();
    git_in(
        other.path(),
        ["clone", "-q", remote.path().to_str().unwrap(), "."],
    );
    git_in(other.path(), ["switch", "-q", "test/uat1"]);
    std::fs::write(other.path().join("theirs.txt"), "theirs").unwrap();
    git_in(other.path(), ["add", "-A"]);
    git_in(other.path(), ["commit", "-q", "-m", "theirs"]);
    git_in(other.path(), ["push", "-q", "origin", "test/uat1"]);
    repo.git(["fetch", "-q", "origin"]);
    repo.commit("three");
    let error = repo.refused(&["promote", "testing", "--branch", "test/uat1", "--push"]);
    assert!(error.contains("at origin it is at"), "{error}");
}

#[test]
fn promote_to_a_single_branch_environment_needs_no_branch() {
    let repo = Repo::new();
    repo.git(["switch", "-q", "-c", "feature/login"]);
    let head = repo.commit("login");
    let (stdout, _) = repo.ok(&["promote", "staging", "--dry-run", "--push"]);
    assert_eq!(
        stdout,
        format!(
            "# promote to staging: move main from {} to {} (fast-forward, 1 commit)\ngit branch --force main {head}\ngit push origin HEAD:refs/heads/main\n",
            &repo.rev("main").unwrap()[..7],
            &head[..7]
        )
    );
    assert_ne!(repo.rev("main").unwrap(), head, "a dry run moves nothing");
    repo.ok(&["promote", "staging"]);
    assert_eq!(repo.rev("main").unwrap(), head);
}

#[test]
fn promote_prints_the_pull_request() {
    let repo = Repo::new();
    repo.git(["branch", "test/uat1"]);
    repo.git(["switch", "-q", "-c", "feature/login"]);
    let head = repo.commit("login");
    let before = repo.rev("test/uat1");
    let (stdout, _) = repo.ok(&["promote", "testing", "--branch", "test/uat1", "--pr"]);
    assert_eq!(
        stdout,
        format!(
            "gh pr create --base test/uat1 --head feature/login --title 'Promote feature/login ({sha}) to testing' --body 'Promotes `feature/login` at {sha} to environment `testing` (branch `test/uat1`). Merging deploys it.'\n",
            sha = &head[..7]
        )
    );
    assert_eq!(
        repo.rev("test/uat1"),
        before,
        "a pull request moves nothing"
    );
    // clap refuses the pair, with its usage text: exit 2 still.
    repo.tool(&[
        "promote",
        "testing",
        "--branch",
        "test/uat1",
        "--pr",
        "--push",
    ])
    .expect_exit(2);
    repo.git(["switch", "-q", "--detach"]);
    let error = repo.refused(&["promote", "testing", "--branch", "test/uat1", "--pr"]);
    assert!(error.contains("HEAD is detached"), "{error}");
}

#[test]
fn promote_says_which_environments_it_cannot_move() {
    let repo = Repo::new();
    let error = repo.refused(&["promote", "production"]);
    assert!(
        error.contains("environment `production` follows tags")
            && error.contains("cargo gitops release"),
        "{error}"
    );
    let error = repo.refused(&["promote", "qa"]);
    assert!(error.contains("no environment named `qa`"), "{error}");
    assert!(error.contains("production, alpha, beta, testing, staging, development"));
    let error = repo.refused(&["promote", "testing"]);
    assert!(
        error.contains("follows `test/*`: name its branch with --branch"),
        "{error}"
    );
    let error = repo.refused(&["promote", "testing", "--branch", "uat1"]);
    assert!(
        error.contains("is not one of environment `testing`'s"),
        "{error}"
    );
    let error = repo.refused(&["promote", "development", "--branch", "main"]);
    assert!(
        error.contains("belongs to environment `staging`"),
        "{error}"
    );
}
