//! `cargo gitops build --all`: a release of a repository with three services promoted as one
//! set in the real registry (docker-registry, and olareg, which deletes tags), all or none:
//! every service's tags move, or, when one has no image or one gate refuses, none does; when a
//! retag fails midway (refused by the fault proxy), the tags already moved are put back.

use std::time::Duration;

use serde_json::Value;

use crate::affected::push_image;
use crate::support::{Dir, Fault, Proxy, Registry, TestCommand};

const SERVICES: [&str; 3] = ["api", "web", "worker"];

/// A `gitops.toml` repository with three Dockerfile services in `registry`, production gated
/// by `gates`, committed once on `main`.
fn repository(registry: &str, gates: &str) -> Dir {
    let repo = Dir::git_repo();
    let mut config = format!("registry = \"{registry}/acme\"\nbuilder = \"podman\"\n");
    for service in SERVICES {
        config.push_str(&format!(
            "\n[images.{service}]\ndockerfile = \"{service}/Dockerfile\"\ncontext = \"{service}\"\n"
        ));
        repo.create(format!("{service}/Dockerfile"), "FROM scratch\n");
    }
    config.push_str(&format!(
        "\n[[environments]]\nname = \"production\"\ngates = {gates}\n\n[[environments]]\nname = \"staging\"\n"
    ));
    repo.create("gitops.toml", config);
    repo.commit("three services");
    repo
}

/// What the staging pipeline left for commit `sha` of every service, and a release of the
/// earlier commit `old` (`prd-0.9.0`, `prd-latest`).
fn staged_and_released(registry: &Registry, sha: &str, old: &str) {
    for service in SERVICES {
        let name = format!("acme/{service}");
        push_image(
            registry,
            &name,
            old,
            &[
                format!("commit-{old}"),
                "prd-0.9.0".to_owned(),
                "prd-latest".to_owned(),
            ],
        );
        push_image(
            registry,
            &name,
            sha,
            &[
                format!("commit-{sha}"),
                format!("stg-{}-1700000000", &sha[..7]),
                "stg-latest".to_owned(),
            ],
        );
    }
}

/// Every tag of every service with the digest it names: what "as it was" compares.
fn every_tag(registry: &Registry) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for service in SERVICES {
        let name = format!("acme/{service}");
        let mut tags = registry.tags(&name);
        tags.sort();
        for tag in tags {
            let digest = registry.digest(&name, &tag).unwrap();
            all.push((name.clone(), tag, digest));
        }
    }
    all
}

fn set_promotion(repo: &Dir, args: &[&str]) -> TestCommand {
    let mut command = TestCommand::new(repo.path());
    command
        .timeout(Duration::from_secs(120))
        .args(["build", "--all", "--ref", "refs/tags/v1.0.0"])
        .args(["--retag-with", "builtin"])
        .args(args);
    command
}

/// A repository whose head is released as v1.0.0, and the commit before it.
fn released(registry_host: &str, gates: &str) -> (Dir, String, String) {
    let repo = repository(registry_host, gates);
    let old = repo.head();
    repo.create("README.md", "# three services\n");
    let sha = repo.commit("the release");
    repo.git(["tag", "v1.0.0"]);
    (repo, sha, old)
}

/// Runs a generated CI script with bash in `repo`, with only `vars` and the cargo-gitops
/// under test on the PATH, as the CI job would; it must succeed.
fn run_as_ci(repo: &Dir, script: &str, vars: &[(&str, &str)]) {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_cargo-gitops"))
        .parent()
        .unwrap()
        .to_owned();
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(repo.path())
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", repo.path())
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        crate::support::printed(&output)
    );
}

/// Every service's `prd-1.0.0` names the image of commit `built_from(service)`.
fn assert_released(registry: &Registry, built_from: impl Fn(&str) -> String, context: &str) {
    for service in SERVICES {
        let name = format!("acme/{service}");
        assert_eq!(
            registry.digest(&name, "prd-1.0.0"),
            registry.digest(&name, &format!("commit-{}", built_from(service))),
            "{name}: {context}"
        );
    }
}

