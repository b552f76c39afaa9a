//! What a podman build makes and where its tags end: an image that names no environment, so
//! one commit gives one digest whichever environment builds it first; the lookup tag claimed
//! by the first complete image while runs for two environments race; and versioned tags that
//! never move to another commit.

use super::build;
use crate::support::{Fixture, Podman, Registry, gitops_manifest, json, run_bounded, run_together};

/// How many times runs for staging and production race for one commit.
const RACES: u64 = 10;

/// A run's report, once it exited 0.
fn report(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json(&output.stdout)
}

#[test]
fn one_commit_gives_one_podman_image_whichever_environment_builds_it() {
    let first = Registry::start();
    let second = Registry::start();
    let fixture = Fixture::new(&first.host(), "fixture");
    let sha = fixture.head();
    fixture.git(["tag", "-a", "-m", "release", "v1.0.0"]);
    // Each run on a podman of its own, with nothing cached, as on two fresh CI runners.
    let (staging_podman, production_podman) = (Podman::new(), Podman::new());
    let staging = build(&fixture, "podman", "builtin", &["--format", "json"])
        .args(["--ref", "refs/heads/main"])
        .env("CONTAINERS_STORAGE_CONF", staging_podman.storage_conf())
        .json();
    // The same commit for production, to a registry of its own: only the working tree's
    // configuration names it.
    fixture.create("Cargo.toml", gitops_manifest(&second.host(), "fixture", ""));
    let production = build(&fixture, "podman", "builtin", &["--format", "json"])
        .args(["--ref", "refs/tags/v1.0.0"])
        .env("CONTAINERS_STORAGE_CONF", production_podman.storage_conf())
        .json();
    assert_eq!(
        (&staging["environment"], &staging["action"]),
        (&"staging".into(), &"built".into())
    );
    assert_eq!(
        (&production["environment"], &production["action"]),
        (&"production".into(), &"built".into())
    );
    assert_eq!(
        staging["digest"], production["digest"],
        "one commit, two images"
    );
    let lookup = format!("commit-{sha}");
    assert_eq!(
        second.digest("fixture", &lookup).as_deref(),
        production["digest"].as_str()
    );

    let inspect = run_bounded(
        std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--config"])
            .arg(format!("docker://{}/fixture:{lookup}", first.host())),
        120,
    );
    let labels = json(inspect.as_bytes())["config"]["Labels"].clone();
    let ours: serde_json::Map<String, serde_json::Value> = labels
        .as_object()
        .unwrap()
        .iter()
        .filter(|(key, _)| !key.starts_with("io.buildah."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        serde_json::Value::Object(ours),
        serde_json::json!({
            "org.opencontainers.image.created": "2022-06-10T17:07:48Z",
            "org.opencontainers.image.revision": sha,
            "org.opencontainers.image.title": "fixture",
        })
    );
}

/// Runs for staging (`--ref refs/heads/main`) and for production (`--ref` the tag) of the
/// commit at HEAD at once, with `builder`; returns their reports.
pub(super) fn race(
    fixture: &Fixture,
    builder: &str,
    version: &str,
    timestamp: &str,
) -> Vec<serde_json::Value> {
    let refs = [
        "refs/heads/main".to_owned(),
        format!("refs/tags/v{version}"),
    ];
    let runs: Vec<std::process::Command> = refs
        .iter()
        .enumerate()
        .map(|(i, git_ref)| {
            let args = ["-q", "--format", "json", "--timestamp", timestamp];
            let mut command = build(fixture, builder, "builtin", &args)
                .args(["--ref", git_ref.as_str()])
                .std();
            // Different source times make the two images differ, as racing builds of a
            // Dockerfile that is not reproducible do: only the claim decides which wins.
            command.env("SOURCE_DATE_EPOCH", format!("165488000{i}"));
            command
        })
        .collect();
    run_together(&runs, 120).iter().map(report).collect()
}

#[test]
fn racing_runs_for_staging_and_production_end_on_one_digest() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    // Rounds in which both runs found the lookup tag free and built: true races.
    let mut both_built = 0;
    for round in 0..RACES {
        let sha = fixture.commit(&format!("race {round}"));
        let version = format!("1.0.{round}");
        fixture.git(["tag", "-a", "-m", "release", &format!("v{version}")]);
        let timestamp = (1_654_880_900 + round).to_string();
        let reports = race(&fixture, "podman", &version, &timestamp);
        let lookup = registry
            .digest("fixture", &format!("commit-{sha}"))
            .expect("the lookup tag was claimed");
        for report in &reports {
            assert_eq!(report["digest"], lookup.as_str(), "race {round}: {report}");
        }
        if reports.iter().all(|r| r["action"] == "built") {
            both_built += 1;
        }
        let tags = [
            format!("stg-{}-{timestamp}", &sha[..7]),
            "stg-latest".to_owned(),
            format!("prd-{version}"),
            "prd-latest".to_owned(),
        ];
        for tag in tags {
            assert_eq!(
                registry.digest("fixture", &tag).as_deref(),
                Some(lookup.as_str()),
                "race {round}: {tag}"
            );
        }
    }
    assert!(both_built > 0, "the runs never raced");
}

