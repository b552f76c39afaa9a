//! Adopting the tool in repositories that are not this one: a Node app configured by
//! `gitops.toml` (no `Cargo.toml`), a Rust repository that keeps `cargo metadata` working while
//! configured outside `Cargo.toml`, several images in one repository, and the configuration
//! errors a new user meets (both places configured, colliding environments, a misspelled table).

use serde_json::Value;

use crate::support::{Dir, Registry, TestCommand, git_in, scratch_context};

const TS: &str = "1654880868";

/// A Node repository: `package.json`, a server, and a Dockerfile. The image is `FROM scratch`
/// with a static binary (no base image can be pulled here); what matters is that nothing
/// about it is Rust.
/// What `cargo gitops pins update` writes into `gitops.toml` for a prebuilt install.
const INSTALL_PINS: &str = r#"
[install.sha256]
x86_64-unknown-linux-musl = "1111111111111111111111111111111111111111111111111111111111111111"
aarch64-unknown-linux-musl = "2222222222222222222222222222222222222222222222222222222222222222"
x86_64-apple-darwin = "3333333333333333333333333333333333333333333333333333333333333333"
aarch64-apple-darwin = "4444444444444444444444444444444444444444444444444444444444444444"
"#;

fn node_repo(gitops_toml: &str) -> Dir {
    let dir = scratch_context();
    dir.git(["init", "--quiet"]);
    dir.create(
        "package.json",
        r#"{"name": "web", "version": "1.4.0", "main": "server.js"}"#,
    );
    dir.create(
        "server.js",
        "require('http').createServer((q, s) => s.end('ok')).listen(8080);\n",
    );
    dir.create("gitops.toml", gitops_toml);
    dir.commit("node app");
    dir
}

