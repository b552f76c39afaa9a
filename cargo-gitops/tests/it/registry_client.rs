//! The built-in registry client (`Retagger` with `RetaggerKind::Builtin`, `RegistryClient`)
//! against a real `docker-registry`, with images pushed by podman and by skopeo: byte-exact
//! retags of every manifest format, the exact requests a retag costs (read from the registry's
//! access log), basic authentication through the library and the command line, retries behind
//! a fault-injecting proxy, and promotion across repositories and registries. Results are read
//! back through the registry's own HTTP API, never through the client under test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{
    Dir, Fault, Fixture, Podman, Proxy, Registry, json, printed, run_bounded, scratch_context,
};
use cargo_gitops::build::retag::Retagger;
use cargo_gitops::config::RetaggerKind;
use cargo_gitops::registry::client::{
    ClientOptions, RegistryClient, Repository, RetryPolicy, Scope,
};
use cargo_gitops::registry::credentials::Credential;

mod hardening;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Short retries, so fault tests stay within seconds.
fn fast_options() -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            attempts: 5,
            budget: Duration::from_secs(10),
            base_delay: Duration::from_millis(50),
        },
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

fn builtin(credential: Option<Credential>) -> Retagger {
    Retagger::new(RetaggerKind::Builtin, fast_options(), credential)
}

fn repo(host: &str, name: &str) -> Repository {
    Repository::parse(&format!("{host}/{name}")).unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Builds the `FROM scratch` image and pushes it to `registry` as `name:tag` in `format`
/// (`v2s2` or `oci`); returns the digest the registry reports for it.
fn push_podman(
    podman: &Podman,
    registry: &Registry,
    name: &str,
    tag: &str,
    format: &str,
    creds: Option<(&str, &str)>,
) -> String {
    let context = scratch_context();
    // Under a lookup tag, the image names its commit as the tool's own builds do: a build
    // checks it before retagging.
    let labels: Vec<String> = cargo_gitops::tags::lookup_commit(tag)
        .map(|sha| format!("org.opencontainers.image.revision={sha}"))
        .into_iter()
        .collect();
    podman.build_labelled(context.path(), "localhost/fixture:latest", None, &labels);
    let creds = creds.map(|(u, p)| format!("{u}:{p}"));
    podman.push(
        "localhost/fixture:latest",
        &format!("{}/{name}:{tag}", registry.host()),
        format,
        creds.as_deref(),
    );
    registry
        .digest_as(name, tag, creds.as_deref().and_then(|c| c.split_once(':')))
        .expect("podman pushed the tag")
}

/// Builds the image for linux/amd64 and linux/arm64 and pushes both with an index (`oci`) or
/// a manifest list (`v2s2`) as `name:tag`; returns the index's digest.
fn push_multi_platform(
    podman: &Podman,
    registry: &Registry,
    name: &str,
    tag: &str,
    format: &str,
) -> String {
    let context = scratch_context();
    let list = format!("localhost/multi-{format}:latest");
    podman.build(context.path(), "localhost/multi:amd64", Some("linux/amd64"));
    podman.build(context.path(), "localhost/multi:arm64", Some("linux/arm64"));
    podman.run(&["manifest", "create", &list]);
    for arch in ["amd64", "arm64"] {
        podman.run(&[
            "manifest",
            "add",
            &list,
            &format!("containers-storage:localhost/multi:{arch}"),
        ]);
    }
    podman.run(&[
        "manifest",
        "push",
        "-q",
        "--all",
        "--format",
        format,
        "--tls-verify=false",
        &list,
        &format!("docker://{}/{name}:{tag}", registry.host()),
    ]);
    registry
        .digest(name, tag)
        .expect("podman pushed the manifest list")
}

/// Makes an OCI layout with umoci (one layer: the static binary) and pushes it with
/// `skopeo copy` as `name:tag`; returns the digest the registry reports.
fn push_skopeo(registry: &Registry, name: &str, tag: &str) -> String {
    let dir = Dir::new();
    let layout = dir.join("layout");
    let image = format!("{}:v1", layout.display());
    let binary = crate::support::static_binary();
    run_bounded(
        std::process::Command::new("umoci").args(["init", "--layout", layout.to_str().unwrap()]),
        60,
    );
    run_bounded(
        std::process::Command::new("umoci").args(["new", "--image", &image]),
        60,
    );
    run_bounded(
        std::process::Command::new("umoci").args([
            "insert",
            "--image",
            &image,
            binary.to_str().unwrap(),
            "/hello",
        ]),
        60,
    );
    run_bounded(
        std::process::Command::new("umoci").args([
            "config",
            "--image",
            &image,
            "--config.entrypoint",
            "/hello",
        ]),
        60,
    );
    run_bounded(
        std::process::Command::new("skopeo").args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            &format!("docker://{}/{name}:{tag}", registry.host()),
        ]),
        120,
    );
    registry.digest(name, tag).expect("skopeo pushed the tag")
}

/// The config and layer digests of a single-platform manifest, as the registry serves it.
fn blobs_of(registry: &Registry, name: &str, digest: &str) -> Vec<String> {
    let (bytes, _, _) = registry.manifest(name, digest).unwrap();
    let manifest = json(&bytes);
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    blobs.extend(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_owned()),
    );
    blobs
}