#[test]
fn every_service_of_the_set_moves_together() {
    let registry = Registry::start();
    let (repo, sha, old) = released(&registry.host(), "{ previous = \"staging\" }");
    staged_and_released(&registry, &sha, &old);
    let output = set_promotion(&repo, &["--format", "json"]).expect_exit(0);
    let report: Value = crate::support::json(&output.stdout);
    assert_eq!(report["environment"], "production", "{report}");
    let services = report["services"].as_array().unwrap();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["package"].as_str().unwrap())
        .collect();
    assert_eq!(names, SERVICES, "{report}");
    for service in services {
        assert_eq!(service["action"], "retagged", "{service}");
        assert_eq!(service["gates"][0]["outcome"], "passed", "{service}");
    }
    for service in SERVICES {
        let name = format!("acme/{service}");
        let image = registry.digest(&name, &format!("commit-{sha}")).unwrap();
        for tag in ["prd-1.0.0", "prd-latest"] {
            assert_eq!(
                registry.digest(&name, tag).as_deref(),
                Some(image.as_str()),
                "{name}:{tag}"
            );
        }
    }
}

#[test]
fn a_service_without_an_image_or_refused_by_a_gate_moves_no_tag_of_the_set() {
    let registry = Registry::start();
    let (repo, sha, old) = released(&registry.host(), "{ previous = \"staging\" }");
    staged_and_released(&registry, &sha, &old);
    // Staging moved on for worker: its newest staging tag names another image now.
    push_image(
        &registry,
        "acme/worker",
        &old,
        &["stg-0123456-1800000000".to_owned()],
    );
    let before = every_tag(&registry);
    let line = set_promotion(&repo, &["-q"]).expect_exit(1);
    let stderr = String::from_utf8_lossy(&line.stderr).into_owned();
    assert!(
        stderr.contains("error: the gates of `production` refused sha256:")
            && stderr.contains("so no tag moved"),
        "{stderr}"
    );
    assert_eq!(every_tag(&registry), before, "a refused set moved a tag");

    // A service that has no image of the release at all: web was never staged for it, and
    // production has nothing to compare it with.
    let registry2 = Registry::start();
    let (repo2, sha2, old2) = released(&registry2.host(), "{}");
    for service in ["api", "worker"] {
        push_image(
            &registry2,
            &format!("acme/{service}"),
            &sha2,
            &[format!("commit-{sha2}")],
        );
    }
    push_image(
        &registry2,
        "acme/web",
        &old2,
        &[format!("commit-{old2}"), "prd-latest".to_owned()],
    );
    let before = every_tag(&registry2);
    let line = set_promotion(&repo2, &["-q"]).one_line_error(1);
    assert!(
        line.starts_with(&format!("error: `web` has no image of commit {sha2}")),
        "{line}"
    );
    assert!(line.contains("so no tag of the set moved"), "{line}");
    assert_eq!(
        every_tag(&registry2),
        before,
        "a set with a missing image moved a tag"
    );
}

/// Refuses the manifest PUT of `worker`'s `prd-latest`: the last tag of the last service.
fn refusing_proxy(registry: &Registry) -> Proxy {
    Proxy::start(registry.port, |seen| {
        if seen.method == "PUT" && seen.path.ends_with("/acme/worker/manifests/prd-latest") {
            Fault::status(400)
        } else {
            Fault::Forward
        }
    })
}

#[test]
fn a_retag_that_fails_midway_puts_every_moved_tag_back() {
    let registry = Registry::start_olareg();
    let proxy = refusing_proxy(&registry);
    let (repo, sha, old) = released(&proxy.addr, "{}");
    staged_and_released(&registry, &sha, &old);
    let before = every_tag(&registry);
    let line = set_promotion(&repo, &["-q"]).one_line_error(1);
    assert!(
        line.starts_with(
            "error: the set promotion failed at `worker`, and every tag already moved was put back"
        ),
        "{line}"
    );
    assert!(line.contains("run it again"), "{line}");
    assert_eq!(
        every_tag(&registry),
        before,
        "the tags are not as they were before the set promotion"
    );
    // The new tags were deleted, not only moved: the registry was asked to.
    let log = proxy.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("DELETE /v2/acme/api/manifests/prd-1.0.0")),
        "{log:?}"
    );
}

