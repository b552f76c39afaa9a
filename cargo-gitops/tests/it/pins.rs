//! `cargo gitops pins update` against local stand-ins for the network: a release layout
//! served on 127.0.0.1 and bare git repositories with annotated and lightweight tags, read
//! through `--release-base` and `--actions-base file://…`.

use std::path::Path;

use crate::support::{Dir, git_in};
use crate::workflow_install::serve;

const SUMS_VERSION: &str = "0.2.0";

/// A bare repository at `base/OWNER/REPO` with `tags`: (name, annotated, commit index);
/// returns the commits, oldest first.
fn action_repository(
    base: &Path,
    action: &str,
    commits: usize,
    tags: &[(&str, bool, usize)],
) -> Vec<String> {
    let work = Dir::git_repo();
    let mut shas = Vec::new();
    for i in 0..commits {
        work.create("action.yml", format!("name: {action} {i}\n"));
        shas.push(work.commit(&format!("release {i}")));
    }
    for (name, annotated, index) in tags {
        let sha = &shas[*index];
        if *annotated {
            work.git(["tag", "-a", name, "-m", name, sha]);
        } else {
            work.git(["tag", name, sha]);
        }
    }
    let target = base.join(action);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    git_in(
        base,
        [
            "clone",
            "--quiet",
            "--bare",
            work.path().to_str().unwrap(),
            target.to_str().unwrap(),
        ],
    );
    shas
}

struct Network {
    _releases: tempfile::TempDir,
    actions: tempfile::TempDir,
    release_base: String,
    checkout: Vec<String>,
    buildx: Vec<String>,
    login: Vec<String>,
    sums: Vec<(String, String)>,
}

fn network() -> Network {
    let releases = tempfile::tempdir().unwrap();
    let dir = releases
        .path()
        .join(format!("cargo-gitops-v{SUMS_VERSION}"));
    std::fs::create_dir_all(&dir).unwrap();
    let targets = [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ];
    let sums: Vec<(String, String)> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), format!("{i}").repeat(64)))
        .collect();
    let text: String = sums
        .iter()
        .map(|(t, s)| format!("{s}  cargo-gitops-{t}-v{SUMS_VERSION}.tar.gz\n"))
        .collect();
    std::fs::write(
        dir.join(format!("cargo-gitops-v{SUMS_VERSION}.sha256sums")),
        text,
    )
    .unwrap();
    let release_base = serve(releases.path());

    let actions = tempfile::tempdir().unwrap();
    let checkout = action_repository(
        actions.path(),
        "actions/checkout",
        4,
        &[
            ("v7.0.1", false, 0),
            ("v7.1.0", true, 1),
            ("v7", false, 1),
            ("v7.2.0-rc.1", true, 2),
            ("v8.0.0", true, 3),
        ],
    );
    let buildx = action_repository(
        actions.path(),
        "docker/setup-buildx-action",
        1,
        &[("v4.3.0", false, 0)],
    );
    let login = action_repository(
        actions.path(),
        "docker/login-action",
        2,
        &[
            ("v4.1.0", true, 0),
            ("v4.2.0", false, 1),
            ("v3.9.0", false, 1),
        ],
    );
    Network {
        _releases: releases,
        actions,
        release_base,
        checkout,
        buildx,
        login,
        sums,
    }
}

const CONFIG: &str = "[workspace]\nmembers = []\n\n# Where images go.\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\" # the org\nimage = \"shop\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\n";

fn update_args(network: &Network, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "pins".into(),
        "update".into(),
        "--release".into(),
        SUMS_VERSION.into(),
        "--release-base".into(),
        network.release_base.clone(),
        "--actions-base".into(),
        format!("file://{}", network.actions.path().display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn pins_update_writes_the_newest_pins_of_each_major_and_the_release_checksums() {
    let network = network();
    let dir = Dir::git_repo();
    dir.create("Cargo.toml", CONFIG);
    dir.commit("first");
    let output = dir
        .command()
        .args(update_args(&network, &[]))
        .expect_exit(0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("actions/checkout: v7.0.1 -> v7.1.0"),
        "{stderr}"
    );

    let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        text.starts_with(CONFIG.trim_end()),
        "the rest is kept as it was:\n{text}"
    );
    let table: toml::Table = text.parse().unwrap();
    let gitops = &table["workspace"]["metadata"]["gitops"];
    let pin = |action: &str| {
        let pin = &gitops["actions"][action];
        (
            pin["sha"].as_str().unwrap().to_owned(),
            pin["version"].as_str().unwrap().to_owned(),
        )
    };
    // The annotated v7.1.0 is pinned to its commit, not to the tag object.
    assert_eq!(
        pin("actions/checkout"),
        (network.checkout[1].clone(), "v7.1.0".into())
    );
    assert_eq!(
        pin("docker/setup-buildx-action"),
        (network.buildx[0].clone(), "v4.3.0".into())
    );
    assert_eq!(
        pin("docker/login-action"),
        (network.login[1].clone(), "v4.2.0".into())
    );
    assert_eq!(gitops["actions"].as_table().unwrap().len(), 3, "{text}");
    assert_eq!(gitops["install"]["version"].as_str(), Some(SUMS_VERSION));
    for (target, sha) in &network.sums {
        assert_eq!(
            gitops["install"]["sha256"][target].as_str(),
            Some(sha.as_str())
        );
    }

    // The workflows now carry them.
    dir.command().args(["init-workflows", "-q"]).expect_exit(0);
    let pipeline =
        std::fs::read_to_string(dir.join(".github/workflows/gitops-pipeline.yml")).unwrap();
    assert!(
        pipeline.contains(&format!(
            "uses: actions/checkout@{} # v7.1.0",
            network.checkout[1]
        )),
        "{pipeline}"
    );
    assert!(pipeline.contains(&format!("GITOPS_VERSION: \"{SUMS_VERSION}\"")));
    assert!(pipeline.contains(&format!(
        "GITOPS_SHA256_AARCH64_APPLE_DARWIN: \"{}\"",
        network.sums[3].1
    )));
    // The GitLab jobs install from the same pins: one per Linux platform, same release.
    dir.command()
        .args(["init-workflows", "-q", "--ci", "gitlab"])
        .expect_exit(0);
    let gitlab = std::fs::read_to_string(dir.join(".gitlab/gitops.gitlab-ci.yml")).unwrap();
    assert!(
        gitlab.contains(&format!("GITOPS_VERSION: \"{SUMS_VERSION}\"")),
        "{gitlab}"
    );
    for (target, sha) in &network.sums {
        let line = format!(
            "{}: \"{sha}\"",
            cargo_gitops::ci::install::checksum_variable(target)
        );
        assert_eq!(
            gitlab.contains(&line),
            target.contains("linux"),
            "{target}: {gitlab}"
        );
    }
    std::fs::remove_dir_all(dir.join(".gitlab")).unwrap();
    std::fs::remove_file(dir.join(".gitlab-ci.yml")).unwrap();

    // A second run finds nothing new and changes nothing.
    let output = dir
        .command()
        .args(update_args(&network, &[]))
        .expect_exit(0);
    assert!(String::from_utf8_lossy(&output.stderr).contains("pins are up to date"));
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.toml")).unwrap(),
        text
    );

    // --major moves to the next major release.
    dir.command()
        .args(update_args(&network, &["--major"]))
        .expect_exit(0);
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        text.contains(&format!(
            "\"actions/checkout\" = {{ sha = \"{}\", version = \"v8.0.0\" }}",
            network.checkout[3]
        )),
        "{text}"
    );
}