/// The child manifest digests of an index, in order.
fn children_of(registry: &Registry, name: &str, digest: &str) -> Vec<String> {
    let (bytes, _, _) = registry.manifest(name, digest).unwrap();
    json(&bytes)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Retags `digest` of `name` to `tags` in the same repository and checks, through the
/// registry's API, that the registry logged exactly one GET of the manifest and one PUT per
/// tag, and that each tag serves the source's bytes, media type and digest.
fn assert_retag_is_one_get_and_one_put_per_tag(
    registry: &Registry,
    name: &str,
    digest: &str,
    tags: &[&str],
) {
    let source = registry.manifest(name, digest).unwrap();
    let retagger = builtin(None);
    let repository = repo(&registry.host(), name);
    let before = registry.settled_requests().len();
    retagger
        .retag(&repository, digest, &repository, &strings(tags))
        .unwrap();
    let mut expected = vec![format!("GET /v2/{name}/manifests/{digest} 200")];
    expected.extend(
        tags.iter()
            .map(|t| format!("PUT /v2/{name}/manifests/{t} 201")),
    );
    assert_eq!(registry.requests_since(before), expected);
    assert_eq!(retagger.request_count() as usize, expected.len());
    for tag in tags {
        let copy = registry.manifest(name, tag).unwrap();
        assert_eq!(copy.2, digest, "{tag}: digest");
        assert_eq!(copy.1, source.1, "{tag}: Content-Type");
        assert!(copy.0 == source.0, "{tag}: manifest bytes differ");
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Retags of images pushed by podman and by skopeo: one GET and one PUT per tag.

#[test]
fn retags_a_podman_pushed_image_with_one_get_and_one_put_per_tag() {
    let registry = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &registry, "app", "commit-a", "v2s2", None);
    assert_retag_is_one_get_and_one_put_per_tag(
        &registry,
        "app",
        &digest,
        &["prd-1.0.0", "prd-1.0", "prd-latest"],
    );
    assert_eq!(
        registry.tags("app"),
        ["commit-a", "prd-1.0", "prd-1.0.0", "prd-latest"]
    );
}

#[test]
fn retags_a_skopeo_pushed_image_with_one_get_and_one_put_per_tag() {
    let registry = Registry::start();
    let digest = push_skopeo(&registry, "app", "commit-b");
    let (_, media_type, _) = registry.manifest("app", &digest).unwrap();
    assert_eq!(media_type, OCI_MANIFEST);
    assert_retag_is_one_get_and_one_put_per_tag(
        &registry,
        "app",
        &digest,
        &["prd-1.0.0", "prd-1.0", "prd-latest"],
    );
}

#[test]
fn a_cli_promotion_is_one_head_one_get_and_one_put_per_tag() {
    // And the check that the image found is the commit's (its manifest and config), and one
    // HEAD of the versioned tag, which must not name another commit.
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let sha = fixture.head();
    let podman = Podman::new();
    let digest = push_podman(
        &podman,
        &registry,
        "fixture",
        &format!("commit-{sha}"),
        "oci",
        None,
    );
    let config = json(&registry.manifest("fixture", &digest).unwrap().0)["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = registry.settled_requests().len();
    let args = [
        "--ref",
        "refs/tags/v1.0.0",
        "--sha",
        &sha,
        "--format",
        "json",
        "-v",
    ];
    let output = fixture.build("builtin", &args).expect_exit(0);
    let report = json(&output.stdout);
    assert_eq!(report["action"], "retagged");
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(
        registry.requests_since(before),
        [
            format!("HEAD /v2/fixture/manifests/commit-{sha} 200"),
            // The image found is checked to be the commit's: its manifest and its config.
            format!("GET /v2/fixture/manifests/{digest} 200"),
            format!("GET /v2/fixture/blobs/{config} 200"),
            // The versioned tag is checked first: it never moves to another commit.
            "HEAD /v2/fixture/manifests/prd-1.0.0 404".to_owned(),
            format!("GET /v2/fixture/manifests/{digest} 200"),
            "PUT /v2/fixture/manifests/prd-1.0.0 201".to_owned(),
            "PUT /v2/fixture/manifests/prd-latest 201".to_owned(),
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("built-in registry client: 7 requests"),
        "{stderr}"
    );
    for tag in ["prd-1.0.0", "prd-latest"] {
        assert_eq!(registry.digest("fixture", tag).as_deref(), Some(&*digest));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Every manifest format is kept byte for byte, media type included.

#[test]
fn every_manifest_format_keeps_its_bytes_media_type_and_digest() {
    let registry = Registry::start();
    let podman = Podman::new();
    let v2s2 = push_podman(&podman, &registry, "formats", "v2s2", "v2s2", None);
    let oci = push_podman(&podman, &registry, "formats", "oci", "oci", None);
    let oci_index = push_multi_platform(&podman, &registry, "formats", "oci-index", "oci");
    let docker_list = push_multi_platform(&podman, &registry, "formats", "docker-list", "v2s2");
    let cases = [
        ("v2s2", &v2s2, DOCKER_MANIFEST),
        ("oci", &oci, OCI_MANIFEST),
        ("oci-index", &oci_index, OCI_INDEX),
        ("docker-list", &docker_list, DOCKER_LIST),
    ];
    let mut digests: Vec<&String> = cases.iter().map(|c| c.1).collect();
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), 4, "four different manifests: {cases:?}");
    for (tag, digest, media_type) in cases {
        let (_, served, _) = registry.manifest("formats", digest).unwrap();
        assert_eq!(served, media_type, "{tag} was pushed as {media_type}");
        assert_retag_is_one_get_and_one_put_per_tag(
            &registry,
            "formats",
            digest,
            &[&format!("{tag}-copy-1"), &format!("{tag}-copy-2")],
        );
    }
    // The platforms of the index are both there, each a manifest of its own.
    assert_eq!(children_of(&registry, "formats", &oci_index).len(), 2);
    assert_eq!(children_of(&registry, "formats", &docker_list).len(), 2);
}

// ---------------------------------------------------------------------------------------------
// 3. Immutable tags.

#[test]
fn retagging_a_tag_already_on_the_digest_succeeds() {
    let registry = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &registry, "app", "commit-a", "oci", None);
    let retagger = builtin(None);
    let app = repo(&registry.host(), "app");
    let tags = strings(&["prd-1.0.0", "prd-latest"]);
    retagger.retag(&app, &digest, &app, &tags).unwrap();
    retagger.retag(&app, &digest, &app, &tags).unwrap();
    // The lookup tag itself, too.
    retagger
        .retag(&app, &digest, &app, &strings(&["commit-a"]))
        .unwrap();
    for tag in ["commit-a", "prd-1.0.0", "prd-latest"] {
        assert_eq!(registry.digest("app", tag).as_deref(), Some(&*digest));
    }
}

/// A registry with immutable tags (as ECR or Harbor can be set up) refuses any PUT to an
/// existing tag; the proxy plays that part for `prd-1.0.0` and `other`.
#[test]
fn an_immutable_tag_refusal_is_success_only_when_the_tag_is_already_on_the_digest() {
    let registry = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &registry, "app", "prd-1.0.0", "v2s2", None);
    let other = push_podman(&podman, &registry, "app", "other", "oci", None);
    assert_ne!(digest, other);
    let proxy = Proxy::start(registry.port, |s| {
        let immutable = s.path.ends_with("/manifests/prd-1.0.0") || s.path.ends_with("/other");
        if s.method == "PUT" && immutable {
            Fault::Answer(
                400,
                vec![("Content-Type", "application/json".to_owned())],
                br#"{"errors":[{"code":"TAG_INVALID","message":"tag is immutable"}]}"#.to_vec(),
            )
        } else {
            Fault::Forward
        }
    });
    let retagger = builtin(None);
    let app = repo(&proxy.addr, "app");
    retagger
        .retag(&app, &digest, &app, &strings(&["prd-1.0.0"]))
        .unwrap();
    assert_eq!(
        proxy.log(),
        [
            format!("GET /v2/app/manifests/{digest} 200"),
            "PUT /v2/app/manifests/prd-1.0.0 400 injected".to_owned(),
            "HEAD /v2/app/manifests/prd-1.0.0 200".to_owned(),
        ]
    );
    let err = retagger
        .retag(&app, &digest, &app, &strings(&["other"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&proxy.addr) && err.contains("HTTP 400") && err.contains("TAG_INVALID"),
        "{err}"
    );
    assert_eq!(registry.digest("app", "other").as_deref(), Some(&*other));
}

// ---------------------------------------------------------------------------------------------
// 4. Basic authentication.

const USER: &str = "ci";
const PASSWORD: &str = "Right-Pa55word-7f3a";
const WRONG: &str = "Wrong-Pa55word-c41e";

fn unauthorised(requests: &[String]) -> usize {
    requests.iter().filter(|r| r.ends_with(" 401")).count()
}

#[test]
fn basic_auth_through_the_library_answers_one_challenge() {
    let registry = Registry::start_with_user(USER, PASSWORD);
    let podman = Podman::new();
    let digest = push_podman(
        &podman,
        &registry,
        "app",
        "commit-a",
        "oci",
        Some((USER, PASSWORD)),
    );
    let app = repo(&registry.host(), "app");
    let before = registry.settled_requests().len();
    let retagger = builtin(Some(Credential::new(USER, PASSWORD)));
    assert_eq!(
        retagger.lookup(&app, "commit-a").unwrap().as_deref(),
        Some(&*digest)
    );
    retagger
        .retag(&app, &digest, &app, &strings(&["a", "b", "c"]))
        .unwrap();
    let requests = registry.requests_since(before);
    assert_eq!(
        requests,
        [
            "HEAD /v2/app/manifests/commit-a 401".to_owned(),
            "HEAD /v2/app/manifests/commit-a 200".to_owned(),
            format!("GET /v2/app/manifests/{digest} 200"),
            "PUT /v2/app/manifests/a 201".to_owned(),
            "PUT /v2/app/manifests/b 201".to_owned(),
            "PUT /v2/app/manifests/c 201".to_owned(),
        ]
    );
    let auth = Some((USER, PASSWORD));
    for tag in ["a", "b", "c"] {
        assert_eq!(
            registry.digest_as("app", tag, auth).as_deref(),
            Some(&*digest)
        );
    }

    for credential in [Some(Credential::new(USER, WRONG)), None] {
        let anonymous = credential.is_none();
        let err = builtin(credential)
            .retag(&app, &digest, &app, &strings(&["d"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("not logged in to {}", registry.host())),
            "{err}"
        );
        assert!(
            !err.contains(WRONG) && !err.contains(PASSWORD),
            "anonymous={anonymous}: {err}"
        );
    }
    assert!(registry.digest_as("app", "d", auth).is_none());
}

/// The CLI with credentials from stdin, the variables and Docker's `config.json`: each works,
/// answers one 401 per run, and prints no password, right or wrong.
#[test]
fn basic_auth_through_the_cli_never_prints_the_password() {
    let registry = Registry::start_with_user(USER, PASSWORD);
    let fixture = Fixture::new(&registry.host(), "fixture");
    let sha = fixture.head();
    let short = &sha[..7];
    let podman = Podman::new();
    let digest = push_podman(
        &podman,
        &registry,
        "fixture",
        &format!("commit-{sha}"),
        "oci",
        Some((USER, PASSWORD)),
    );
    let auth = Some((USER, PASSWORD));
    let docker_config = Dir::new();
    {
        use base64::Engine as _;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        docker_config.create(
            "config.json",
            format!(
                r#"{{"auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#,
                registry.host()
            ),
        );
    }
    let build = |timestamp: &str| fixture.build("builtin", &["-v", "--timestamp", timestamp]);
    let flag_args = ["--registry-user", USER, "--registry-password-stdin"];

    // Right password on stdin, from the variables, from config.json.
    let mut stdin = build("1654880001");
    stdin.args(flag_args).write_stdin(format!("{PASSWORD}\n"));
    let mut variables = build("1654880002");
    variables
        .env("GITOPS_REGISTRY_USER", USER)
        .env("GITOPS_REGISTRY_PASSWORD", PASSWORD);
    let mut config_file = build("1654880003");
    config_file.env("DOCKER_CONFIG", docker_config.path());
    for (how, mut command, timestamp) in [
        ("stdin", stdin, "1654880001"),
        ("variables", variables, "1654880002"),
        ("config.json", config_file, "1654880003"),
    ] {
        let before = registry.settled_requests().len();
        let output = command.output();
        let all = printed(&output);
        assert!(output.status.success(), "{how}: {all}");
        assert!(all.contains("retagged"), "{how}: {all}");
        assert!(!all.contains(PASSWORD), "{how} printed the password: {all}");
        let requests = registry.requests_since(before);
        assert_eq!(unauthorised(&requests), 1, "{how}: {requests:?}");
        // The lookup (challenged once), the check that the image is the commit's (manifest
        // and config), the retag's GET and a PUT per tag.
        assert_eq!(requests.len(), 7, "{how}: {requests:?}");
        assert!(
            all.contains("built-in registry client: 7 requests"),
            "{how}: {all}"
        );
        let tag = format!("stg-{short}-{timestamp}");
        assert_eq!(
            registry.digest_as("fixture", &tag, auth).as_deref(),
            Some(&*digest),
            "{how}"
        );
    }

    // Wrong password on stdin, and from the variables.
    let mut stdin = build("1654880004");
    stdin.args(flag_args).write_stdin(format!("{WRONG}\n"));
    let mut variables = build("1654880005");
    variables
        .env("GITOPS_REGISTRY_USER", USER)
        .env("GITOPS_REGISTRY_PASSWORD", WRONG);
    for (how, mut command) in [("stdin", stdin), ("variables", variables)] {
        let output = command.expect_exit(1);
        let all = printed(&output);
        assert!(
            all.contains(&format!("not logged in to {}", registry.host())),
            "{how}: {all}"
        );
        assert!(
            !all.contains(WRONG) && !all.contains(PASSWORD),
            "{how} printed a password: {all}"
        );
    }
    for timestamp in ["1654880004", "1654880005"] {
        let tag = format!("stg-{short}-{timestamp}");
        assert!(registry.digest_as("fixture", &tag, auth).is_none());
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Faults, through the proxy.

/// A registry with `app:commit-a`, and the tags a retag should add.
fn faulty_setup() -> (Registry, Podman, String) {
    let registry = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &registry, "app", "commit-a", "oci", None);
    (registry, podman, digest)
}

const TARGET_TAGS: [&str; 3] = ["prd-1.0.0", "prd-1.0", "prd-latest"];

fn assert_tags_moved(registry: &Registry, digest: &str) {
    for tag in TARGET_TAGS {
        assert_eq!(
            registry.digest("app", tag).as_deref(),
            Some(digest),
            "{tag}"
        );
    }
}

fn assert_no_tag_moved(registry: &Registry) {
    assert_eq!(registry.tags("app"), ["commit-a"]);
}

fn expected_retag_log(digest: &str) -> Vec<String> {
    let mut log = vec![format!("GET /v2/app/manifests/{digest} 200")];
    log.extend(TARGET_TAGS.map(|t| format!("PUT /v2/app/manifests/{t} 201")));
    log
}

#[test]
fn answers_503_are_retried_within_the_budget() {
    let (registry, _podman, digest) = faulty_setup();
    let proxy = Proxy::start(registry.port, |s| {
        if s.index < 3 {
            Fault::status(503)
        } else {
            Fault::Forward
        }
    });
    let app = repo(&proxy.addr, "app");
    let started = Instant::now();
    builtin(None)
        .retag(&app, &digest, &app, &strings(&TARGET_TAGS))
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut expected = vec![format!("GET /v2/app/manifests/{digest} 503 injected"); 3];
    expected.extend(expected_retag_log(&digest));
    assert_eq!(proxy.log(), expected);
    assert_tags_moved(&registry, &digest);
}

#[test]
fn a_429_with_retry_after_is_waited_out() {
    let (registry, _podman, digest) = faulty_setup();
    let proxy = Proxy::start(registry.port, |s| {
        if s.index == 0 {
            Fault::Answer(429, vec![("Retry-After", "1".to_owned())], Vec::new())
        } else {
            Fault::Forward
        }
    });
    let app = repo(&proxy.addr, "app");
    let started = Instant::now();
    builtin(None)
        .retag(&app, &digest, &app, &strings(&TARGET_TAGS))
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let mut expected = vec![format!("GET /v2/app/manifests/{digest} 429 injected")];
    expected.extend(expected_retag_log(&digest));
    assert_eq!(proxy.log(), expected);
    assert_tags_moved(&registry, &digest);
}

#[test]
fn a_connection_closed_before_the_answer_is_retried() {
    let (registry, _podman, digest) = faulty_setup();
    let proxy = Proxy::start(registry.port, |s| {
        // The first GET, and the PUT of the second tag (the log below shows which is which).
        if s.index == 0 || s.index == 3 {
            Fault::Close
        } else {
            Fault::Forward
        }
    });
    let app = repo(&proxy.addr, "app");
    builtin(None)
        .retag(&app, &digest, &app, &strings(&TARGET_TAGS))
        .unwrap();
    assert_eq!(
        proxy.log(),
        [
            format!("GET /v2/app/manifests/{digest} closed"),
            format!("GET /v2/app/manifests/{digest} 200"),
            "PUT /v2/app/manifests/prd-1.0.0 201".to_owned(),
            "PUT /v2/app/manifests/prd-1.0 closed".to_owned(),
            "PUT /v2/app/manifests/prd-1.0 201".to_owned(),
            "PUT /v2/app/manifests/prd-latest 201".to_owned(),
        ]
    );
    assert_tags_moved(&registry, &digest);
}

#[test]
fn a_connection_dropped_mid_body_on_the_manifest_get_is_retried() {
    let (registry, _podman, digest) = faulty_setup();
    let proxy = Proxy::start(registry.port, |s| {
        if s.index == 0 {
            Fault::CutBody
        } else {
            Fault::Forward
        }
    });
    let app = repo(&proxy.addr, "app");
    let result = builtin(None).retag(&app, &digest, &app, &strings(&TARGET_TAGS));
    assert!(result.is_ok(), "{}", result.unwrap_err());
    let mut expected = vec![format!("GET /v2/app/manifests/{digest} 200 cut")];
    expected.extend(expected_retag_log(&digest));
    assert_eq!(proxy.log(), expected);
    assert_tags_moved(&registry, &digest);
}

#[test]
fn more_failures_than_the_attempts_fail_cleanly_and_move_no_tag() {
    let (registry, _podman, digest) = faulty_setup();
    let proxy = Proxy::start(registry.port, |_| Fault::status(503));
    let app = repo(&proxy.addr, "app");
    let started = Instant::now();
    let err = builtin(None)
        .retag(&app, &digest, &app, &strings(&TARGET_TAGS))
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        err,
        format!("{}: read manifest failed: HTTP 503", proxy.addr),
        "{err}"
    );
    assert_eq!(
        proxy.log(),
        vec![format!("GET /v2/app/manifests/{digest} 503 injected"); 5]
    );
    assert_no_tag_moved(&registry);
}

#[test]
fn a_retry_after_beyond_the_budget_gives_up_at_once_and_moves_no_tag() {
    let (registry, _podman, digest) = faulty_setup();
    let proxy = Proxy::start(registry.port, |_| {
        Fault::Answer(429, vec![("Retry-After", "30".to_owned())], Vec::new())
    });
    let app = repo(&proxy.addr, "app");
    let started = Instant::now();
    let err = builtin(None)
        .retag(&app, &digest, &app, &strings(&TARGET_TAGS))
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(2), "waited");
    assert!(
        err.starts_with(&format!(
            "{}: read manifest failed: gave up after 1 attempts",
            proxy.addr
        )) && err.contains("retry budget 10s"),
        "{err}"
    );
    assert_eq!(proxy.log().len(), 1);
    assert_no_tag_moved(&registry);
}

#[test]
fn a_connection_refused_fails_naming_the_registry() {
    let port = crate::support::free_port();
    let host = format!("127.0.0.1:{port}");
    let app = repo(&host, "app");
    let started = Instant::now();
    let err = builtin(None)
        .lookup(&app, "commit-a")
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        err,
        format!(
            "cannot reach registry {host} during lookup; check that it is running and reachable"
        )
    );
}

#[test]
fn a_failed_blob_mount_moves_no_tag_in_the_target() {
    let registry = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &registry, "app-staging", "commit-a", "oci", None);
    let proxy = Proxy::start(registry.port, |s| {
        if s.method == "POST" {
            Fault::status(503)
        } else {
            Fault::Forward
        }
    });
    let err = builtin(None)
        .retag(
            &repo(&proxy.addr, "app-staging"),
            &digest,
            &repo(&proxy.addr, "app"),
            &strings(&TARGET_TAGS),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&proxy.addr) && err.contains("mount blob"),
        "{err}"
    );
    assert!(
        registry.tags("app").is_empty(),
        "{:?}",
        registry.tags("app")
    );
    assert!(registry.manifest("app", &digest).is_none());
    assert!(
        !proxy.log().iter().any(|r| r.starts_with("PUT ")),
        "{:?}",
        proxy.log()
    );
}