#[test]
fn on_a_registry_that_deletes_no_tags_the_ones_left_are_named() {
    let registry = Registry::start();
    let proxy = refusing_proxy(&registry);
    let (repo, sha, old) = released(&proxy.addr, "{}");
    staged_and_released(&registry, &sha, &old);
    let before = every_tag(&registry);
    let line = set_promotion(&repo, &["-q"]).one_line_error(1);
    assert!(
        line.contains("could not be: ") && line.contains("the registry did not delete it"),
        "{line}"
    );
    // Every tag that existed names what it named before; the new release tags that stay are
    // each named in the error.
    let after = every_tag(&registry);
    for entry in &before {
        assert!(after.contains(entry), "{entry:?} changed: {after:?}");
    }
    for (name, tag, _) in after.iter().filter(|e| !before.contains(e)) {
        assert_eq!(tag, "prd-1.0.0", "{name}:{tag} is new");
        assert!(
            line.contains(&format!("{}/{name}:{tag}", proxy.addr)),
            "{line}"
        );
    }
}

#[test]
fn a_first_release_takes_the_images_staging_kept_for_the_services_that_did_not_change() {
    let registry = Registry::start();
    let repo = repository(&registry.host(), "{ previous = \"staging\" }");
    let earlier = repo.head();
    repo.create("api/main.txt", "api 2\n");
    let sha = repo.commit("api only");
    repo.git(["tag", "v1.0.0"]);
    // Staging built all three at the earlier commit, then only api at the release's commit:
    // web and worker got the release commit's staging tag on the image they had.
    for service in SERVICES {
        push_image(
            &registry,
            &format!("acme/{service}"),
            &earlier,
            &[
                format!("commit-{earlier}"),
                format!("stg-{}-1700000000", &earlier[..7]),
            ],
        );
    }
    push_image(
        &registry,
        "acme/api",
        &sha,
        &[
            format!("commit-{sha}"),
            format!("stg-{}-1700000100", &sha[..7]),
        ],
    );
    for service in ["web", "worker"] {
        let name = format!("acme/{service}");
        let (bytes, media_type, _) = registry
            .manifest(&name, &format!("commit-{earlier}"))
            .unwrap();
        registry.put_manifest(
            &name,
            &format!("stg-{}-1700000100", &sha[..7]),
            &bytes,
            &media_type,
        );
    }
    let output = set_promotion(&repo, &["--format", "json"]).expect_exit(0);
    let report: Value = crate::support::json(&output.stdout);
    assert_released(
        &registry,
        |service| {
            if service == "api" {
                sha.clone()
            } else {
                earlier.clone()
            }
        },
        &report.to_string(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("web is unchanged since {}", &earlier[..7])),
        "{stderr}"
    );
}

/// The `run:` of the step named `name` in the `build` job of a generated pipeline.
fn step_script(pipeline: &str, name: &str) -> String {
    let docs = yaml_rust2::YamlLoader::load_from_str(pipeline).unwrap();
    docs[0]["jobs"]["build"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|step| step["name"].as_str() == Some(name))
        .and_then(|step| step["run"].as_str())
        .unwrap_or_else(|| panic!("no step `{name}` with a run: {pipeline}"))
        .to_owned()
}

