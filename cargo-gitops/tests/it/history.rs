//! `cargo gitops history` against a real registry (Debian's `docker-registry` from the harness):
//! images are pushed as a pipeline would (blobs, then the manifest under the lookup tag and the
//! environment's tags; a promotion retags the same manifest), then the history of each
//! environment is read back through the real binary and checked against what was pushed.

use std::time::Duration;

use crate::support::{Dir, Registry, TestCommand, gitops_manifest, sha256};
use cargo_gitops::config::Config;
use cargo_gitops::deployment::deployment_for;
use cargo_gitops::environment::GitRef;
use serde_json::Value;

const IMAGE: &str = "shop";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Stores an image made for `sha` (its config names the commit, so each commit's image has a
/// digest of its own) under every tag in `tags`; returns the manifest's digest.
fn push_image(registry: &Registry, sha: &str, tags: &[String]) -> String {
    let layer = registry.put_blob(IMAGE, b"a layer that every image shares");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"org.opencontainers.image.revision":"{sha}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let config_digest = registry.put_blob(IMAGE, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":31}}]}}"#,
        config.len()
    );
    for tag in tags {
        registry.put_manifest(IMAGE, tag, manifest.as_bytes(), OCI_MANIFEST);
    }
    sha256(manifest.as_bytes())
}

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(20)
}

/// One pipeline run, as `cargo gitops build` would leave the registry: the lookup tag (or
/// `lookup` instead) and the environment's tags on the commit's image.
fn pipeline(
    registry: &Registry,
    git_ref: GitRef,
    commit: u8,
    timestamp: u64,
    lookup: Option<&str>,
) -> (Vec<String>, String) {
    let d = deployment_for(&Config::defaults(), &git_ref, &sha(commit), timestamp).unwrap();
    let mut tags = Vec::new();
    match lookup {
        Some("") => {}
        Some(other) => tags.push(other.to_owned()),
        None => tags.push(d.lookup_tag.clone()),
    }
    tags.extend(d.tags.iter().cloned());
    let digest = push_image(registry, &sha(commit), &tags);
    (d.tags, digest)
}

/// A directory with a `Cargo.toml` whose image is `shop` in `registry` (not a repository: the
/// command reads no git).
struct Project {
    dir: Dir,
}

impl Project {
    fn new(registry: &Registry) -> Project {
        let dir = Dir::new();
        dir.create("Cargo.toml", gitops_manifest(&registry.host(), IMAGE, ""));
        Project { dir }
    }

    /// `cargo gitops history ARGS`.
    fn history(&self, args: &[&str]) -> TestCommand {
        let mut command = self.dir.command();
        command
            .timeout(Duration::from_secs(60))
            .arg("history")
            .args(args);
        command
    }

    fn stdout(&self, args: &[&str]) -> String {
        self.history(args).stdout()
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--format", "json"];
        all.extend(args);
        self.history(&all).json().as_array().unwrap().clone()
    }

    /// Runs `history ARGS`, which must fail with exit `code` and one `error: ` line; returns it.
    fn error(&self, args: &[&str], code: i32) -> String {
        self.history(args).one_line_error(code)
    }
}

fn field<'v>(entry: &'v Value, key: &str) -> &'v Value {
    &entry[key]
}