/// Across registries, the source behind the proxy: the first blob download is cut half way.
/// The download is started over, into the same temporary file, and the promotion completes;
/// the upload opens only once the blob is whole and checked.
#[test]
fn a_blob_download_cut_mid_way_across_registries_is_started_over() {
    let source = Registry::start();
    let target = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &source, "app", "commit-a", "oci", None);
    let blobs = blobs_of(&source, "app", &digest);
    let cut = Arc::new(AtomicBool::new(false));
    let proxy = {
        let cut = cut.clone();
        Proxy::start(source.port, move |s| {
            if s.path.contains("/blobs/") && !cut.swap(true, Ordering::SeqCst) {
                Fault::CutBody
            } else {
                Fault::Forward
            }
        })
    };
    builtin(None)
        .retag(
            &repo(&proxy.addr, "app"),
            &digest,
            &repo(&target.host(), "app"),
            &strings(&TARGET_TAGS),
        )
        .unwrap();
    let mut expected = vec![
        format!("GET /v2/app/manifests/{digest} 200"),
        format!("GET /v2/app/blobs/{} 200 cut", blobs[0]),
    ];
    expected.extend(blobs.iter().map(|b| format!("GET /v2/app/blobs/{b} 200")));
    assert_eq!(proxy.log(), expected);
    for tag in TARGET_TAGS {
        assert_eq!(target.digest("app", tag).as_deref(), Some(&*digest));
    }
    // One upload session per blob: the cut download never opened one.
    let uploads = target
        .settled_requests()
        .iter()
        .filter(|r| r.starts_with("POST /v2/app/blobs/uploads/"))
        .count();
    assert_eq!(uploads, blobs.len());
}

