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
    // One image's build needs -p; `env` shows every image.
    let line = dir.command().args(["build", "--dry-run"]).usage_error();
    assert!(
        line.contains("ships several images (api, web); choose one with -p"),
        "{line}"
    );
    let set = dir.command().args(["env", "--format", "json"]).json();
    assert_eq!(set["services"][0]["package"], "api", "{set}");
    assert_eq!(set["services"][1]["package"], "web", "{set}");
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
    // One image's build needs -p; `env` shows every image.
    let line = dir.command().args(["build", "--dry-run"]).usage_error();
    assert!(
        line.contains("several packages ship images (api, web); choose one with -p"),
        "{line}"
    );
    let set = dir.command().args(["env", "--format", "json"]).json();
    assert_eq!(set["services"][0]["package"], "api", "{set}");
    assert_eq!(set["services"][1]["package"], "web", "{set}");
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
    // GitLab gets one file with both images' jobs, beside the GitHub workflows.
    dir.command()
        .args(["init-workflows", "-q", "--ci", "gitlab"])
        .succeeds();
    let gitlab = std::fs::read_to_string(dir.join(".gitlab/gitops.gitlab-ci.yml")).unwrap();
    for name in ["api", "web"] {
        assert!(
            gitlab.contains(&format!("\"gitops:{name}:staging\":")),
            "{gitlab}"
        );
    }
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

/// The shell of a generated GitLab job, run here as the runner would: `fragments` in one `sh`,
/// with the job's variables, the CI's (`ci`), this build's cargo-gitops on PATH and no stored
/// registry login.
fn run_gitlab_fragments(
    dir: &Dir,
    fragments: &[String],
    variables: &[(String, String)],
    ci: &[(&str, &str)],
) -> std::process::Output {
    let bin = Dir::new();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cargo-gitops"), bin.join("cargo-gitops"))
        .unwrap();
    let no_logins = Dir::new();
    // Bounded in time, like every process the tests start.
    let mut command = std::process::Command::new("timeout");
    command
        .args(["300", "sh", "-c"])
        .arg(fragments.join("\n"))
        .current_dir(dir.path());
    for var in cargo_gitops::ci::detect::VARIABLES {
        command.env_remove(var);
    }
    command
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("DOCKER_CONFIG", no_logins.path())
        .env("REGISTRY_AUTH_FILE", no_logins.join("auth.json"))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("GITOPS_REGISTRY_USER")
        .env_remove("GITOPS_REGISTRY_PASSWORD")
        .envs(variables.iter().map(|(k, v)| (k, v)))
        .envs(ci.iter().copied());
    command.output().unwrap()
}

