//! The dry run is the run: for a promotion across repositories, what `--dry-run --format json`
//! prints for the branch the lookup takes is exactly what the real run then runs (its commands,
//! echoed by `-v`) or sends (the registry's access log).

use serde_json::Value;

use super::build;
use crate::support::{Fixture, Registry, gitops_manifest, path_with_only};
use cargo_gitops::build::describe::WITHOUT_REFERRERS_API;

/// A fixture whose staging images go to a repository of their own, `fixture-staging`, and
/// production's to `fixture`: promoting a commit copies it across repositories.
fn cross_repository_fixture(registry: &Registry) -> Fixture {
    let fixture = Fixture::new(&registry.host(), "fixture");
    // No provenance: these tests count the requests of the retag path exactly, and copying
    // referrers is the business of the referrers tests.
    let environments = "provenance = false\n\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"staging\"\nimage = \"fixture-staging\"\n";
    fixture.create(
        "Cargo.toml",
        gitops_manifest(&registry.host(), "fixture", environments),
    );
    fixture.commit("staging images go to a repository of their own");
    fixture
}

/// Builds `main` into `fixture-staging`, then tags it `v1.0.0` and checks it out; returns the
/// digest built.
fn built_for_staging(registry: &Registry, fixture: &Fixture) -> String {
    let report = build(fixture, "podman", "builtin", &["--format", "json"]).json();
    assert_eq!(report["action"], "built");
    assert_eq!(report["environment"], "staging");
    let digest = report["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        registry
            .digest("fixture-staging", &format!("commit-{}", fixture.head()))
            .as_deref(),
        Some(digest.as_str())
    );
    assert!(registry.tags("fixture").is_empty());
    fixture.git(["tag", "-a", "-m", "release", "v1.0.0"]);
    fixture.git(["checkout", "-q", "--detach", "v1.0.0"]);
    digest
}