/// Across registries, the target behind the proxy answers the first blob upload `503`, as a
/// load balancer in front of a registry does. The RetryPolicy says 5xx are retried.
#[test]
fn a_503_on_a_streamed_blob_upload_is_retried() {
    let source = Registry::start();
    let target = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &source, "app", "commit-a", "oci", None);
    let failed = Arc::new(AtomicBool::new(false));
    let proxy = {
        let failed = failed.clone();
        Proxy::start(target.port, move |s| {
            if s.method == "PUT"
                && s.path.contains("/blobs/uploads/")
                && !failed.swap(true, Ordering::SeqCst)
            {
                Fault::status(503)
            } else {
                Fault::Forward
            }
        })
    };
    let result = builtin(None).retag(
        &repo(&source.host(), "app"),
        &digest,
        &repo(&proxy.addr, "app"),
        &strings(&TARGET_TAGS),
    );
    assert!(result.is_ok(), "{}", result.unwrap_err());
    for tag in TARGET_TAGS {
        assert_eq!(target.digest("app", tag).as_deref(), Some(&*digest));
    }
}

/// A registry that wants bearer tokens (as GHCR, Docker Hub, ECR do), played by the proxy: a
/// request without `Bearer token-for-SCOPE` gets a 401 challenge naming the proxy's `/token`.
/// The handshake is made once per scope and the token is reused for every later request.
#[test]
fn bearer_tokens_are_fetched_once_per_scope() {
    let (registry, _podman, digest) = faulty_setup();
    let proxy = Proxy::start(registry.port, |s| {
        if let Some(query) = s.path.strip_prefix("/token?") {
            let has_credential = s.authorization.is_some_and(|a| a.starts_with("Basic "));
            let push = query.contains("push");
            let token = if push { "token-push" } else { "token-pull" };
            return if has_credential {
                let body = serde_json::json!({ "token": token });
                Fault::Answer(200, Vec::new(), body.to_string().into_bytes())
            } else {
                Fault::status(401)
            };
        }
        if s.authorization
            .is_some_and(|a| a.starts_with("Bearer token-"))
        {
            return Fault::Forward;
        }
        let scope = if s.method == "HEAD" || s.method == "GET" {
            "pull"
        } else {
            "pull,push"
        };
        let challenge = format!(
            "Bearer realm=\"http://{}/token\",service=\"proxy\",scope=\"repository:app:{scope}\"",
            s.host
        );
        Fault::Answer(401, vec![("WWW-Authenticate", challenge)], Vec::new())
    });
    let app = repo(&proxy.addr, "app");
    let retagger = builtin(Some(Credential::new(USER, PASSWORD)));
    assert_eq!(
        retagger.lookup(&app, "commit-a").unwrap().as_deref(),
        Some(&*digest)
    );
    assert_eq!(retagger.lookup(&app, "commit-b").unwrap().as_deref(), None);
    retagger
        .retag(&app, &digest, &app, &strings(&TARGET_TAGS))
        .unwrap();
    let log: Vec<String> = proxy
        .log()
        .into_iter()
        .map(|r| match r.split_once('?') {
            Some((token, _)) if token.ends_with("/token") => format!("{token} (token)"),
            _ => r,
        })
        .collect();
    let mut expected = vec![
        "HEAD /v2/app/manifests/commit-a 401 injected".to_owned(),
        "GET /token (token)".to_owned(),
        "HEAD /v2/app/manifests/commit-a 200".to_owned(),
        "HEAD /v2/app/manifests/commit-b 404".to_owned(),
        // The retag asks for push: a second scope, a second handshake, then none.
        format!("GET /v2/app/manifests/{digest} 401 injected"),
        "GET /token (token)".to_owned(),
        format!("GET /v2/app/manifests/{digest} 200"),
    ];
    expected.extend(TARGET_TAGS.map(|t| format!("PUT /v2/app/manifests/{t} 201")));
    assert_eq!(log, expected);
    assert_tags_moved(&registry, &digest);

    // Without a credential the token service says no: not logged in, no tag moved.
    let err = builtin(None)
        .retag(&app, &digest, &app, &strings(&["other"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("not logged in to {}", proxy.addr)),
        "{err}"
    );
    assert!(registry.digest("app", "other").is_none());
}

// ---------------------------------------------------------------------------------------------
// 6. Promotion across repositories and registries.

#[test]
fn a_promotion_within_a_registry_mounts_the_blobs() {
    let registry = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &registry, "app-staging", "commit-a", "oci", None);
    let blobs = blobs_of(&registry, "app-staging", &digest);
    let before = registry.settled_requests().len();
    let retagger = builtin(None);
    retagger
        .retag(
            &repo(&registry.host(), "app-staging"),
            &digest,
            &repo(&registry.host(), "app"),
            &strings(&TARGET_TAGS),
        )
        .unwrap();
    let mut expected = vec![format!("GET /v2/app-staging/manifests/{digest} 200")];
    for blob in &blobs {
        expected.push(format!("HEAD /v2/app/blobs/{blob} 404"));
        expected.push(format!(
            "POST /v2/app/blobs/uploads/?mount={blob}&from=app-staging 201"
        ));
    }
    expected.push(format!("PUT /v2/app/manifests/{digest} 201"));
    expected.extend(TARGET_TAGS.map(|t| format!("PUT /v2/app/manifests/{t} 201")));
    assert_eq!(registry.requests_since(before), expected);
    assert_eq!(retagger.request_count() as usize, expected.len());
    assert_tags_moved(&registry, &digest);
    assert_eq!(registry.tags("app-staging"), ["commit-a"]);
}

