//! The release workflow of cargo-gitops itself (`.github/workflows/release.yml`, written by
//! hand): the validators pass on it, its actions are pinned, its targets are the install's,
//! and its packaging and checksum scripts, run here on stand-in binaries, publish exactly the
//! layout that `pins update` reads, that the generated install step installs from, and that
//! `[package.metadata.binstall]` describes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_gitops::ci::install;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::Dir;
use crate::workflow_install::{install_step, serve};
use crate::workflows::{repository, run_validator, validate_dir};

const VERSION: &str = "0.7.1";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn release_yaml() -> (String, Yaml) {
    let text = std::fs::read_to_string(workspace().join(".github/workflows/release.yml")).unwrap();
    let doc = YamlLoader::load_from_str(&text).unwrap().remove(0);
    (text, doc)
}

/// The `run:` script and `env:` of the step named `name` in `job`.
fn step(doc: &Yaml, job: &str, name: &str) -> String {
    doc["jobs"][job]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .and_then(|s| s["run"].as_str())
        .unwrap_or_else(|| panic!("no step `{name}` in job {job}"))
        .to_owned()
}

fn bash(script: &str, dir: &Path, env: &[(&str, &str)]) {
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_release_workflow_passes_the_validators_and_pins_every_action() {
    let (text, doc) = release_yaml();
    let dir = Dir::new();
    dir.create(".github/workflows/release.yml", &text);
    validate_dir(&dir);
    let scratch = tempfile::tempdir().unwrap();
    for (job, body) in doc["jobs"].as_hash().unwrap() {
        for (index, step) in body["steps"].as_vec().unwrap().iter().enumerate() {
            if let Some(run) = step["run"].as_str() {
                let file = scratch
                    .path()
                    .join(format!("{}-{index}.sh", job.as_str().unwrap()));
                std::fs::write(&file, run).unwrap();
                run_validator(
                    "shellcheck",
                    &["--shell=bash", file.to_str().unwrap()],
                    scratch.path(),
                );
            }
        }
    }
    let pinned = regex::Regex::new(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$").unwrap();
    for line in text.lines() {
        if let Some(uses) = line.trim().strip_prefix("uses: ") {
            assert!(pinned.is_match(uses), "not pinned to a commit: {line}");
        }
    }
    let targets: Vec<&str> = doc["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = install::TARGETS.iter().map(|(_, _, t)| *t).collect();
    assert_eq!(targets, expected);
}

#[test]
fn the_binstall_metadata_names_the_archives_the_release_publishes() {
    let manifest: toml::Table =
        std::fs::read_to_string(workspace().join("cargo-gitops/Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let binstall = &manifest["package"]["metadata"]["binstall"];
    let target = "aarch64-apple-darwin";
    let fill = |template: &str| {
        template
            .replace("{ repo }", env!("CARGO_PKG_REPOSITORY"))
            .replace("{ version }", VERSION)
            .replace("{ name }", "cargo-gitops")
            .replace("{ target }", target)
            .replace("{ archive-suffix }", ".tar.gz")
            .replace("{ bin }", "cargo-gitops")
            .replace("{ binary-ext }", "")
    };
    assert_eq!(
        fill(binstall["pkg-url"].as_str().unwrap()),
        format!(
            "{}/{}/{}",
            install::DEFAULT_BASE_URL,
            install::release_tag(VERSION),
            install::archive_name(target, VERSION)
        )
    );
    assert_eq!(
        fill(binstall["bin-dir"].as_str().unwrap()),
        format!("cargo-gitops-{target}-v{VERSION}/cargo-gitops")
    );
    assert_eq!(binstall["pkg-fmt"].as_str(), Some("tgz"));
}

#[test]
fn what_the_release_publishes_is_what_pins_update_reads_and_the_install_step_installs() {
    let (_, doc) = release_yaml();
    let package = step(&doc, "build", "package");
    let combine = step(&doc, "attest", "combine and check the checksums");
    // The build job's checkout, with a stand-in binary per target.
    let checkout = tempfile::tempdir().unwrap();
    for (_, _, target) in install::TARGETS {
        let bin = checkout.path().join(format!("target/{target}/release"));
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(
            bin.join("cargo-gitops"),
            format!("#!/bin/sh\necho \"cargo-gitops {VERSION}\"\n"),
        )
        .unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(bin.join("cargo-gitops"))
            .status()
            .unwrap();
        bash(
            &package,
            checkout.path(),
            &[("TARGET", target), ("VERSION", VERSION)],
        );
    }
    // The attest job: every archive and .sha256 in one folder, as download-artifact leaves them.
    let tag = install::release_tag(VERSION);
    bash(&combine, checkout.path(), &[("TAG", tag.as_str())]);
    let releases = tempfile::tempdir().unwrap();
    let dist = releases.path().join(&tag);
    std::fs::rename(checkout.path().join("dist"), &dist).unwrap();
    let mut published: Vec<String> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    published.sort();
    let mut expected: Vec<String> = install::TARGETS
        .iter()
        .flat_map(|(_, _, t)| {
            let archive = install::archive_name(t, VERSION);
            [format!("{archive}.sha256"), archive]
        })
        .collect();
    expected.push(install::checksums_name(VERSION));
    expected.sort();
    assert_eq!(published, expected);

    // pins update reads it; init-workflows writes it into the install step, which installs.
    let base = serve(releases.path());
    let dir = repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nimage = \"ghcr.io/acme/shop\"\n\n[workspace.metadata.gitops.install]\nmode = \"prebuilt\"\n",
    );
    dir.command()
        .args(["pins", "update", "--only", "install", "--release", VERSION])
        .args(["--release-base", &base, "-q"])
        .expect_exit(0);
    let (script, env) = install_step(&dir);
    assert_eq!(env.len(), 2 + install::TARGETS.len(), "{env:?}");
    let runner = tempfile::tempdir().unwrap();
    let mut vars: BTreeMap<String, String> = env;
    vars.insert("GITOPS_RELEASE_BASE_URL".into(), base);
    vars.insert("RUNNER_OS".into(), "Linux".into());
    vars.insert("RUNNER_ARCH".into(), "ARM64".into());
    vars.insert(
        "RUNNER_TEMP".into(),
        runner.path().to_str().unwrap().to_owned(),
    );
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
        .envs(&vars)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!(
        "installed cargo-gitops {VERSION} for aarch64-unknown-linux-musl"
    )));
}
