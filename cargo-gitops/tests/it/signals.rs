//! An interrupted run ends the programs it started: SIGTERM to `cargo gitops build` during a
//! native build's compile leaves nothing of that compile running (cargo, its build script).

use std::time::{Duration, Instant};

use crate::support::{Dir, TestCommand};

/// Processes whose command line mentions `text`, from procfs.
fn processes_mentioning(text: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(text))
                && alive(*pid)
        })
        .collect()
}

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
    // A cargo home of its own: the crate has no dependencies, and another cargo on the machine
    // holding the shared package cache's lock must not keep this compile from starting.
    command.env("CARGO_HOME", dir.join("cargo-home"));
    let mut tool = command.spawn().expect("start cargo-gitops");

    // Wait (bounded) until the compile's build script runs: `cargo rustc` and its child.
    let script = dir.join("target").display().to_string();
    let started = Instant::now();
    let child = loop {
        let compiling = children(tool.id()).into_iter().find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains("rustc\0--release"))
        });
        // The build script runs (and sleeps) as a child of cargo, from the target folder.
        if let Some(child) = compiling
            && !processes_mentioning(&format!("{script}/"))
                .into_iter()
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| {
                        String::from_utf8_lossy(&line).contains("build-script-build")
                    })
                })
                .collect::<Vec<_>>()
                .is_empty()
        {
            break child;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the compile never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &tool.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = tool.wait().expect("wait for cargo-gitops");
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    let ended = Instant::now();
    while (alive(child) || !processes_mentioning(&format!("{script}/")).is_empty())
        && ended.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(child), "cargo {child} outlived cargo-gitops");
    assert_eq!(
        processes_mentioning(&format!("{script}/")),
        Vec::<u32>::new(),
        "the build script outlived cargo-gitops"
    );
}