#[test]
fn a_promotion_across_registries_streams_the_blobs_and_keeps_the_digest() {
    let source = Registry::start();
    let target = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &source, "app", "commit-a", "v2s2", None);
    let blobs = blobs_of(&source, "app", &digest);
    let source_before = source.settled_requests().len();
    builtin(None)
        .retag(
            &repo(&source.host(), "app"),
            &digest,
            &repo(&target.host(), "app"),
            &strings(&TARGET_TAGS),
        )
        .unwrap();
    let mut expected = vec![format!("GET /v2/app/manifests/{digest} 200")];
    expected.extend(blobs.iter().map(|b| format!("GET /v2/app/blobs/{b} 200")));
    assert_eq!(source.requests_since(source_before), expected);
    let requests = target.settled_requests();
    let mut i = 0;
    for blob in &blobs {
        assert_eq!(requests[i], format!("HEAD /v2/app/blobs/{blob} 404"));
        assert_eq!(requests[i + 1], "POST /v2/app/blobs/uploads/ 202");
        assert!(
            requests[i + 2].starts_with("PUT /v2/app/blobs/uploads/")
                && requests[i + 2].contains(&format!("digest={blob}"))
                && requests[i + 2].ends_with(" 201"),
            "{requests:?}"
        );
        i += 3;
    }
    let mut tail = vec![format!("PUT /v2/app/manifests/{digest} 201")];
    tail.extend(TARGET_TAGS.map(|t| format!("PUT /v2/app/manifests/{t} 201")));
    assert_eq!(requests[i..], tail);
    let (source_bytes, source_type, _) = source.manifest("app", &digest).unwrap();
    for tag in TARGET_TAGS {
        let (bytes, media_type, served) = target.manifest("app", tag).unwrap();
        assert_eq!(served, digest);
        assert_eq!(media_type, source_type);
        assert!(bytes == source_bytes);
    }
    // A second promotion finds the blobs there and sends only manifests.
    let before = target.settled_requests().len();
    builtin(None)
        .retag(
            &repo(&source.host(), "app"),
            &digest,
            &repo(&target.host(), "app"),
            &strings(&["again"]),
        )
        .unwrap();
    let mut expected: Vec<String> = blobs
        .iter()
        .map(|b| format!("HEAD /v2/app/blobs/{b} 200"))
        .collect();
    expected.push(format!("PUT /v2/app/manifests/{digest} 201"));
    expected.push("PUT /v2/app/manifests/again 201".to_owned());
    assert_eq!(target.requests_since(before), expected);
}