#[test]
fn pins_update_print_writes_nothing_and_a_missing_release_fails_with_one_line() {
    let network = network();
    let dir = Dir::git_repo();
    dir.create("Cargo.toml", CONFIG);
    dir.commit("first");
    let output = dir
        .command()
        .args(update_args(&network, &["--print"]))
        .expect_exit(0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("[workspace.metadata.gitops.actions]\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[workspace.metadata.gitops.install.sha256]\n"),
        "{stdout}"
    );
    let _: toml::Table = stdout.parse().expect("the printed tables are TOML");
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.toml")).unwrap(),
        CONFIG
    );

    let mut args = update_args(&network, &[]);
    args[3] = "0.3.0".into();
    let line = dir.command().args(args).one_line_error(1);
    assert!(
        line.contains("cargo-gitops-v0.3.0.sha256sums") && line.contains("HTTP 404"),
        "{line}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.toml")).unwrap(),
        CONFIG
    );

    let mut args = update_args(&network, &[]);
    args[5] = "http://mirror.example/releases".into();
    let line = dir.command().args(args).one_line_error(2);
    assert!(line.contains("not an https URL"), "{line}");
}

/// A single crate that keeps itself out of any enclosing workspace with an empty `[workspace]`
/// table, its settings in `[package.metadata.gitops]`.
const SINGLE_CRATE: &str = "[package]\nname = \"shop\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n\n[package.metadata.gitops]\nregistry = \"ghcr.io/acme\"\n\n[[package.metadata.gitops.environments]]\nname = \"production\"\n";

#[test]
fn pins_update_writes_into_the_package_table_of_a_single_crate_with_an_empty_workspace() {
    let network = network();
    let dir = Dir::git_repo();
    dir.create("Cargo.toml", SINGLE_CRATE);
    dir.create("src/main.rs", "fn main() {}\n");
    dir.commit("first");

    let output = dir
        .command()
        .args(update_args(&network, &["--print"]))
        .expect_exit(0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("[package.metadata.gitops.actions]\n")
            && stdout.contains("[package.metadata.gitops.install.sha256]\n")
            && !stdout.contains("workspace"),
        "{stdout}"
    );

    dir.command()
        .args(update_args(&network, &[]))
        .expect_exit(0);
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        text.starts_with(SINGLE_CRATE.trim_end()),
        "the rest is kept as it was:\n{text}"
    );
    let table: toml::Table = text.parse().unwrap();
    assert_eq!(
        table["workspace"].as_table().map(toml::Table::len),
        Some(0),
        "{text}"
    );
    let gitops = &table["package"]["metadata"]["gitops"];
    assert_eq!(
        gitops["actions"]["actions/checkout"]["sha"].as_str(),
        Some(network.checkout[1].as_str()),
        "{text}"
    );
    assert_eq!(gitops["install"]["version"].as_str(), Some(SUMS_VERSION));
    assert_eq!(
        gitops["install"]["sha256"]["x86_64-unknown-linux-musl"].as_str(),
        Some(network.sums[0].1.as_str())
    );

    // The configuration reads them back: the workflows carry the new pin.
    dir.command().args(["init-workflows", "-q"]).expect_exit(0);
    let pipeline =
        std::fs::read_to_string(dir.join(".github/workflows/gitops-pipeline.yml")).unwrap();
    assert!(
        pipeline.contains(&format!(
            "uses: actions/checkout@{} # v7.1.0",
            network.checkout[1]
        )),
        "{pipeline}"
    );
}