/// The actions of the dry run that a run whose lookup finds the image in `found_in` takes
/// when no other run races it: the lookups up to `found_in`, then every action of that
/// branch that runs unconditionally or only while the lookup tag is free. `kind` is `run`
/// (commands) or `request` (the built-in client's); placeholders become `digest`.
fn taken_actions(dry_run: &Value, found_in: &str, kind: &str, digest: &str) -> Vec<String> {
    let lookup = dry_run["lookup"].as_array().unwrap();
    let found = lookup
        .iter()
        .position(|step| {
            step["title"]
                .as_str()
                .unwrap()
                .contains(&format!("{found_in}:"))
        })
        .expect("a lookup step for the repository");
    let branch = dry_run["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["when"] == format!("found as DIGEST in {found_in}").as_str())
        .expect("a branch for the repository");
    // The lookups that found nothing, then the one that found the image, which goes on
    // to check it (`if found`).
    let missed = lookup[..found]
        .iter()
        .flat_map(|step| step["actions"].as_array().unwrap().clone())
        .filter(|action| action["when"].is_null());
    let hit = lookup[found].as_object().unwrap()["actions"]
        .as_array()
        .unwrap()
        .clone()
        .into_iter()
        .filter(|action| action["when"].is_null() || action["when"] == "if found");
    let after = branch["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|step| step["actions"].as_array().unwrap().clone());
    missed
        .chain(hit)
        .chain(after)
        .filter(|action| match action["when"].as_str() {
            None | Some("if found") => true,
            // Debian's registry has no referrers API: the referrers tag is read instead.
            Some(WITHOUT_REFERRERS_API) => true,
            Some(when) => when.starts_with("if commit-") && when.ends_with(" does not exist"),
        })
        .filter_map(|action| action[kind].as_str().map(str::to_owned))
        .map(|text| {
            // The referrers tag of a digest is `sha256-` and its hex digits.
            let tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
            text.replace("sha256-LOOKUP_DIGEST", &tag)
                .replace("sha256-DIGEST", &tag)
                .replace("LOOKUP_DIGEST", digest)
                .replace("DIGEST", digest)
        })
        .collect()
}

/// Every tag of `repository` names `digest`, and they are exactly `tags`.
fn assert_tags(registry: &Registry, repository: &str, tags: &[String], digest: &str) {
    let mut expected = tags.to_vec();
    expected.sort();
    assert_eq!(registry.tags(repository), expected);
    for tag in tags {
        assert_eq!(
            registry.digest(repository, tag).as_deref(),
            Some(digest),
            "{tag}"
        );
    }
}

#[test]
fn a_cross_repository_promotion_runs_the_commands_its_dry_run_prints() {
    let registry = Registry::start();
    let fixture = cross_repository_fixture(&registry);
    let digest = built_for_staging(&registry, &fixture);
    let sha = fixture.head();
    // No podman on PATH: a build attempt would fail; no git: it is read through git2.
    let (_bin, path) = path_with_only(&["skopeo"]);
    let args = ["--dry-run", "--format", "json"];
    let dry_run = build(&fixture, "podman", "skopeo", &args)
        .env("PATH", &path)
        .json();
    assert_eq!(dry_run["environment"], "production");
    assert_eq!(dry_run["immutable"], serde_json::json!(["prd-1.0.0"]));
    // Found in the target, found in staging's repository, or not found.
    assert_eq!(dry_run["outcomes"].as_array().unwrap().len(), 3);
    let expected = taken_actions(
        &dry_run,
        &format!("{}/fixture-staging", registry.host()),
        "run",
        &digest,
    );
    // Two lookups; the guard's; the claim's lookup and copy; a copy per tag; the converge's
    // lookups of the lookup tag, of each tag, and of the lookup tag again.
    assert_eq!(expected.len(), 2 + 1 + 2 + 2 + 4, "{expected:#?}");
    assert!(
        expected
            .iter()
            .any(|c| c.contains("fixture-staging@sha256:") && c.starts_with("skopeo copy")),
        "{expected:#?}"
    );

    let output = build(&fixture, "podman", "skopeo", &["-v", "--format", "json"])
        .env("PATH", &path)
        .expect_exit(0);
    let report = crate::support::json(&output.stdout);
    assert_eq!(report["action"], "retagged");
    assert_eq!(report["digest"], digest.as_str());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ran: Vec<String> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("$ "))
        .map(str::to_owned)
        .collect();
    assert_eq!(ran, expected, "{stderr}");
    let lookup = format!("commit-{sha}");
    let tags = [lookup.clone(), "prd-1.0.0".into(), "prd-latest".into()];
    assert_tags(&registry, "fixture", &tags, &digest);
}

#[test]
fn a_cross_repository_promotion_sends_the_requests_its_dry_run_prints() {
    let registry = Registry::start();
    let fixture = cross_repository_fixture(&registry);
    let digest = built_for_staging(&registry, &fixture);
    let args = ["--dry-run", "--format", "json"];
    let dry_run = build(&fixture, "podman", "builtin", &args).json();
    let host = registry.host();
    let expected: Vec<String> = taken_actions(
        &dry_run,
        &format!("{host}/fixture-staging"),
        "request",
        &digest,
    )
    .iter()
    .map(|request| request.replacen(&format!(" {host}/"), " /", 1))
    .collect();
    // Two lookups and the GET by digest that checks the image found is the commit's; the
    // guard's; the claim's HEAD, GET, PUT by digest and PUT of the lookup tag; the referrers
    // copy's GET of the referrers tag and of cosign's three tags; the retag's GET and PUT per
    // tag; the converge's four HEADs.
    assert_eq!(expected.len(), 2 + 1 + 1 + 4 + 4 + 3 + 4, "{expected:#?}");
    // Every one of them on a manifest: blob requests depend on the image, and are told as a note.
    assert!(
        expected.iter().all(|r| r.contains("/manifests/")),
        "{expected:#?}"
    );

    let before = registry.settled_requests().len();
    let report = build(&fixture, "podman", "builtin", &["--format", "json"]).json();
    assert_eq!(report["action"], "retagged");
    let sent: Vec<String> = registry
        .requests_since(before)
        .iter()
        .filter(|r| r.contains("/manifests/"))
        .map(|r| r.rsplit_once(' ').unwrap().0.to_owned())
        .collect();
    assert_eq!(sent, expected);
    let sha = fixture.head();
    let tags = [
        format!("commit-{sha}"),
        "prd-1.0.0".into(),
        "prd-latest".into(),
    ];
    assert_tags(&registry, "fixture", &tags, &digest);
    // Nothing was uploaded: the blobs were mounted from staging's repository.
    assert!(
        !registry.requests()[before..]
            .iter()
            .any(|r| r.starts_with("PATCH ") || (r.starts_with("PUT ") && r.contains("/blobs/"))),
        "{:?}",
        registry.requests()
    );
}

#[test]
fn a_dry_run_in_json_shows_every_branch_and_runs_nothing() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let (_bin, path) = path_with_only(&[]);
    let args = ["--dry-run", "--format", "json", "--timestamp", "1654880868"];
    let dry_run = build(&fixture, "podman", "builtin", &args)
        .env("PATH", path)
        .json();
    let host = registry.host();
    let sha = fixture.head();
    assert_eq!(dry_run["environment"], "staging");
    assert_eq!(dry_run["immutable"], serde_json::json!([]));
    assert_eq!(
        dry_run["lookup"],
        serde_json::json!([{
            "title": format!("lookup {host}/fixture:commit-{sha}"),
            "actions": [
                { "request": format!("HEAD {host}/v2/fixture/manifests/commit-{sha}") },
                {
                    "request": format!("GET {host}/v2/fixture/manifests/DIGEST"),
                    "when": "if found",
                },
                {
                    "note": "built-in client: the manifest's bytes must hash to DIGEST, and its org.opencontainers.image.revision annotation, else its config's label (an index: its first platform's), must be this commit; otherwise the run stops before any tag moves",
                    "when": "if found",
                },
            ],
        }])
    );
    let outcomes = dry_run["outcomes"].as_array().unwrap();
    let whens: Vec<&str> = outcomes
        .iter()
        .map(|o| o["when"].as_str().unwrap())
        .collect();
    assert_eq!(
        whens,
        [
            format!("found as DIGEST in {host}/fixture").as_str(),
            "not found: build once"
        ]
    );
    let titles = |branch: &Value| -> Vec<String> {
        branch["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let stg = format!("stg-{}-1654880868", &sha[..7]);
    assert_eq!(
        titles(&outcomes[0]),
        [format!("tag {host}/fixture as {stg}, stg-latest")]
    );
    assert_eq!(
        titles(&outcomes[1]),
        [
            "build with podman".to_owned(),
            format!("push {host}/fixture:{stg}"),
            format!("attach application/vnd.in-toto+json to the image in {host}/fixture"),
            format!("claim {host}/fixture:commit-{sha} unless it exists"),
            format!("tag {host}/fixture as {stg}, stg-latest"),
            "check that every tag names the same image".to_owned(),
        ]
    );
    let build_step = &outcomes[1]["steps"][0]["actions"][0]["run"];
    assert!(
        build_step
            .as_str()
            .unwrap()
            .starts_with("podman build --timestamp "),
        "{build_step}"
    );
    assert!(registry.requests().is_empty(), "{:?}", registry.requests());
}