#[test]
fn a_versioned_tag_never_moves_to_another_commit() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let host = registry.host();
    let c1 = fixture.head();
    fixture.git(["tag", "-a", "-m", "release", "v1.2.3"]);
    let first = build(&fixture, "podman", "builtin", &["--format", "json"])
        .args(["--ref", "refs/tags/v1.2.3"])
        .json();
    let d1 = first["digest"].as_str().unwrap().to_owned();
    let c2 = fixture.commit("second");
    // `1.2.3` is production's too, and gives the same tag, prd-1.2.3.
    fixture.git(["tag", "-a", "-m", "release", "1.2.3"]);
    let refused = format!("error: {host}/fixture:prd-1.2.3 already names commit {c1}");
    let promote = || {
        let mut command = build(&fixture, "podman", "builtin", &[]);
        command.args(["--ref", "refs/tags/1.2.3"]);
        command
    };

    // Never built: refused before anything is built or pushed.
    let line = promote().expect_error(1);
    assert!(line.starts_with(&refused), "{line}");
    assert_eq!(registry.digest("fixture", &format!("commit-{c2}")), None);

    // Built for staging first: refused before any tag moves.
    build(&fixture, "podman", "builtin", &["--ref", "refs/heads/main"]).succeeds();
    let line = promote().expect_error(1);
    assert!(line.starts_with(&refused), "{line}");
    for tag in ["prd-1.2.3", "prd-latest"] {
        assert_eq!(
            registry.digest("fixture", tag).as_deref(),
            Some(d1.as_str()),
            "{tag}"
        );
    }

    // The tag's own commit again is no move.
    let again = build(&fixture, "podman", "builtin", &["--format", "json"])
        .args(["--ref", "refs/tags/v1.2.3"])
        .json();
    assert_eq!(
        (&again["action"], &again["digest"]),
        (&"retagged".into(), &d1.as_str().into())
    );
}

#[test]
fn a_versioned_tag_without_a_revision_label_is_told_by_its_lookup_tag() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    // An image without labels, as another tool may push it, named by its commit's lookup tag.
    let other = "0123456789abcdef0123456789abcdef01234567";
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = registry.put_blob("fixture", config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    for tag in [format!("commit-{other}"), "prd-1.2.3".to_owned()] {
        let media_type = "application/vnd.oci.image.manifest.v1+json";
        registry.put_manifest("fixture", &tag, manifest.as_bytes(), media_type);
    }
    fixture.git(["tag", "-a", "-m", "release", "v1.2.3"]);
    let line = build(
        &fixture,
        "podman",
        "builtin",
        &["--ref", "refs/tags/v1.2.3"],
    )
    .expect_error(1);
    assert!(
        line.starts_with(&format!(
            "error: {}/fixture:prd-1.2.3 already names commit {other}",
            registry.host()
        )),
        "{line}"
    );
}