#[test]
fn a_multi_platform_index_across_repositories_copies_each_child_then_the_index() {
    let registry = Registry::start();
    let podman = Podman::new();
    let index = push_multi_platform(&podman, &registry, "app-staging", "commit-a", "oci");
    let children = children_of(&registry, "app-staging", &index);
    assert_eq!(children.len(), 2);
    let before = registry.settled_requests().len();
    builtin(None)
        .retag(
            &repo(&registry.host(), "app-staging"),
            &index,
            &repo(&registry.host(), "app"),
            &strings(&TARGET_TAGS),
        )
        .unwrap();
    let requests = registry.requests_since(before);
    let manifest_puts: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("PUT /v2/app/manifests/"))
        .collect();
    let mut expected = vec![
        format!("PUT /v2/app/manifests/{} 201", children[0]),
        format!("PUT /v2/app/manifests/{} 201", children[1]),
        format!("PUT /v2/app/manifests/{index} 201"),
    ];
    expected.extend(TARGET_TAGS.map(|t| format!("PUT /v2/app/manifests/{t} 201")));
    assert_eq!(manifest_puts, expected.iter().collect::<Vec<_>>());
    // Blobs are mounted, never uploaded or read.
    assert!(
        requests.iter().all(|r| !r.contains("/blobs/")
            || r.starts_with("HEAD ")
            || (r.starts_with("POST ") && r.contains("&from=app-staging") && r.ends_with(" 201"))),
        "{requests:?}"
    );
    let (source_bytes, source_type, _) = registry.manifest("app-staging", &index).unwrap();
    for tag in TARGET_TAGS {
        let (bytes, media_type, served) = registry.manifest("app", tag).unwrap();
        assert_eq!(
            (served.as_str(), media_type.as_str()),
            (&*index, &*source_type)
        );
        assert!(bytes == source_bytes);
    }
    for child in &children {
        assert_eq!(
            registry.digest("app", child).as_deref(),
            Some(child.as_str())
        );
    }
}