/// The job's `variables:`, and the before_script and script entries, of a generated GitLab
/// file.
fn gitlab_job(dir: &Dir) -> (Vec<(String, String)>, Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(dir.join(".gitlab/gitops.gitlab-ci.yml")).unwrap();
    let doc = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    let job = &doc[".gitops"];
    let variables = job["variables"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_owned(),
                v.as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let strings = |key: &str| -> Vec<String> {
        job[key]
            .as_vec()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    (variables, strings("before_script"), strings("script"))
}

/// A Rust workspace whose service is built natively, with `build-env` (its queries compile
/// offline) and `include` (its `configuration/` folder): the generated GitLab job passes
/// GitLab's schema, and its login and build lines, run here with the CI's variables, push the
/// image to a registry that needs the job's login, with no docker CLI involved.
#[test]
fn a_native_rust_workspace_builds_in_its_gitlab_job_against_a_real_registry() {
    let registry = Registry::start_with_user("gitlab-ci-token", "job-token");
    let host = registry.host();
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        format!(
            "[workspace]\nmembers = [\"svc\"]\nresolver = \"2\"\n\n[workspace.metadata.gitops]\nregistry = \"{host}/acme\"\nbuilder = \"native\"\nci = [\"gitlab\"]\n\n[workspace.metadata.gitops.gitlab]\nimage = \"rust:1.95-slim@sha256:{}\"\n{}",
            "0".repeat(64),
            INSTALL_PINS.replace("[install.sha256]", "[workspace.metadata.gitops.install.sha256]")
        ),
    );
    dir.create(
        "svc/Cargo.toml",
        "[package]\nname = \"svc\"\nversion = \"0.3.0\"\nedition = \"2021\"\n\n[package.metadata.gitops]\nbuild-env = { SQLX_OFFLINE = \"true\" }\ninclude = [{ from = \"configuration\", to = \"/app/configuration\" }]\nworkdir = \"/app\"\n",
    );
    dir.create(
        "svc/src/main.rs",
        "fn main() {\n    println!(\"offline: {}\", env!(\"SQLX_OFFLINE\"));\n}\n",
    );
    dir.create("configuration/base.yaml", "port: 8000\n");
    dir.create(".gitignore", "/target\n");
    dir.commit("service");
    dir.command().args(["init-workflows", "-q"]).expect_exit(0);
    crate::gitlab::check_jsonschema(dir.path(), &[".gitlab/gitops.gitlab-ci.yml"]);

    let (variables, before, script) = gitlab_job(&dir);
    let login: Vec<String> = before
        .iter()
        .filter(|s| s.contains("GITOPS_REGISTRY_USER"))
        .cloned()
        .collect();
    assert_eq!(login.len(), 1, "{before:#?}");
    let sha = dir.head();
    let ci = [
        ("GITLAB_CI", "true"),
        ("CI", "true"),
        ("CI_COMMIT_BRANCH", "main"),
        ("CI_COMMIT_SHA", sha.as_str()),
        ("CI_PIPELINE_SOURCE", "push"),
        ("CI_REGISTRY", host.as_str()),
        ("CI_REGISTRY_USER", "gitlab-ci-token"),
        ("CI_REGISTRY_PASSWORD", "job-token"),
        ("GITOPS_ENVIRONMENT", "staging"),
        ("SOURCE_DATE_EPOCH", TS),
    ];
    let fragments: Vec<String> = login.into_iter().chain(script).collect();
    let output = run_gitlab_fragments(&dir, &fragments, &variables, &ci);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("job-token"), "{stderr}");
    let dotenv = std::fs::read_to_string(dir.join("gitops.env")).unwrap();
    assert!(dotenv.contains("GITOPS_ACTION=built"), "{dotenv}");
    let tags = registry.tags_as("acme/svc", Some(("gitlab-ci-token", "job-token")));
    assert!(tags.contains(&format!("commit-{sha}")), "{tags:?}");
    assert!(tags.contains(&"stg-latest".to_owned()), "{tags:?}");

    // The same service's GitHub workflows (on ghcr.io, whose login the job's token is) pass
    // actionlint and zizmor.
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    dir.create(
        "Cargo.toml",
        manifest
            .replace(
                &format!("registry = \"{host}/acme\""),
                "registry = \"ghcr.io/acme\"",
            )
            .replace("ci = [\"gitlab\"]", "ci = [\"github\", \"gitlab\"]"),
    );
    dir.commit("on ghcr.io");
    dir.command().args(["init-workflows", "-q"]).expect_exit(0);
    validate_workflows(&dir);
    crate::gitlab::check_jsonschema(dir.path(), &[".gitlab/gitops.gitlab-ci.yml"]);
}

