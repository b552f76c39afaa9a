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

/// `packages: write` is the image job's alone, and each job's permissions are the ones it
/// uses; the image job builds with the binary of the build job, natively, under the
/// methodology's production ref of the release, and runs what it pushed.
#[test]
fn only_the_image_job_may_push_packages_and_it_builds_natively_with_the_binary_just_built() {
    let (_, doc) = release_yaml();
    for (job, body) in doc["jobs"].as_hash().unwrap() {
        let job = job.as_str().unwrap();
        let writes_packages = body["permissions"]["packages"].as_str() == Some("write");
        assert_eq!(writes_packages, job == "image", "job {job}");
    }
    let image = &doc["jobs"]["image"];
    let permissions: Vec<(&str, &str)> = image["permissions"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap(), v.as_str().unwrap()))
        .collect();
    assert_eq!(permissions, [("contents", "read"), ("packages", "write")]);
    assert_eq!(image["needs"].as_str(), Some("build"));
    let install = step(&doc, "image", "install the cargo-gitops just built");
    assert!(install.contains("sha256sum --check --strict"), "{install}");
    let build = step(&doc, "image", "build the image natively and push it");
    assert!(
        build.contains(
            "cargo-gitops build -p cargo-gitops --build-with native --ref \"refs/tags/v$VERSION\" --sha \"$GITHUB_SHA\""
        ),
        "{build}"
    );
    let run = step(&doc, "image", "run the pushed image");
    assert!(
        run.contains("docker run --rm \"$image\" --version"),
        "{run}"
    );
}

/// The install step of the image job, run on the archive the package step makes of a
/// stand-in binary: it checks the archive's checksum, and the binary ends up on PATH.
#[test]
fn the_image_job_installs_the_archive_the_build_job_packed() {
    let (_, doc) = release_yaml();
    let dir = Dir::new();
    let target = "x86_64-unknown-linux-musl";
    let bin = dir.join(format!("target/{target}/release/cargo-gitops"));
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(
        &bin,
        format!("#!/bin/sh\necho \"cargo-gitops {VERSION}\"\n"),
    )
    .unwrap();
    bash(&format!("chmod +x {}", bin.display()), dir.path(), &[]);
    // readelf finds no dynamic section in a script: the static check passes as for a static binary.
    bash(
        &step(&doc, "build", "package"),
        dir.path(),
        &[("TARGET", target), ("VERSION", VERSION)],
    );
    let runner = dir.join("runner");
    std::fs::create_dir_all(&runner).unwrap();
    let tag = format!("cargo-gitops-v{VERSION}");
    let (github_path, github_env) = (dir.join("github_path"), dir.join("github_env"));
    let env = [
        ("TAG", tag.as_str()),
        ("RUNNER_TEMP", runner.to_str().unwrap()),
        ("GITHUB_PATH", github_path.to_str().unwrap()),
        ("GITHUB_ENV", github_env.to_str().unwrap()),
    ];
    let install = step(&doc, "image", "install the cargo-gitops just built");
    bash(&install, dir.path(), &env);
    let on_path = std::fs::read_to_string(&github_path).unwrap();
    let version = Command::new(Path::new(on_path.trim()).join("cargo-gitops"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("cargo-gitops {VERSION}")
    );
    assert_eq!(
        std::fs::read_to_string(&github_env).unwrap(),
        format!("VERSION={VERSION}\n")
    );
    // A tampered archive stops the step.
    let archive = dir.join(format!("dist/cargo-gitops-{target}-v{VERSION}.tar.gz"));
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.push(0);
    std::fs::write(&archive, bytes).unwrap();
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &install])
        .current_dir(dir.path())
        .envs(env)
        .output()
        .unwrap();
    assert!(!output.status.success(), "a tampered archive was installed");
}

/// The repository configures the tool's image in cargo-gitops/Cargo.toml: chosen with
/// `-p cargo-gitops` only, so demo-app stays the image of commands without `-p` and of the
/// generated workflows, which are up to date.
#[test]
fn the_tools_image_is_configured_and_leaves_demo_apps_pipeline_alone() {
    let root = workspace();
    let sha = "b4b9fda0123456789abcdef0123456789abcdef0";
    let tool = crate::support::TestCommand::new(&root)
        .args([
            "env",
            "-p",
            "cargo-gitops",
            "--format",
            "json",
            "--timestamp",
            "1654880868",
        ])
        .args(["--ref", "refs/tags/v1.2.3", "--sha", sha])
        .json();
    assert_eq!(tool["image"], "ghcr.io/au2001/cargo-gitops");
    assert_eq!(tool["environment"], "production");
    assert_eq!(tool["tags"], serde_json::json!(["prd-1.2.3", "prd-latest"]));
    let app = crate::support::TestCommand::new(&root)
        .args([
            "env",
            "--format",
            "json",
            "--ref",
            "refs/heads/main",
            "--sha",
            sha,
        ])
        .json();
    assert_eq!(app["image"], "ghcr.io/au2001/gitops-demo-app");
    crate::support::TestCommand::new(&root)
        .args(["init-workflows", "--check"])
        .succeeds();
    // What the release workflow's image job runs: the tool compiled natively and pushed to
    // its own repository with the production tags. The plan only: the real build compiles
    // the tool in release mode, which takes minutes.
    let (plan, _) = crate::support::TestCommand::new(&root)
        .args([
            "build",
            "-p",
            "cargo-gitops",
            "--build-with",
            "native",
            "--dry-run",
        ])
        .args([
            "--ref",
            "refs/tags/v1.2.3",
            "--sha",
            sha,
            "--timestamp",
            "1654880868",
        ])
        .succeeds();
    assert!(
        plan.contains("rustc --release --manifest-path")
            && plan.contains("-p cargo-gitops --bin cargo-gitops --target"),
        "{plan}"
    );
    assert!(
        plan.contains("## tag ghcr.io/au2001/cargo-gitops as prd-1.2.3, prd-latest"),
        "{plan}"
    );
}

#[test]
fn own_workflow_belongs_to_a_package_table() {
    let dir = repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"shop\"\nown-workflow = true\n",
    );
    let error = dir.command().arg("env").one_line_error(2);
    assert!(
        error.contains("workspace.metadata.gitops.own-workflow")
            && error.contains("[package.metadata.gitops]"),
        "{error}"
    );
}