/// The generated workflows pass actionlint, zizmor and GitHub's workflow schema.
fn validate_workflows(dir: &Dir) {
    let workflows = dir.join(".github/workflows");
    let files: Vec<String> = std::fs::read_dir(&workflows)
        .unwrap()
        .map(|e| {
            format!(
                ".github/workflows/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    let run = |program: &str, args: &[&str]| {
        let output = std::process::Command::new(program)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed (.ci/test installs it): {e}"));
        assert!(
            output.status.success(),
            "{program}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let mut actionlint = vec!["-no-color"];
    actionlint.extend(files.iter().map(String::as_str));
    run("actionlint", &actionlint);
    run(
        "zizmor",
        &[
            "--offline",
            "--no-progress",
            "--persona",
            "pedantic",
            ".github/workflows",
        ],
    );
    let mut schema = vec!["--builtin-schema", "vendor.github-workflows"];
    schema.extend(files.iter().map(String::as_str));
    run("check-jsonschema", &schema);
}

fn env_json(dir: &Dir, args: &[&str]) -> Value {
    let mut command = dir.command();
    command
        .args(["env", "--format", "json", "--timestamp", TS])
        .args(args);
    command.json()
}

#[test]
fn a_node_repository_is_configured_by_gitops_toml() {
    let dir = node_repo(&format!(
        "registry = \"ghcr.io/acme\"\nimage = \"web\"\n{INSTALL_PINS}"
    ));
    assert!(!dir.join("Cargo.toml").exists());
    let got = env_json(&dir, &[]);
    assert_eq!(got["environment"], "staging");
    assert_eq!(got["image"], "ghcr.io/acme/web");
    let got = env_json(&dir, &["--sha", "HEAD", "--ref", "feature/login"]);
    assert_eq!(got["environment"], "development");

    // From a folder below the root, and with --config.
    dir.create("src/index.js", "");
    let mut below = dir.command_in("src");
    let got = below.args(["env", "--format", "json"]).json();
    assert_eq!(got["image"], "ghcr.io/acme/web");
    let got = env_json(&dir, &["--config", "gitops.toml"]);
    assert_eq!(got["image"], "ghcr.io/acme/web");

    // The pipelines and the Flux policies are generated from it.
    dir.command().arg("init-workflows").succeeds();
    let pipeline = std::fs::read_to_string(dir.join(".github/workflows/gitops-pipeline.yml"))
        .expect("the pipeline is written");
    assert!(pipeline.contains("cargo-gitops build"), "{pipeline}");
    // The pipeline of a Node repository needs no Rust toolchain: the tool comes prebuilt.
    assert!(!pipeline.contains("cargo install"), "{pipeline}");
    assert!(
        pipeline.contains("name: install cargo-gitops (prebuilt)"),
        "{pipeline}"
    );
    dir.command().args(["init-workflows", "--check"]).succeeds();
    validate_workflows(&dir);
    let (flux, _) = dir.command().args(["flux"]).succeeds();
    assert!(flux.contains("image: 'ghcr.io/acme/web'"), "{flux}");

    // A native build needs a Rust package: said in one line.
    let line = dir
        .command()
        .args(["build", "--build-with", "native", "--dry-run"])
        .usage_error();
    assert!(
        line.contains("--build-with native compiles a Rust package"),
        "{line}"
    );
}

#[test]
fn a_node_repository_builds_with_podman_against_a_real_registry() {
    let registry = Registry::start();
    let dir = node_repo(&format!(
        "registry = \"{}\"\nimage = \"web\"\n",
        registry.host()
    ));
    let mut command = dir.command();
    command.timeout(std::time::Duration::from_secs(120));
    let report = command
        .args(["build", "--build-with", "podman", "--retag-with", "builtin"])
        .args(["--format", "json", "--timestamp", TS])
        .json();
    assert_eq!(report["action"], "built");
    let sha = dir.head();
    let digest = registry
        .digest("web", &format!("commit-{sha}"))
        .expect("lookup tag pushed");
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(
        registry.digest("web", "stg-latest").as_deref(),
        Some(digest.as_str())
    );
}

#[test]
fn a_rust_repository_configured_by_gitops_toml_keeps_cargo_working() {
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        "[package]\nname = \"svc\"\nversion = \"0.3.0\"\nedition = \"2021\"\n",
    );
    dir.create("src/main.rs", "fn main() {}\n");
    dir.create(
        "gitops.toml",
        "registry = \"ghcr.io/acme\"\nimage = \"svc\"\n",
    );
    dir.commit("svc");
    let got = env_json(&dir, &[]);
    assert_eq!(got["image"], "ghcr.io/acme/svc");
    let metadata = std::process::Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run cargo metadata");
    assert!(
        metadata.status.success(),
        "{}",
        String::from_utf8_lossy(&metadata.stderr)
    );

    // Configuring the same repository in Cargo.toml as well is refused, naming both files.
    dir.create(
        "Cargo.toml",
        "[package]\nname = \"svc\"\nversion = \"0.3.0\"\nedition = \"2021\"\n\n[package.metadata.gitops]\nimage = \"svc\"\n",
    );
    let line = dir.command().args(["env"]).usage_error();
    assert!(line.contains("gitops.toml and"), "{line}");
    assert!(
        line.contains("Cargo.toml configure this repository; keep one"),
        "{line}"
    );
}

#[test]
fn several_images_in_gitops_toml_are_chosen_with_p() {
    let dir = node_repo(
        r#"registry = "ghcr.io/acme"

[images.api]
dockerfile = "api/Dockerfile"

[images.web]
image = "shop-web"
"#,
    );
    let line = dir.command().arg("env").usage_error();
    assert!(
        line.contains("ships several images (api, web); choose one with -p"),
        "{line}"
    );
    assert_eq!(env_json(&dir, &["-p", "api"])["image"], "ghcr.io/acme/api");
    assert_eq!(
        env_json(&dir, &["-p", "web"])["image"],
        "ghcr.io/acme/shop-web"
    );
    let line = dir.command().args(["env", "-p", "nope"]).usage_error();
    assert!(line.contains("image `nope` is not in"), "{line}");
    assert!(line.contains("its images are: api, web"), "{line}");
}

#[test]
fn configurations_whose_environments_share_tags_are_refused() {
    let cases = [
        (
            // Staging's latest tag is production's.
            r#"
[[environments]]
name = "production"
tags = { semver = "stable" }

[[environments]]
name = "staging"
branches = ["main"]
latest = "prd-latest"
"#,
            "environments `production` and `staging` can push the same tag",
        ),
        (
            // Two formats that overlap.
            r#"
[[environments]]
name = "staging"
branches = ["main"]
format = "app-{sha}-{timestamp}"

[[environments]]
name = "development"
branches = ["**"]
format = "app-{sha}-{timestamp}"
latest = false
"#,
            "environments `staging` and `development` can push the same tag",
        ),
        (
            // A branch-named format can produce another environment's tags.
            r#"
[[environments]]
name = "staging"
branches = ["main"]
format = "stg-{sha}-{timestamp}"
latest = false

[[environments]]
name = "development"
branches = ["**"]
format = "{branch}-{sha}-{timestamp}"
latest = false
"#,
            "environments `staging` and `development` can push the same tag",
        ),
        (
            // A format that can read as a lookup tag (digits, hex and a branch of hex make
            // 40 hex digits), while `commit-{sha40}-{timestamp}` cannot and is accepted.
            r#"
[[environments]]
name = "development"
branches = ["**"]
format = "commit-{timestamp}{sha}{branch}"
latest = false
"#,
            "environment `development`'s tags `commit-{timestamp}{sha}{branch}` can be a lookup tag",
        ),
    ];
    for (environments, expected) in cases {
        let dir = Dir::git_repo_with_commit();
        dir.create(
            "gitops.toml",
            format!("registry = \"ghcr.io/acme\"\nimage = \"app\"\n{environments}"),
        );
        let line = dir.command().arg("env").usage_error();
        assert!(line.contains(expected), "{expected}\n{line}");
        assert!(line.contains("gitops.toml: environments:"), "{line}");
    }
    // The defaults, and formats that only look alike, are accepted.
    for environments in [
        "",
        r#"
[[environments]]
name = "staging"
branches = ["main"]
format = "commit-{sha40}-{timestamp}"

[[environments]]
name = "development"
branches = ["**"]
format = "app-{branch}-{sha}-{timestamp}"
"#,
    ] {
        let dir = Dir::git_repo_with_commit();
        dir.create(
            "gitops.toml",
            format!("registry = \"ghcr.io/acme\"\nimage = \"app\"\n{environments}"),
        );
        assert_eq!(env_json(&dir, &[])["environment"], "staging");
    }
}

#[test]
fn a_misspelled_table_is_warned_about() {
    let dir = Dir::git_repo_with_commit();
    dir.create(
        "Cargo.toml",
        "[workspace]\n\n[workspace.metadata.gitop]\nregistry = \"ghcr.io/acme\"\n",
    );
    let (_, stderr) = dir.command().arg("env").succeeds();
    assert!(
        stderr.contains(
            "[workspace.metadata.gitop] is not read; did you mean [workspace.metadata.gitops]?"
        ),
        "{stderr}"
    );
    // Other tools' tables are left alone.
    dir.create(
        "Cargo.toml",
        "[workspace]\n\n[workspace.metadata.dist]\nx = 1\n",
    );
    let (_, stderr) = dir.command().arg("env").succeeds();
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// A fresh clone's `git` sees the files the tests write (keeps `git_in` in use here too).
#[test]
fn the_node_repository_is_a_real_git_repository() {
    let dir = node_repo("registry = \"ghcr.io/acme\"\nimage = \"web\"\n");
    let files = git_in(dir.path(), ["ls-files"]);
    assert!(files.lines().any(|f| f == "gitops.toml"), "{files}");
    assert!(files.lines().any(|f| f == "package.json"), "{files}");
    let _: TestCommand = dir.command();
}

/// A Rust workspace with two services, each shipping an image of its own.
fn two_services() -> Dir {
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        format!(
            "[workspace]\nmembers = [\"services/*\"]\nresolver = \"2\"\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\n{}",
            crate::workflows::INSTALL_PINS
        ),
    );
    for name in ["api", "web"] {
        dir.create(
            format!("services/{name}/Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.gitops]\n"),
        );
        dir.create(format!("services/{name}/src/main.rs"), "fn main() {}\n");
    }
    dir.commit("two services");
    dir
}

#[test]
fn a_two_service_workspace_gets_both_images_without_overwriting() {
    let dir = two_services();
    let line = dir.command().arg("env").usage_error();
    assert!(
        line.contains("several packages ship images (api, web); choose one with -p"),
        "{line}"
    );
    assert_eq!(env_json(&dir, &["-p", "api"])["image"], "ghcr.io/acme/api");
    assert_eq!(env_json(&dir, &["-p", "web"])["image"], "ghcr.io/acme/web");
    // From inside a service's folder, that service.
    let got = dir
        .command_in("services/web")
        .args(["env", "--format", "json"])
        .json();
    assert_eq!(got["image"], "ghcr.io/acme/web");

    // Flux: one ImageRepository and one set of policies per image, in one file.
    let out = dir.join("flux.yaml");
    dir.command()
        .args(["flux", "--output", out.to_str().unwrap()])
        .succeeds();
    let yaml = std::fs::read_to_string(&out).unwrap();
    for name in ["api", "web"] {
        assert!(
            yaml.contains(&format!("  image: 'ghcr.io/acme/{name}'")),
            "{yaml}"
        );
        assert!(
            yaml.contains(&format!("  name: '{name}-staging'")),
            "{yaml}"
        );
        assert!(
            yaml.contains(&format!("  name: '{name}-production'")),
            "{yaml}"
        );
    }
    assert_eq!(yaml.matches("kind: 'ImageRepository'").count(), 2, "{yaml}");
    // With -p, one image only.
    let (one, _) = dir.command().args(["flux", "-p", "api"]).succeeds();
    assert_eq!(one.matches("kind: 'ImageRepository'").count(), 1, "{one}");

    // Workflows: each image's files are named after it; neither overwrites the other's.
    dir.command().args(["init-workflows", "-q"]).succeeds();
    let workflows = dir.join(".github/workflows");
    for name in ["api", "web"] {
        let pipeline =
            std::fs::read_to_string(workflows.join(format!("gitops-{name}-pipeline.yml")))
                .unwrap_or_else(|e| panic!("{name}'s pipeline: {e}"));
        assert!(
            pipeline.contains(&format!("GITOPS_PACKAGE: \"{name}\"")),
            "{pipeline}"
        );
        let staging = std::fs::read_to_string(workflows.join(format!("gitops-{name}-staging.yml")))
            .unwrap_or_else(|e| panic!("{name}'s staging workflow: {e}"));
        assert!(
            staging.contains(&format!(
                "uses: ./.github/workflows/gitops-{name}-pipeline.yml"
            )),
            "{staging}"
        );
        assert!(
            staging.contains(&format!("group: gitops-{name}-staging")),
            "{staging}"
        );
    }
    assert!(!workflows.join("gitops-pipeline.yml").exists());
    dir.command()
        .args(["init-workflows", "--check", "-q"])
        .succeeds();
    validate_workflows(&dir);
    // One image's GitLab pipeline at a time: said, not overwritten.
    let line = dir
        .command()
        .args(["init-workflows", "--ci", "gitlab"])
        .usage_error();
    assert!(line.contains("ships several (api, web)"), "{line}");
}

/// Generated files and configuration errors name the file (and table) the settings came from.
#[test]
fn headers_and_errors_name_the_file_the_configuration_came_from() {
    let node = node_repo(&format!(
        "registry = \"ghcr.io/acme\"\nimage = \"web\"\nci = [\"github\", \"gitlab\"]\n{INSTALL_PINS}"
    ));
    node.command().args(["init-workflows", "-q"]).expect_exit(0);
    for file in [
        ".github/workflows/gitops-pipeline.yml",
        ".github/workflows/gitops-staging.yml",
        ".gitlab/gitops.gitlab-ci.yml",
    ] {
        let text = std::fs::read_to_string(node.join(file)).unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            first.contains(" from gitops.toml. Do not edit"),
            "{file}: {first}"
        );
    }
    node.create(
        "gitops.toml",
        "registry = \"ghcr.io/acme\"\nimage = \"web\"\n\n[gitlab]\ninstall-sha256 = \"x\"\n",
    );
    let line = node.command().args(["init-workflows"]).usage_error();
    assert!(
        line.starts_with(&format!(
            "error: {}: gitlab.install-sha256: is replaced by",
            node.join("gitops.toml").display()
        )),
        "{line}"
    );

    // A package's own table, over the workspace's.
    let rust = Dir::git_repo();
    rust.create(
        "Cargo.toml",
        "[workspace]\nmembers = [\"api\"]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\n\n[workspace.metadata.gitops.install.sha256]\nx86_64-unknown-linux-musl = \"1111111111111111111111111111111111111111111111111111111111111111\"\n",
    );
    rust.create(
        "api/Cargo.toml",
        "[package]\nname = \"api\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.gitops]\n",
    );
    rust.create("api/src/main.rs", "fn main() {}\n");
    rust.commit("first");
    rust.command().args(["init-workflows", "-q"]).expect_exit(0);
    let text = std::fs::read_to_string(rust.join(".github/workflows/gitops-pipeline.yml")).unwrap();
    assert!(
        text.lines().next().unwrap().contains(
            "from [package.metadata.gitops] in api/Cargo.toml over [workspace.metadata.gitops] in Cargo.toml."
        ),
        "{text}"
    );
}