#[test]
fn history_lists_what_each_environment_received_newest_first() {
    let registry = Registry::start();
    let main = || GitRef::Branch("main".into());
    let (c1, d1) = pipeline(&registry, main(), 1, 1_700_000_100, None);
    let (c2, d2) = pipeline(&registry, main(), 2, 1_700_000_200, None);
    // v1.0.0 on commit 2: a retag, same digest.
    let (p1, dp1) = pipeline(
        &registry,
        GitRef::Tag("v1.0.0".into()),
        2,
        1_700_000_250,
        None,
    );
    assert_eq!(dp1, d2);
    let (f3, d3) = pipeline(
        &registry,
        GitRef::Branch("feature/login".into()),
        3,
        1_700_000_300,
        None,
    );
    // feature/login fast-forwarded into main: staging gets commit 3's image, retagged.
    let (c3, d3s) = pipeline(&registry, main(), 3, 1_700_000_400, None);
    assert_eq!(d3s, d3);
    let (c4, d4) = pipeline(&registry, main(), 4, 1_700_000_500, None);
    let (p2, _) = pipeline(
        &registry,
        GitRef::Tag("v1.1.0".into()),
        4,
        1_700_000_550,
        None,
    );
    pipeline(
        &registry,
        GitRef::Branch("main-fix".into()),
        5,
        1_700_000_600,
        None,
    );
    // An environment with build arguments has a hashed lookup tag; an image whose lookup tag
    // was deleted still shows the short sha its tag carries.
    let hashed = format!("commit-{}-0a1b2c3d", sha(6));
    let (c6, d6) = pipeline(&registry, main(), 6, 1_700_000_700, Some(&hashed));
    let (c7, d7) = pipeline(&registry, main(), 7, 1_700_000_800, Some(""));
    let project = Project::new(&registry);

    let staging = project.json(&["staging"]);
    let tags: Vec<&str> = staging
        .iter()
        .map(|e| field(e, "tag").as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [&c7[0], &c6[0], &c4[0], &c3[0], &c2[0], &c1[0]],
        "newest first, no latest tag, no other environment"
    );
    let commits: Vec<&Value> = staging.iter().map(|e| field(e, "commit")).collect();
    assert_eq!(
        commits,
        [
            &Value::from(&sha(7)[..7]),
            &Value::from(sha(6)),
            &Value::from(sha(4)),
            &Value::from(sha(3)),
            &Value::from(sha(2)),
            &Value::from(sha(1)),
        ]
    );
    let digests: Vec<&str> = staging
        .iter()
        .map(|e| field(e, "digest").as_str().unwrap())
        .collect();
    assert_eq!(digests, [&d7, &d6, &d4, &d3, &d2, &d1]);
    assert_eq!(field(&staging[0], "timestamp"), 1_700_000_800);
    assert_eq!(field(&staging[0], "order"), "1700000800");
    assert_eq!(field(&staging[0], "version"), &Value::Null);

    // Production orders by version, not by time.
    let production = project.json(&["production"]);
    let tags: Vec<&str> = production
        .iter()
        .map(|e| field(e, "tag").as_str().unwrap())
        .collect();
    assert_eq!(tags, [&p2[0], &p1[0]]);
    assert_eq!(field(&production[1], "version"), "1.0.0");
    assert_eq!(field(&production[1], "commit"), sha(2).as_str());
    assert_eq!(field(&production[1], "digest"), d2.as_str());

    // Development: every branch, or the one asked for.
    let development = project.json(&["development"]);
    assert_eq!(development.len(), 2);
    let login = project.json(&["development", "--branch", "feature/login"]);
    assert_eq!(login.len(), 1);
    assert_eq!(field(&login[0], "tag"), f3[0].as_str());
    assert_eq!(field(&login[0], "commit"), sha(3).as_str());

    // The human table: build time, tag, short commit, digest.
    let table = project.stdout(&["staging", "--limit", "2"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("DEPLOYED (UTC)"), "{table}");
    assert!(lines[1].starts_with("2023-11-14T22:26:40Z"), "{table}");
    assert!(
        lines[1].contains(&c7[0]) && lines[1].contains(&d7),
        "{table}"
    );
    assert!(lines[2].contains(&sha(6)[..7]), "{table}");
    let table = project.stdout(&["production"]);
    assert!(table.starts_with("VERSION"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().starts_with("1.1.0 "),
        "{table}"
    );
}

#[test]
fn history_asks_for_one_digest_per_listed_tag() {
    let registry = Registry::start();
    let main = || GitRef::Branch("main".into());
    let mut staged = Vec::new();
    for commit in 1..=5u8 {
        let (tags, _) = pipeline(
            &registry,
            main(),
            commit,
            1_700_000_000 + u64::from(commit),
            None,
        );
        staged.push(tags[0].clone());
    }
    let project = Project::new(&registry);
    let before = registry.requests().len();
    let entries = project.json(&["staging", "--limit", "2"]);
    assert_eq!(entries.len(), 2);
    let requests = registry.requests_since(before);
    let heads: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("HEAD /v2/shop/manifests/stg-"))
        .collect();
    assert_eq!(heads.len(), 2, "{requests:#?}");
    assert!(heads[0].contains(&staged[4]) && heads[1].contains(&staged[3]));
    // The commit of each comes from its own lookup tag only: the sha in the tag says which.
    let lookups = requests
        .iter()
        .filter(|r| r.starts_with("HEAD /v2/shop/manifests/commit-"))
        .count();
    assert_eq!(lookups, 2, "{requests:#?}");
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("GET /v2/shop/tags/list"))
            .count(),
        1
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.starts_with("GET /v2/shop/manifests")),
        "no manifest is downloaded: {requests:#?}"
    );
}

#[test]
fn history_errors_and_empty_results() {
    let mut registry = Registry::start();
    let project = Project::new(&registry);
    // Nothing pushed yet: said on stderr, nothing on stdout, exit 0.
    let output = project.history(&["testing"]).expect_exit(0);
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no images of environment `testing`"));
    assert_eq!(project.json(&["testing"]), Vec::<Value>::new());

    let error = project.error(&["qa"], 2);
    assert!(error.contains("no environment named `qa`"), "{error}");
    let error = project.error(&["staging", "--branch", "main"], 2);
    assert!(error.contains("does not tag per branch"), "{error}");
    let error = project.error(&["testing", "--branch", "feature/x"], 2);
    assert!(
        error.contains("is not one of environment `testing`'s"),
        "{error}"
    );
    let error = project.error(&["staging", "--limit", "0"], 2);
    assert!(error.contains("--limit"), "{error}");

    registry.stop();
    let error = project.error(&["staging"], 1);
    assert!(error.contains("cannot reach registry"), "{error}");
}
