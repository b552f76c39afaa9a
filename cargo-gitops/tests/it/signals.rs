//! An interrupted run ends the programs it started: SIGTERM to `cargo gitops build` during a
//! native build's compile leaves no `cargo` of its running.

use std::time::{Duration, Instant};

use crate::support::{Dir, TestCommand};

/// The ids of `pid`'s direct children, from procfs.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|id| id.parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its entry is left for its parent to collect.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"))
}

#[test]
fn sigterm_ends_the_programs_the_tool_started() {
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        "[package]\nname = \"slow\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n\n[package.metadata.gitops]\n",
    );
    // A build script that takes long: the compile is still running when the signal comes.
    dir.create(
        "build.rs",
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(60)); }\n",
    );
    dir.create("src/main.rs", "fn main() {}\n");
    dir.create(".gitignore", "/target\n");
    dir.commit("slow");
    let out = dir.join("layout");
    let mut command = TestCommand::new(dir.path())
        .args(["build", "--build-with", "native", "-q"])
        .arg(format!("--output=oci:{}", out.display()))
        .std();
    command.env("CARGO_TARGET_DIR", dir.join("target"));
    let mut tool = command.spawn().expect("start cargo-gitops");

    // Wait (bounded) until the tool has started its `cargo`.
    let started = Instant::now();
    let child = loop {
        if let Some(child) = children(tool.id()).first().copied() {
            break child;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cargo never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(child), "cargo ended before the signal");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &tool.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = tool.wait().expect("wait for cargo-gitops");
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    let ended = Instant::now();
    while alive(child) && ended.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(child), "cargo {child} outlived cargo-gitops");
}
