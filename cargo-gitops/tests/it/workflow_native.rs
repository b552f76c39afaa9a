//! Native builds in the generated pipelines: a Rust toolchain step in plain `rustup` (the
//! musl targets of the configured platforms) and a compile cache pinned to a commit, keyed
//! on the toolchain, the targets, the lock file and the commit; no Buildx. The generated set
//! passes zizmor (pedantic), check-jsonschema and actionlint, and the toolchain script runs.

use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::Dir;
use crate::workflows::{generate, repository, validate_dir};

const NATIVE_CONFIG: &str = r#"[workspace]

[workspace.metadata.gitops]
registry = "ghcr.io/acme"
image = "shop"
builder = "native"
platforms = ["linux/amd64", "linux/arm64"]
"#;

/// The build job's steps of the generated pipeline.
fn pipeline_steps(dir: &Dir) -> Vec<Yaml> {
    let files = generate(dir);
    let pipeline = &files
        .iter()
        .find(|(n, _)| n == "gitops-pipeline.yml")
        .expect("a pipeline")
        .1;
    let doc = YamlLoader::load_from_str(pipeline).unwrap().remove(0);
    doc["jobs"]["build"]["steps"].as_vec().unwrap().clone()
}

fn step<'a>(steps: &'a [Yaml], name: &str) -> &'a Yaml {
    steps
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no step `{name}` in {steps:?}"))
}

fn names(steps: &[Yaml]) -> Vec<&str> {
    steps.iter().filter_map(|s| s["name"].as_str()).collect()
}

#[test]
fn a_native_pipeline_sets_up_rust_and_caches_the_compile() {
    let dir = repository(NATIVE_CONFIG);
    let steps = pipeline_steps(&dir);
    let names = names(&steps);
    let position = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(
        !names.contains(&"set up docker buildx"),
        "a native build needs no Buildx: {names:?}"
    );
    // Toolchain, then cache, both before the build that compiles.
    assert!(
        position("set up the Rust toolchain for the native build")
            < position("restore the compile cache")
    );
    assert!(position("restore the compile cache") < position("build or retag"));

    let rust = step(&steps, "set up the Rust toolchain for the native build");
    assert_eq!(rust["id"].as_str(), Some("rust"));
    assert_eq!(
        rust["env"]["GITOPS_RUST_TARGETS"].as_str(),
        Some("x86_64-unknown-linux-musl aarch64-unknown-linux-musl")
    );
    let script = rust["run"].as_str().unwrap();
    assert_eq!(script, cargo_gitops::ci::toolchain::SCRIPT);

    let cache = step(&steps, "restore the compile cache");
    let uses = cache["uses"].as_str().unwrap();
    let pin = &cargo_gitops::config::default_pins()["actions/cache"];
    assert_eq!(uses, format!("actions/cache@{}", pin.sha));
    let paths: Vec<&str> = cache["with"]["path"].as_str().unwrap().lines().collect();
    assert_eq!(
        paths,
        [
            "~/.cargo/registry/index/",
            "~/.cargo/registry/cache/",
            "~/.cargo/git/db/",
            "target/"
        ]
    );
    let prefix = "gitops-native-x86_64-unknown-linux-musl+aarch64-unknown-linux-musl-${{ runner.os }}-${{ runner.arch }}-${{ steps.rust.outputs.toolchain }}-";
    assert_eq!(
        cache["with"]["key"].as_str().unwrap(),
        format!("{prefix}${{{{ hashFiles('**/Cargo.lock') }}}}-${{{{ github.sha }}}}")
    );
    let restore: Vec<&str> = cache["with"]["restore-keys"]
        .as_str()
        .unwrap()
        .lines()
        .collect();
    assert_eq!(
        restore,
        [
            format!("{prefix}${{{{ hashFiles('**/Cargo.lock') }}}}-"),
            prefix.to_owned()
        ]
    );
}

#[test]
fn generated_native_workflows_pass_zizmor_check_jsonschema_and_actionlint() {
    let dir = repository(NATIVE_CONFIG);
    generate(&dir);
    validate_dir(&dir);
    let pipeline = dir.join(".github/workflows/gitops-pipeline.yml");
    assert!(
        std::fs::read_to_string(&pipeline)
            .unwrap()
            .contains("rustup target add")
    );
}

#[test]
fn other_builders_get_no_toolchain_and_keep_buildx() {
    let dir = repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"shop\"\n",
    );
    let names: Vec<String> = names(&pipeline_steps(&dir))
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert!(
        names.iter().any(|n| n == "set up docker buildx"),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("Rust") || n.contains("compile cache")),
        "{names:?}"
    );
}

#[test]
fn a_platform_native_builds_cannot_make_is_refused() {
    let dir = repository(&NATIVE_CONFIG.replace("\"linux/arm64\"", "\"linux/s390x\""));
    let error = dir.command().args(["init-workflows"]).one_line_error(2);
    assert!(
        error.contains(
            "configuration key `platforms[1]`: `linux/s390x` is not a platform native builds make"
        ),
        "{error}"
    );
    assert!(!dir.join(".github/workflows").exists());
}

