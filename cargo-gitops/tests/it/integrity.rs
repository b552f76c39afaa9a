//! Issue 29, integrity under a misbehaving registry and in the files and reports the tool
//! writes: created files honour the umask and rewritten ones keep their mode.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::support::TestCommand;
use crate::workflows::repository;

/// `command` run by `sh` under `umask`, so that the mode of what it creates can be told.
fn under_umask(command: &TestCommand, umask: &str) -> std::process::Command {
    let outer = command.std();
    let program = outer.get_program().to_owned();
    let args: Vec<_> = outer.get_args().map(ToOwned::to_owned).collect();
    let mut wrapped = std::process::Command::new("sh");
    wrapped
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(program)
        .args(args);
    if let Some(dir) = outer.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (key, value) in outer.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

fn run_under_umask(command: &TestCommand, umask: &str) {
    let output = under_umask(command, umask).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn generated_files_honour_the_umask_and_a_rewrite_keeps_the_mode() {
    let dir = repository(&format!(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"shop\"\n\n\
         [workspace.metadata.gitops.gitlab]\ninstall-sha256 = \"{}\"\n{}",
        "0".repeat(64),
        crate::workflows::INSTALL_PINS
    ));
    let workflow = dir.join(".github/workflows/gitops-pipeline.yml");
    let gitlab = dir.join(".gitlab-ci.yml");
    let flux = dir.join("deploy/flux.yaml");
    let generate = |umask: &str| {
        let mut github = dir.command();
        github.args(["init-workflows", "-q"]);
        run_under_umask(&github, umask);
        let mut gitlab = dir.command();
        gitlab.args(["init-workflows", "-q", "--ci", "gitlab"]);
        run_under_umask(&gitlab, umask);
        let mut output = dir.command();
        output.args(["flux", "-q", "--output"]).arg(&flux);
        run_under_umask(&output, umask);
    };

    generate("022");
    let created = [&workflow, &gitlab, &flux];
    for path in created {
        assert_eq!(mode(path), 0o644, "{}", path.display());
    }

    // Another umask for new files; the existing ones keep the modes they were given.
    std::fs::set_permissions(&workflow, std::fs::Permissions::from_mode(0o664)).unwrap();
    std::fs::set_permissions(&gitlab, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&workflow, "stale\n").unwrap();
    std::fs::write(&flux, "stale\n").unwrap();
    std::fs::remove_file(dir.join(".gitlab/gitops.gitlab-ci.yml")).unwrap();
    generate("027");
    assert_ne!(std::fs::read_to_string(&workflow).unwrap(), "stale\n");
    assert_ne!(std::fs::read_to_string(&flux).unwrap(), "stale\n");
    assert_eq!(mode(&workflow), 0o664);
    assert_eq!(mode(&gitlab), 0o600);
    assert_eq!(mode(&flux), 0o644);
    assert_eq!(mode(&dir.join(".gitlab/gitops.gitlab-ci.yml")), 0o640);
}

/// `env --format gitlab` with GitLab's variables for `branch`, in `dir`.
fn gitlab_env(dir: &crate::support::Dir, branch: &str) -> TestCommand {
    let mut command = dir.command();
    command
        .env("GITLAB_CI", "true")
        .env("CI_COMMIT_BRANCH", branch)
        .env("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567")
        .args(["env", "--format", "gitlab", "--timestamp", "1654880868"]);
    command
}

#[test]
fn a_dotenv_report_sourced_by_bash_runs_nothing() {
    let dir = crate::support::Dir::new();
    // A report of plain values: sourced with every command made unfindable, nothing runs and
    // each variable holds exactly what was reported.
    let report = gitlab_env(&dir, "test/uat2").stdout();
    std::fs::write(dir.join("gitops.env"), &report).unwrap();
    let sourced = std::process::Command::new("bash")
        .args([
            "-euc",
            "PATH=/nonexistent; . ./gitops.env; printf '%s\\n' \"$GITOPS_REF\" \"$GITOPS_TAGS\"",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        sourced.status.success(),
        "{}",
        String::from_utf8_lossy(&sourced.stderr)
    );
    assert_eq!(
        String::from_utf8(sourced.stdout).unwrap(),
        "refs/heads/test/uat2\ntst-uat2-0123456-1654880868,tst-uat2-latest\n"
    );

    // A branch whose name is shell: refused with one line, and no report is written.
    let planted = dir.join("ran");
    let mut command = gitlab_env(&dir, "main$(touch${IFS}ran)");
    command.arg("--dotenv").arg(dir.join("evil.env"));
    let error = command.one_line_error(2);
    assert!(
        error.starts_with("error: GITOPS_REF=`refs/heads/main$(touch${IFS}ran)` is not plain"),
        "{error}"
    );
    assert!(error.ends_with("use --format json"), "{error}");
    assert!(!dir.join("evil.env").exists());
    assert!(!planted.exists());
}
