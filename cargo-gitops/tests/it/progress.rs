//! Progress where output is piped (CI logs): a long step says it is still running at the
//! interval `GITOPS_PROGRESS_INTERVAL` sets, and the compile's own output reaches stderr while
//! it runs, in plain mode and in GitHub Actions' groups. The child is a real `cargo build`
//! started through the tool's process spawner; the test reads the tool's piped stderr.

use crate::support::{Dir, TestCommand};

/// A crate whose build script takes about three seconds, so the compile step is long against
/// an interval of half a second.
fn slow_crate() -> Dir {
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        "[package]\nname = \"slow\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n\n[package.metadata.gitops]\n",
    );
    dir.create(
        "build.rs",
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(3)); }\n",
    );
    dir.create("src/main.rs", "fn main() {}\n");
    dir.create(".gitignore", "/target\n");
    dir.commit("slow");
    dir
}

/// Runs a native build of the slow crate with stderr piped; returns stderr's lines.
fn build(dir: &Dir, github_actions: bool) -> Vec<String> {
    let sha = dir.head();
    let mut command = TestCommand::new(dir.path());
    command
        .args([
            "build",
            "--build-with",
            "native",
            "--ref",
            "refs/heads/main",
        ])
        .arg(format!("--sha={sha}"))
        .arg(format!("--output=oci:{}", dir.join("layout").display()))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        // A cargo home of its own: no dependency to fetch, and no other cargo's lock to wait on.
        .env("CARGO_HOME", dir.join("cargo-home"))
        .env("GITOPS_PROGRESS_INTERVAL", "0.5");
    if github_actions {
        command
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_SHA", &sha)
            .env("GITHUB_OUTPUT", dir.join("github-output"))
            .env("GITHUB_STEP_SUMMARY", dir.join("github-summary"));
    }
    let (_, stderr) = command.succeeds();
    stderr.lines().map(str::to_owned).collect()
}

/// Where the first line satisfying `test` is, failing with all of stderr otherwise.
fn position(lines: &[String], what: &str, test: impl Fn(&str) -> bool) -> usize {
    lines
        .iter()
        .position(|l| test(l))
        .unwrap_or_else(|| panic!("no line {what} in:\n{}", lines.join("\n")))
}

/// The lines of the compile step: still-running lines at the interval, cargo's own lines
/// while it runs (before the last tick, so they were not held back until the end).
fn check_compile_step(lines: &[String], title: &str) {
    let ticks: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.starts_with(&format!("{title}: still running, ")) && l.ends_with("s elapsed")
        })
        .map(|(i, _)| i)
        .collect();
    // Three seconds of build script at 0.5 s: a slow machine may miss a few ticks, not all.
    assert!(
        ticks.len() >= 2,
        "expected at least two still-running lines:\n{}",
        lines.join("\n")
    );
    let compiling = position(lines, "from cargo", |l| {
        l.trim_start().starts_with("Compiling slow v0.1.0")
    });
    let finished = position(lines, "from cargo's end", |l| {
        l.trim_start().starts_with("Finished `release` profile")
    });
    let done = position(lines, "ending the step", |l| {
        l.starts_with(&format!("{title}: done in "))
    });
    assert!(
        compiling < *ticks.last().unwrap(),
        "cargo's output came only at the end:\n{}",
        lines.join("\n")
    );
    assert!(
        ticks.iter().all(|t| *t < done),
        "a tick after the step ended:\n{}",
        lines.join("\n")
    );
    assert!(finished < done, "{}", lines.join("\n"));
}

/// The compile step's title, with the target the tool picks on this machine.
fn compile_title() -> String {
    use cargo_gitops::build::native;
    let installed = native::installed_targets().expect("read the toolchain's targets");
    let target = native::target_for(native::host_platform(), &installed).expect("a host target");
    format!("compile slow for {}", target.triple)
}

#[test]
fn a_long_step_reports_while_it_runs_and_shows_the_compile() {
    let dir = slow_crate();
    let lines = build(&dir, false);
    let title = compile_title();
    let start = position(&lines, "starting the step", |l| {
        *l == format!("{title} ...")
    });
    check_compile_step(&lines[start..], &title);
    // The ticker ended with its step: no line of it after the compile (later steps have
    // tickers of their own).
    let done = position(&lines, "ending the step", |l| {
        l.starts_with(&format!("{title}: done in "))
    });
    assert!(
        !lines[done..]
            .iter()
            .any(|l| l.starts_with(&format!("{title}: still running"))),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn in_github_actions_the_compile_reports_inside_its_group() {
    let dir = slow_crate();
    let lines = build(&dir, true);
    let title = compile_title();
    let start = position(&lines, "opening the group", |l| {
        *l == format!("::group::{title}")
    });
    let end = start
        + position(&lines[start..], "closing the group", |l| {
            l == "::endgroup::"
        });
    check_compile_step(&lines[start..=end], &title);
    // cargo's lines were quoted on the way: none of them can be a workflow command.
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("::"))
            .all(|l| l.starts_with("::group::") || l == "::endgroup::"),
        "{}",
        lines.join("\n")
    );
}