#[test]
fn the_generated_release_workflow_promotes_the_set_and_its_step_does_so_when_run() {
    let registry = Registry::start();
    let (repo, sha, old) = released(&registry.host(), "{}");
    let config = std::fs::read_to_string(repo.join("gitops.toml")).unwrap();
    repo.create(
        "gitops.toml",
        format!(
            "{config}\n[install]\nmode = \"cargo\"\n\n[registry-logins.\"{}\"]\nusername-secret = \"REGISTRY_USER\"\npassword-secret = \"REGISTRY_PASSWORD\"\n",
            registry.host()
        ),
    );
    TestCommand::new(repo.path())
        .args(["init-workflows", "-q"])
        .succeeds();
    let workflows = repo.join(".github/workflows");
    // One release workflow for the set, none per service; every other environment keeps
    // one workflow per service.
    let release = std::fs::read_to_string(workflows.join("gitops-production.yml")).unwrap();
    assert!(
        release.contains("uses: ./.github/workflows/gitops-api-pipeline.yml"),
        "{release}"
    );
    assert!(release.contains("      all: true\n"), "{release}");
    for service in SERVICES {
        assert!(
            !workflows
                .join(format!("gitops-{service}-production.yml"))
                .exists()
        );
        assert!(
            workflows
                .join(format!("gitops-{service}-staging.yml"))
                .exists()
        );
        let staging =
            std::fs::read_to_string(workflows.join(format!("gitops-{service}-staging.yml")))
                .unwrap();
        assert!(!staging.contains("all: true"), "{staging}");
    }
    crate::workflows::validate_dir(&repo);

    // The pipeline's build step, run by bash as the release's job runs it: every service's
    // tags move together.
    staged_and_released(&registry, &sha, &old);
    let pipeline = std::fs::read_to_string(workflows.join("gitops-api-pipeline.yml")).unwrap();
    let script = step_script(&pipeline, "build or retag");
    run_as_ci(
        &repo,
        &script,
        &[
            ("GITOPS_ALL", "true"),
            ("GITOPS_PACKAGE", "api"),
            ("GITOPS_ENVIRONMENT", "production"),
            ("GITOPS_INPUT_REF", "refs/tags/v1.0.0"),
        ],
    );
    assert_released(&registry, |_| sha.clone(), "the GitHub step");
}

#[test]
fn env_without_p_shows_every_service_of_the_set() {
    let (repo, sha, _) = released("ghcr.io", "{}");
    let output = TestCommand::new(repo.path())
        .args(["env", "--ref", "refs/tags/v1.0.0", "--format", "json"])
        .expect_exit(0);
    let set: Value = crate::support::json(&output.stdout);
    assert_eq!(set["environment"], "production", "{set}");
    assert_eq!(set["sha"], sha.as_str(), "{set}");
    let services = set["services"].as_array().unwrap();
    assert_eq!(services.len(), 3, "{set}");
    for (service, name) in services.iter().zip(SERVICES) {
        assert_eq!(service["package"], name, "{set}");
        assert_eq!(service["image"], format!("ghcr.io/acme/{name}"), "{set}");
        assert_eq!(service["tags"][0], "prd-1.0.0", "{set}");
        assert_eq!(service["lookup_tag"], format!("commit-{sha}"), "{set}");
    }
    let human = TestCommand::new(repo.path())
        .args(["env", "--ref", "refs/tags/v1.0.0"])
        .expect_exit(0);
    let text = String::from_utf8(human.stdout).unwrap();
    for name in SERVICES {
        assert!(text.contains(&format!("service      {name}\n")), "{text}");
        assert!(
            text.contains(&format!("ghcr.io/acme/{name}:prd-1.0.0")),
            "{text}"
        );
    }
    // One image still prints as before.
    let one = TestCommand::new(repo.path())
        .args([
            "env",
            "-p",
            "web",
            "--ref",
            "refs/tags/v1.0.0",
            "--format",
            "json",
        ])
        .expect_exit(0);
    let one: Value = crate::support::json(&one.stdout);
    assert_eq!(one["image"], "ghcr.io/acme/web", "{one}");
}