/// A step of the generated GitHub pipeline: its `run:` script and `env:`.
fn github_step(dir: &Dir, name_starts: &str) -> (String, Vec<(String, String)>) {
    let text = std::fs::read_to_string(dir.join(".github/workflows/gitops-pipeline.yml")).unwrap();
    let doc = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    let step = doc["jobs"]["build"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(name_starts))
        })
        .unwrap_or_else(|| panic!("no step {name_starts}: {text}"))
        .clone();
    let env = step["env"]
        .as_hash()
        .map(|env| {
            env.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap().to_owned(),
                        v.as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (step["run"].as_str().unwrap().to_owned(), env)
}

/// A Go service with a Dockerfile whose default branch is `master`, configured by
/// `gitops.toml`: staging follows `master` in the generated GitHub and GitLab files, which
/// pass actionlint, zizmor and GitLab's schema; the install step, run with bash, installs the
/// release served on 127.0.0.1, and the build step, run with bash as the runner would for a
/// push to `master`, builds the Dockerfile with buildx into the loopback registry.
#[test]
fn a_go_service_on_master_builds_with_the_generated_steps() {
    let registry = Registry::start();
    let host = registry.host();
    let buildkit = crate::support::Buildkit::start();
    let releases = Dir::new();
    let version = env!("CARGO_PKG_VERSION");
    let (_, sha256) =
        crate::workflow_install::release(releases.path(), "x86_64-unknown-linux-musl", version);
    let base = crate::workflow_install::serve(releases.path());

    let upstream = scratch_context();
    upstream.git(["init", "--quiet"]);
    upstream.git(["checkout", "-q", "-b", "master"]);
    upstream.create("go.mod", "module example.com/svc\n\ngo 1.22\n");
    upstream.create("main.go", "package main\n\nfunc main() {}\n");
    upstream.create(
        "gitops.toml",
        format!(
            "registry = \"{host}/acme\"\nimage = \"svc\"\nci = [\"github\", \"gitlab\"]\nregistry-secrets = {{ username = \"REGISTRY_USER\", password = \"REGISTRY_PASSWORD\" }}\n\n[gitlab]\nregistry-variables = {{ username = \"REGISTRY_USER\", password = \"REGISTRY_PASSWORD\" }}\n\n[install.sha256]\nx86_64-unknown-linux-musl = \"{sha256}\"\n"
        ),
    );
    upstream.commit("go service");
    // A clone, whose origin/HEAD names master.
    let repo = Dir::new();
    repo.git(["clone", "-q", upstream.path().to_str().unwrap(), "."]);
    let clone = repo.path().to_path_buf();
    repo.command().args(["init-workflows", "-q"]).expect_exit(0);
    validate_workflows(&repo);
    crate::gitlab::check_jsonschema(&clone, &[".gitlab/gitops.gitlab-ci.yml"]);
    let staging =
        std::fs::read_to_string(clone.join(".github/workflows/gitops-staging.yml")).unwrap();
    assert!(staging.contains("      - \"master\"\n"), "{staging}");
    let gitlab = std::fs::read_to_string(clone.join(".gitlab/gitops.gitlab-ci.yml")).unwrap();
    assert!(
        gitlab.contains("$CI_COMMIT_BRANCH == \"master\""),
        "{gitlab}"
    );

    // The install step, against the loopback release.
    let runner = Dir::new();
    let (install, mut install_env) = github_step(&repo, "install cargo-gitops");
    install_env.push(("GITOPS_RELEASE_BASE_URL".to_owned(), base));
    let output = std::process::Command::new("timeout")
        .args([
            "120",
            "bash",
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            "-c",
        ])
        .arg(&install)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", runner.path())
        .env("GITHUB_PATH", runner.join("github_path"))
        .envs(install_env)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(runner.join("github_path").is_file());

    // The build step, for a push to master, with this build's cargo-gitops on PATH.
    let bin = Dir::new();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cargo-gitops"), bin.join("cargo-gitops"))
        .unwrap();
    let (build, build_env) = github_step(&repo, "build or retag");
    let sha = repo.head();
    let mut command = std::process::Command::new("timeout");
    command
        .args([
            "300",
            "bash",
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            "-c",
        ])
        .arg(&build)
        .current_dir(&clone);
    for var in cargo_gitops::ci::detect::VARIABLES {
        command.env_remove(var);
    }
    let output = command
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("DOCKER_CONFIG", buildkit.docker_config())
        .env("BUILDX_BUILDER", buildkit.name())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REF", "refs/heads/master")
        .env("GITHUB_SHA", &sha)
        .env("GITHUB_OUTPUT", runner.join("output"))
        .envs(build_env)
        .env("GITOPS_INPUT_REF", "")
        .env("GITOPS_ENVIRONMENT", "staging")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let outputs = std::fs::read_to_string(runner.join("output")).unwrap();
    assert!(outputs.contains("built=true"), "{outputs}");
    let tags = registry.tags("acme/svc");
    for tag in [
        format!("commit-{sha}"),
        "stg-latest".to_owned(),
        "buildcache".to_owned(),
    ] {
        assert!(tags.contains(&tag), "{tag}: {tags:?}");
    }
}