/// The toolchain step's script, run as the runner runs a bash step, in a repository whose
/// rust-toolchain.toml names the toolchain installed here, with the target installed here
/// (adding another would download it): it writes the toolchain output the cache key uses.
#[test]
fn the_toolchain_script_runs_and_gives_the_cache_key_its_toolchain() {
    let dir = repository(NATIVE_CONFIG);
    let steps = pipeline_steps(&dir);
    let script = step(&steps, "set up the Rust toolchain for the native build")["run"]
        .as_str()
        .unwrap()
        .to_owned();
    let active = Command::new("rustup")
        .args(["show", "active-toolchain"])
        .output()
        .unwrap();
    let toolchain = String::from_utf8_lossy(&active.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    dir.create(
        "rust-toolchain.toml",
        format!("[toolchain]\nchannel = \"{toolchain}\"\n"),
    );
    let output_file = dir.join("github-output");
    let file = dir.join("step.sh");
    std::fs::write(&file, &script).unwrap();
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&file)
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITOPS_RUST_TARGETS", host_target())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(&output_file).unwrap();
    let value = written.strip_prefix("toolchain=").unwrap().trim_end();
    let (release, commit) = value.split_once('-').unwrap();
    let rustc = Command::new("rustc")
        .arg("-vV")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let rustc = String::from_utf8_lossy(&rustc.stdout).to_string();
    assert!(
        rustc.contains(&format!("release: {release}\n")),
        "{value} vs {rustc}"
    );
    assert!(
        commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{value}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("rustc "));
    assert!(Path::new(&output_file).exists());
}

/// The host's own target triple, which the toolchain has: `x86_64-unknown-linux-gnu`.
fn host_target() -> String {
    let rustc = Command::new("rustc").arg("-vV").output().unwrap();
    String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

const GITLAB_NATIVE_CONFIG: &str = r#"[workspace]

[workspace.metadata.gitops]
registry = "registry.gitlab.com/acme"
image = "shop"
builder = "native"
platforms = ["linux/amd64"]
ci = ["gitlab"]
install-path = "tools/cargo-gitops"

[workspace.metadata.gitops.gitlab]
image = "rust:1.95-slim@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
"#;

/// The GitLab job of a native build: a cache of the compile inside the project (keyed on the
/// job image's digest, the targets and the lock file), the targets added with rustup, no
/// Docker-in-Docker; the file passes GitLab's schema and its script passes shellcheck.
#[test]
fn the_gitlab_job_of_a_native_build_adds_the_targets_and_caches_the_compile() {
    let dir = repository(GITLAB_NATIVE_CONFIG);
    dir.command().args(["init-workflows", "-q"]).expect_exit(0);
    let path = ".gitlab/gitops.gitlab-ci.yml";
    let text = std::fs::read_to_string(dir.join(path)).unwrap();
    crate::gitlab::check_jsonschema(dir.path(), &[path]);
    let doc = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let job = &doc[".gitops"];
    assert!(job["services"].is_badvalue(), "no Docker daemon: {text}");
    assert_eq!(
        job["variables"]["CARGO_HOME"].as_str(),
        Some("$CI_PROJECT_DIR/.cargo")
    );
    assert_eq!(
        job["variables"]["GITOPS_RUST_TARGETS"].as_str(),
        Some("x86_64-unknown-linux-musl")
    );
    assert_eq!(
        job["cache"]["key"]["prefix"].as_str(),
        Some("gitops-native-x86_64-unknown-linux-musl-0123456789ab")
    );
    assert_eq!(job["cache"]["key"]["files"][0].as_str(), Some("Cargo.lock"));
    let paths: Vec<&str> = job["cache"]["paths"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            ".cargo/registry/index/",
            ".cargo/registry/cache/",
            ".cargo/git/db/",
            "target/"
        ]
    );
    let setup = job["before_script"][0].as_str().unwrap();
    assert!(setup.contains("rustup target add \"$target\""), "{setup}");
    // A Rust job image has no docker CLI: the tool reads the job's login from its variables.
    let scripts: Vec<&str> = job["before_script"]
        .as_vec()
        .unwrap()
        .iter()
        .chain(job["script"].as_vec().unwrap())
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        scripts
            .iter()
            .all(|s| !s.contains("docker") && !s.contains(" login --")),
        "{scripts:#?}"
    );
    let login = scripts
        .iter()
        .find(|s| s.contains("GITOPS_REGISTRY_USER"))
        .expect("a login through the tool's variables");
    assert!(
        login.contains(
            "export GITOPS_REGISTRY_USER=\"$CI_REGISTRY_USER\" GITOPS_REGISTRY_PASSWORD=\"$CI_REGISTRY_PASSWORD\""
        ),
        "{login}"
    );
    let scratch = tempfile::tempdir().unwrap();
    let script = scratch.path().join("before.sh");
    std::fs::write(&script, setup).unwrap();
    crate::workflows::run_validator(
        "shellcheck",
        &["--shell=sh", script.to_str().unwrap()],
        scratch.path(),
    );
}

#[test]
fn a_native_gitlab_job_on_the_docker_cli_image_is_refused() {
    let config = GITLAB_NATIVE_CONFIG
        .split("\n[workspace.metadata.gitops.gitlab]")
        .next()
        .unwrap()
        .to_owned();
    let dir = repository(&config);
    let error = dir.command().args(["init-workflows"]).one_line_error(2);
    assert!(
        error.contains("configuration key `gitlab.image`: a native build compiles with cargo"),
        "{error}"
    );
}