#[test]
fn the_generated_gitlab_release_job_promotes_the_set_when_run() {
    let registry = Registry::start();
    let (repo, sha, old) = released(&registry.host(), "{}");
    let config = std::fs::read_to_string(repo.join("gitops.toml")).unwrap();
    repo.create(
        "gitops.toml",
        format!("{config}\n[install]\nmode = \"cargo\"\n"),
    );
    TestCommand::new(repo.path())
        .args(["init-workflows", "-q", "--ci", "gitlab"])
        .succeeds();
    crate::gitlab::check_jsonschema(repo.path(), &[".gitlab/gitops.gitlab-ci.yml"]);
    let text = std::fs::read_to_string(repo.join(".gitlab/gitops.gitlab-ci.yml")).unwrap();
    let pipeline = &yaml_rust2::YamlLoader::load_from_str(&text).unwrap()[0];
    for service in SERVICES {
        assert!(
            pipeline[format!("gitops:{service}:production").as_str()].is_badvalue(),
            "{text}"
        );
    }
    let job = &pipeline["gitops:production"];
    let script: Vec<&str> = job["script"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    // The job's script, run by a shell with the variables GitLab gives a tag pipeline.
    staged_and_released(&registry, &sha, &old);
    run_as_ci(
        &repo,
        &script.join("\n"),
        &[
            ("GITLAB_CI", "true"),
            ("CI", "true"),
            ("CI_COMMIT_TAG", "v1.0.0"),
            ("CI_COMMIT_SHA", &sha),
            (
                "GITOPS_ENVIRONMENT",
                job["variables"]["GITOPS_ENVIRONMENT"].as_str().unwrap(),
            ),
        ],
    );
    assert_released(&registry, |_| sha.clone(), "the GitLab job");
}

#[test]
fn a_tag_another_run_moved_during_the_set_is_left_as_that_run_set_it() {
    let registry = Registry::start_olareg();
    let upstream = registry.host();
    // While the set fails at worker, another run moves api's prd-latest to an image of its own.
    let proxy = Proxy::start(registry.port, move |seen| {
        if seen.method == "PUT" && seen.path.ends_with("/acme/worker/manifests/prd-latest") {
            let moved = crate::signing::tool("crane")
                .args([
                    "tag",
                    "--insecure",
                    &format!("{upstream}/acme/api:other"),
                    "prd-latest",
                ])
                .output()
                .expect("crane must be installed: .ci/install-tools builds it");
            assert!(
                moved.status.success(),
                "{}",
                crate::support::printed(&moved)
            );
            Fault::status(400)
        } else {
            Fault::Forward
        }
    });
    let (repo, sha, old) = released(&proxy.addr, "{}");
    staged_and_released(&registry, &sha, &old);
    push_image(
        &registry,
        "acme/api",
        &"ab".repeat(20),
        &["other".to_owned()],
    );
    let theirs = registry.digest("acme/api", "other").unwrap();
    let line = set_promotion(&repo, &["-q"]).one_line_error(1);
    assert!(
        line.contains(&format!(
            "{}/acme/api:prd-latest (another run moved it since; left as that run set it)",
            proxy.addr
        )),
        "{line}"
    );
    assert_eq!(registry.digest("acme/api", "prd-latest"), Some(theirs));
    // What this run alone moved is put back: the new release tags are gone.
    for service in SERVICES {
        assert_eq!(
            registry.digest(&format!("acme/{service}"), "prd-1.0.0"),
            None,
            "{service}"
        );
    }
}

#[test]
fn a_set_whose_images_go_to_different_environments_is_refused() {
    let registry = Registry::start();
    let (repo, _, _) = released(&registry.host(), "{}");
    let config = std::fs::read_to_string(repo.join("gitops.toml")).unwrap();
    // web ships to staging only: v1.0.0 deploys it nowhere.
    repo.create(
        "gitops.toml",
        config.replace(
            "[images.web]\n",
            "[images.web]\nenvironments = [{ name = \"staging\", branches = [\"main\"] }]\n",
        ),
    );
    repo.commit("web to staging only");
    repo.git(["tag", "-f", "v1.0.0"]);
    let line = set_promotion(&repo, &["-q"]).one_line_error(2);
    assert!(
        line.contains("deploys `api` to `production` and `web` to no environment"),
        "{line}"
    );
}