#[test]
fn a_multi_platform_list_across_registries_copies_every_platform() {
    let source = Registry::start();
    let target = Registry::start();
    let podman = Podman::new();
    let index = push_multi_platform(&podman, &source, "app", "commit-a", "v2s2");
    builtin(None)
        .retag(
            &repo(&source.host(), "app"),
            &index,
            &repo(&target.host(), "app"),
            &strings(&["prd-1.0.0"]),
        )
        .unwrap();
    assert_eq!(target.digest("app", "prd-1.0.0").as_deref(), Some(&*index));
    let requests = target.settled_requests();
    for child in children_of(&source, "app", &index) {
        assert_eq!(
            target.digest("app", &child).as_deref(),
            Some(child.as_str())
        );
        for blob in blobs_of(&source, "app", &child) {
            assert!(
                requests
                    .iter()
                    .any(|r| r.starts_with("PUT /v2/app/blobs/uploads/")
                        && r.contains(&format!("digest={blob}"))
                        && r.ends_with(" 201")),
                "{blob} was not uploaded: {requests:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Tag listing.

#[test]
fn list_tags_follows_pagination_links() {
    // docker-registry 2.8 ignores `n` and answers in one page; the proxy pages like registries
    // that do (GHCR, Harbor): 1000 tags and a relative `Link`, then the rest.
    let registry = Registry::start();
    let proxy = Proxy::start(registry.port, |s| {
        let page = |tags: std::ops::Range<usize>, link: Option<&str>| {
            let tags: Vec<String> = tags.map(|i| format!("t{i:05}")).collect();
            let mut headers = vec![("Content-Type", "application/json".to_owned())];
            if let Some(link) = link {
                headers.push(("Link", format!("<{link}>; rel=\"next\"")));
            }
            let body = serde_json::json!({"name": "app", "tags": tags});
            Fault::Answer(200, headers, body.to_string().into_bytes())
        };
        match s.path {
            "/v2/app/tags/list?n=1000" => {
                page(0..1000, Some("/v2/app/tags/list?last=t00999&n=1000"))
            }
            "/v2/app/tags/list?last=t00999&n=1000" => page(1000..1050, None),
            _ => Fault::status(500),
        }
    });
    let client = RegistryClient::new(&proxy.addr, None, &fast_options());
    let tags = client.list_tags("app").unwrap();
    assert_eq!(tags.len(), 1050);
    assert_eq!(tags[0], "t00000");
    assert_eq!(tags[1049], "t01049");
    assert_eq!(client.request_count(), 2);
    assert_eq!(proxy.log().len(), 2);
}

#[test]
fn list_tags_and_lookups_against_the_real_registry() {
    let registry = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &registry, "app", "commit-a", "oci", None);
    let (bytes, media_type, _) = registry.manifest("app", &digest).unwrap();
    for i in 0..1100 {
        registry.put_manifest("app", &format!("t{i:04}"), &bytes, &media_type);
    }
    let client = RegistryClient::new(&registry.host(), None, &fast_options());
    let mut tags = client.list_tags("app").unwrap();
    tags.sort();
    assert_eq!(tags, registry.tags("app"));
    assert_eq!(tags.len(), 1101);
    assert!(client.list_tags("missing").unwrap().is_empty());
    // A lookup is one HEAD, however many tags there are.
    let before = registry.settled_requests().len();
    let pull = Scope::pull("app");
    assert_eq!(
        client
            .manifest_digest("app", "t1099", &pull)
            .unwrap()
            .as_deref(),
        Some(&*digest)
    );
    assert_eq!(client.manifest_digest("app", "nope", &pull).unwrap(), None);
    assert_eq!(
        registry.requests_since(before),
        [
            "HEAD /v2/app/manifests/t1099 200",
            "HEAD /v2/app/manifests/nope 404"
        ]
    );
}

/// The test's own check on its proxy: a body it forwards arrives whole.
#[test]
fn the_proxy_forwards_uploads_intact() {
    let registry = Registry::start();
    let proxy = Proxy::start(registry.port, |_| Fault::Forward);
    let client = RegistryClient::new(&proxy.addr, None, &fast_options());
    let blob = vec![7u8; 300_000];
    let digest = crate::support::sha256(&blob);
    client.upload_blob("app", &digest, &blob).unwrap();
    assert!(
        client
            .blob_exists("app", &digest, &Scope::pull("app"))
            .unwrap()
    );
}
