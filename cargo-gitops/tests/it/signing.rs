//! Signatures made by the tool without cosign, checked by the real `cosign verify --key`
//! (offline: `--insecure-ignore-tlog=true`) against a real `docker-registry`: through the
//! library, then through `cargo gitops build` (key from an environment variable or a file,
//! never printed), after a same-repository retag and after a cross-repository promotion,
//! which also carries signatures cosign itself made in its older `.sig` format. Tampered
//! images (a tag moved to another digest, a layer changed, a signature moved onto another
//! image) fail verification.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::support::{Dir, Fixture, Registry, json, printed};
use cargo_gitops::build::retag::Retagger;
use cargo_gitops::config::RetaggerKind;
use cargo_gitops::registry::client::{ClientOptions, Descriptor, Digest, RegistryClient};
use cargo_gitops::registry::referrers;
use cargo_gitops::supply::sign::{self, KeySource, SigningKey};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A P-256 key pair made with openssl in `dir`: (private PKCS#8 PEM, public PEM) paths.
pub fn key_pair(dir: &Dir) -> (PathBuf, PathBuf) {
    let key = dir.join("signing.pem");
    let public = dir.join("signing.pub");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl must be installed");
        assert!(out.status.success(), "{}", printed(&out));
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.to_str().unwrap(),
    ]);
    run(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (key, public)
}

/// The program of a Go-built tool the test harness installed (`cosign`, `crane`).
pub fn tool(name: &str) -> std::process::Command {
    let mut command = std::process::Command::new(name);
    if let Some(home) = std::env::var_os("HOME") {
        let bin = Path::new(&home).join(".cache/cargo-gitops-tools/bin");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin];
        paths.extend(std::env::split_paths(&path));
        command.env("PATH", std::env::join_paths(paths).unwrap());
    }
    command
}

/// `cosign verify --key PUBLIC --insecure-ignore-tlog=true REFERENCE`, offline.
pub fn cosign_verify(public: &Path, reference: &str) -> Output {
    tool("cosign")
        .args(["verify", "--key"])
        .arg(public)
        .args(["--insecure-ignore-tlog=true", "--allow-http-registry=true"])
        .arg(reference)
        .output()
        .expect("cosign must be installed: .ci/install-tools builds it")
}

pub fn assert_verifies(public: &Path, reference: &str) {
    let out = cosign_verify(public, reference);
    assert!(
        out.status.success(),
        "cosign verify {reference} failed: {}",
        printed(&out)
    );
    let claims = json(&out.stdout);
    let digest = reference.rsplit('@').next().unwrap();
    if digest.starts_with("sha256:") {
        assert_eq!(
            claims[0]["critical"]["image"]["docker-manifest-digest"],
            digest
        );
    }
}

pub fn assert_fails_verification(public: &Path, reference: &str) {
    let out = cosign_verify(public, reference);
    assert!(
        !out.status.success(),
        "cosign verify {reference} passed, and should not have: {}",
        printed(&out)
    );
}

/// Pushes an OCI image of one layer holding `content` as `name:tag`; returns its descriptor.
/// The blobs of a one-layer image uploaded to `name`: its manifest, not pushed yet, and the
/// manifest's descriptor.
pub fn unpushed_image(registry: &Registry, name: &str, content: &[u8]) -> (String, Descriptor) {
    let layer = registry.put_blob(name, content);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
    );
    let config_digest = registry.put_blob(name, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{}}}]}}"#,
        config.len(),
        content.len()
    );
    let descriptor = serde_json::from_value(serde_json::json!({
        "mediaType": OCI_MANIFEST,
        "digest": crate::support::sha256(manifest.as_bytes()),
        "size": manifest.len(),
    }))
    .unwrap();
    (manifest, descriptor)
}

pub fn push_image(registry: &Registry, name: &str, tag: &str, content: &[u8]) -> Descriptor {
    let (manifest, descriptor) = unpushed_image(registry, name, content);
    registry.put_manifest(name, tag, manifest.as_bytes(), OCI_MANIFEST);
    descriptor
}

pub fn client(registry: &Registry) -> std::sync::Arc<RegistryClient> {
    Retagger::new(RetaggerKind::Builtin, ClientOptions::default(), None)
        .client(&registry.host())
        .unwrap()
}

/// The referrers tag index of `digest` in `name`, read through the registry's own API.
pub fn referrers_index(registry: &Registry, name: &str, digest: &str) -> Value {
    let tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    let (bytes, media_type, _) = registry
        .manifest(name, &tag)
        .unwrap_or_else(|| panic!("no referrers tag {name}:{tag}"));
    assert_eq!(media_type, "application/vnd.oci.image.index.v1+json");
    json(&bytes)
}

#[test]
fn a_signature_made_without_cosign_verifies_with_cosign_and_tampering_fails() {
    let registry = Registry::start();
    let dir = Dir::new();
    let (key_path, public) = key_pair(&dir);
    let image = push_image(&registry, "app", "v1", b"the real layer");
    let client = client(&registry);
    let key = SigningKey::load(&KeySource::File(key_path)).unwrap();

    let first = sign::sign(&client, "app", &image, &key, Some(1_700_000_000)).unwrap();
    assert!(!first.already);
    let host = registry.host();
    assert_verifies(&public, &format!("{host}/app@{}", image.digest));
    assert_verifies(&public, &format!("{host}/app:v1"));

    // Signing the same digest again adds nothing: one entry in the referrers tag index.
    let again = sign::sign(&client, "app", &image, &key, Some(1_700_000_000)).unwrap();
    assert!(again.already);
    assert_eq!(again.descriptor.digest, first.descriptor.digest);
    let index = referrers_index(&registry, "app", &image.digest);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(
        index["manifests"][0]["artifactType"],
        sign::BUNDLE_MEDIA_TYPE
    );
    let tags = client.list_tags("app").unwrap();
    assert!(
        sign::Signatures::new(&client, "app", &tags)
            .signed(&image.digest)
            .unwrap()
    );

    // One layer changed: another digest, no signature.
    let tampered = push_image(&registry, "app", "tampered", b"the evil layer");
    assert_ne!(tampered.digest, image.digest);
    assert_fails_verification(&public, &format!("{host}/app@{}", tampered.digest));
    let tags = client.list_tags("app").unwrap();
    let mut signatures = sign::Signatures::new(&client, "app", &tags);
    assert!(!signatures.signed(&tampered.digest).unwrap());
    assert!(signatures.signed(&image.digest).unwrap());
    // The tag moved to it: verifying the tag fails.
    let (bytes, media_type, _) = registry.manifest("app", "tampered").unwrap();
    registry.put_manifest("app", "v1", &bytes, &media_type);
    assert_fails_verification(&public, &format!("{host}/app:v1"));
    // The genuine signature moved onto it: its statement names the other digest.
    let moved = sign::signature(&key, &image.digest, Some(1_700_000_000));
    referrers::attach(&client, "app", &tampered, &moved).unwrap();
    assert_eq!(
        referrers::list(
            &client,
            "app",
            &tampered.digest,
            Some(sign::BUNDLE_MEDIA_TYPE)
        )
        .unwrap()
        .len(),
        1
    );
    assert_fails_verification(&public, &format!("{host}/app@{}", tampered.digest));
    // Another key does not verify the genuine image either.
    let other = Dir::new();
    let (_, other_public) = key_pair(&other);
    assert_fails_verification(&other_public, &format!("{host}/app@{}", image.digest));
}

#[test]
fn keys_from_the_environment_and_in_sec1_sign_the_same() {
    let registry = Registry::start();
    let dir = Dir::new();
    let (key_path, public) = key_pair(&dir);
    let sec1 = dir.join("sec1.pem");
    let out = std::process::Command::new("openssl")
        .args(["ec", "-in", key_path.to_str().unwrap(), "-out"])
        .arg(&sec1)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", printed(&out));
    let text = std::fs::read_to_string(&sec1).unwrap();
    assert!(text.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{text}");
    let key = SigningKey::from_pem(&text, KeySource::Env("GITOPS_SIGNING_KEY".into())).unwrap();
    assert_eq!(
        key.public_key_pem().trim(),
        std::fs::read_to_string(&public).unwrap().trim()
    );
    let image = push_image(&registry, "sec1", "v1", b"layer");
    sign::sign(&client(&registry), "sec1", &image, &key, None).unwrap();
    assert_verifies(
        &public,
        &format!("{}/sec1@{}", registry.host(), image.digest),
    );
    let _ = Digest::parse(&image.digest).unwrap();
}

/// The PEM's base64 lines: none of them may ever be printed.
fn key_lines(key: &Path) -> Vec<String> {
    std::fs::read_to_string(key)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_owned)
        .collect()
}

fn assert_no_key_in(output: &Output, key: &Path) {
    let shown = printed(output);
    for line in key_lines(key) {
        assert!(!shown.contains(&line), "the key was printed: {shown}");
    }
}

/// A fixture whose configuration has `extra` in its gitops table; `environments` too, when
/// given.
fn signing_fixture(registry: &Registry, image: &str, extra: &str) -> Fixture {
    let fixture = Fixture::new(&registry.host(), image);
    fixture.create(
        "Cargo.toml",
        crate::support::gitops_manifest(&registry.host(), image, extra),
    );
    fixture.commit("configure signing");
    fixture
}

fn podman_build(fixture: &Fixture, key: Option<&Path>, args: &[&str]) -> Output {
    let mut command = fixture.build("builtin", &["--build-with", "podman"]);
    command.args(args);
    if let Some(key) = key {
        command.env("GITOPS_SIGNING_KEY", std::fs::read_to_string(key).unwrap());
    }
    command.output()
}

#[test]
fn build_signs_with_the_key_from_the_environment_and_a_retag_keeps_the_signature() {
    let registry = Registry::start();
    let host = registry.host();
    let fixture = signing_fixture(&registry, "signed", "sign = \"key\"\n");
    let dir = Dir::new();
    let (key, public) = key_pair(&dir);

    // The dry run shows the signing step and where the key is, never the key.
    let dry_run = podman_build(&fixture, Some(&key), &["--dry-run"]);
    assert!(dry_run.status.success(), "{}", printed(&dry_run));
    let text = String::from_utf8_lossy(&dry_run.stdout);
    assert!(text.contains("## sign the image in"), "{text}");
    assert!(
        text.contains("with the ECDSA P-256 key from environment variable GITOPS_SIGNING_KEY"),
        "{text}"
    );
    assert_no_key_in(&dry_run, &key);
    let json_dry_run = podman_build(&fixture, Some(&key), &["--dry-run", "--format", "json"]);
    assert_no_key_in(&json_dry_run, &key);
    assert!(registry.tags("signed").is_empty());

    let built = podman_build(&fixture, Some(&key), &["--format", "json", "-v"]);
    assert!(built.status.success(), "{}", printed(&built));
    assert_no_key_in(&built, &key);
    let report = json(&built.stdout);
    assert_eq!(report["action"], "built");
    let digest = report["digest"].as_str().unwrap().to_owned();
    // The build's provenance is attached first, as soon as the image is pushed.
    assert_eq!(report["evidence"][0]["action"], "attached");
    assert_eq!(report["evidence"][1]["action"], "signed");
    assert_eq!(report["evidence"][1]["already"], false);
    assert_eq!(
        report["evidence"][1]["artifact_type"],
        sign::BUNDLE_MEDIA_TYPE
    );
    assert_verifies(&public, &format!("{host}/signed@{digest}"));
    assert_verifies(&public, &format!("{host}/signed:stg-latest"));

    // The same commit again: retagged, signed already, nothing added.
    let again = podman_build(&fixture, Some(&key), &["--format", "json"]);
    assert!(again.status.success(), "{}", printed(&again));
    let report = json(&again.stdout);
    assert_eq!(report["action"], "retagged");
    assert_eq!(report["evidence"][0]["already"], true);
    // The provenance from the build and the signature, each once.
    let index = referrers_index(&registry, "signed", &digest);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");

    // Promoted to production in the same repository: the digest, and so its signature, kept.
    fixture.git(["tag", "-a", "-m", "release", "v1.0.0"]);
    fixture.git(["checkout", "-q", "--detach", "v1.0.0"]);
    let promoted = podman_build(&fixture, Some(&key), &["--format", "json"]);
    assert!(promoted.status.success(), "{}", printed(&promoted));
    let report = json(&promoted.stdout);
    assert_eq!(report["action"], "retagged");
    assert_eq!(report["digest"], digest.as_str());
    assert_verifies(&public, &format!("{host}/signed:prd-1.0.0"));
    // Production verifies signatures by default when the tool signs: the record of that
    // gate is the one referrer the promotion adds.
    let index = referrers_index(&registry, "signed", &digest);
    let kinds: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "application/vnd.in-toto+json",
            sign::BUNDLE_MEDIA_TYPE,
            cargo_gitops::gates::record::MEDIA_TYPE
        ],
        "{index}"
    );
    assert_eq!(report["gates"][0]["gate"], "signature");
    assert_eq!(report["gates"][0]["outcome"], "passed");
}

#[test]
fn a_missing_or_bad_key_fails_before_anything_is_built_and_never_shows_the_key() {
    let registry = Registry::start();
    let fixture = signing_fixture(&registry, "unsigned", "sign = \"key\"\n");
    let error = fixture
        .build("builtin", &["--build-with", "podman"])
        .one_line_error(2);
    assert!(
        error.contains("environment variable GITOPS_SIGNING_KEY: it is not set"),
        "{error}"
    );
    let bad = "-----BEGIN PRIVATE KEY-----\nTk9UQUtFWVNFQ1JFVA==\n-----END PRIVATE KEY-----\n";
    let error = fixture
        .build("builtin", &["--build-with", "podman"])
        .env("GITOPS_SIGNING_KEY", bad)
        .one_line_error(2);
    assert!(error.contains("not an ECDSA P-256 one"), "{error}");
    assert!(!error.contains("Tk9UQUtF"), "{error}");
    let missing = fixture.join("no-such-key.pem");
    let error = fixture
        .build("builtin", &["--build-with", "podman", "--signing-key"])
        .arg(&missing)
        .one_line_error(2);
    assert!(error.contains("no-such-key.pem: cannot read it"), "{error}");
    assert!(registry.tags("unsigned").is_empty(), "nothing was pushed");
    // A ref no environment tracks does nothing, and so needs no key.
    let head = fixture.head();
    let out = fixture
        .build(
            "builtin",
            &[
                "--build-with",
                "podman",
                "--ref",
                "refs/tags/nightly",
                "--sha",
            ],
        )
        .arg(&head)
        .output();
    assert!(out.status.success(), "{}", printed(&out));

    // A key variable that is no variable name is a configuration error naming the key.
    fixture.create(
        "Cargo.toml",
        crate::support::gitops_manifest(
            &registry.host(),
            "unsigned",
            "sign = \"key\"\nsigning-key-env = \"A-B\"\n",
        ),
    );
    let error = fixture.command().arg("env").one_line_error(2);
    assert!(error.contains("signing-key-env"), "{error}");
    // Keyless signing is the workflow's (cosign with the job's OIDC token): the tool itself
    // neither signs nor asks for a key.
    fixture.create(
        "Cargo.toml",
        crate::support::gitops_manifest(&registry.host(), "unsigned", "sign = \"keyless\"\n"),
    );
    let dry_run = fixture
        .build("builtin", &["--build-with", "podman", "--dry-run"])
        .stdout();
    assert!(!dry_run.contains("sign the image"), "{dry_run}");
    fixture.create(
        "Cargo.toml",
        crate::support::gitops_manifest(&registry.host(), "unsigned", "sign = \"sometimes\"\n"),
    );
    let error = fixture.command().arg("env").one_line_error(2);
    assert!(error.contains("sign"), "{error}");
}

#[test]
fn a_key_file_and_a_configured_variable_sign_too() {
    let registry = Registry::start();
    let host = registry.host();
    let fixture = signing_fixture(
        &registry,
        "filekey",
        "sign = \"key\"\nsigning-key-env = \"RELEASE_KEY\"\n",
    );
    let dir = Dir::new();
    let (key, public) = key_pair(&dir);
    let mut command = fixture.build("builtin", &["--build-with", "podman", "--format", "json"]);
    command.env("RELEASE_KEY", std::fs::read_to_string(&key).unwrap());
    let out = command.output();
    assert!(out.status.success(), "{}", printed(&out));
    assert_no_key_in(&out, &key);
    let digest = json(&out.stdout)["digest"].as_str().unwrap().to_owned();
    assert_verifies(&public, &format!("{host}/filekey@{digest}"));

    // No `sign` configured: --signing-key FILE alone signs, with another key.
    let other = Dir::new();
    let (other_key, other_public) = key_pair(&other);
    let plain = signing_fixture(&registry, "plain", "");
    let out = plain
        .build(
            "builtin",
            &[
                "--build-with",
                "podman",
                "--format",
                "json",
                "--signing-key",
            ],
        )
        .arg(&other_key)
        .output();
    assert!(out.status.success(), "{}", printed(&out));
    assert_no_key_in(&out, &other_key);
    let digest = json(&out.stdout)["digest"].as_str().unwrap().to_owned();
    assert_verifies(&other_public, &format!("{host}/plain@{digest}"));
    assert_fails_verification(&public, &format!("{host}/plain@{digest}"));
}

#[test]
fn history_says_which_images_are_signed() {
    let registry = Registry::start();
    let fixture = signing_fixture(&registry, "hist", "");
    let first = podman_build(
        &fixture,
        None,
        &["--format", "json", "--timestamp", "1700000000"],
    );
    assert!(first.status.success(), "{}", printed(&first));
    fixture.create("later.txt", "a second commit, a second image\n");
    fixture.create("Dockerfile", "FROM scratch\nCOPY hello /hello\nCOPY later.txt /later.txt\nUSER 65532\nENTRYPOINT [\"/hello\"]\n");
    fixture.commit("second");
    let dir = Dir::new();
    let (key, _) = key_pair(&dir);
    let second = podman_build(
        &fixture,
        None,
        &[
            "--format",
            "json",
            "--timestamp",
            "1700000100",
            "--signing-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(second.status.success(), "{}", printed(&second));
    let signed_digest = json(&second.stdout)["digest"].as_str().unwrap().to_owned();

    let out = fixture
        .command()
        .args(["history", "staging", "--format", "json"])
        .output();
    assert!(out.status.success(), "{}", printed(&out));
    let entries = json(&out.stdout);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["digest"], signed_digest.as_str());
    assert_eq!(entries[0]["signed"], true);
    assert_eq!(entries[1]["signed"], false);
    let table = fixture.command().args(["history", "staging"]).stdout();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].ends_with("SIGNED"), "{table}");
    assert!(lines[1].ends_with(" yes"), "{table}");
    assert!(lines[2].ends_with(" no"), "{table}");
    let help = fixture.command().args(["history", "--help"]).stdout();
    assert!(help.contains("present, not that it verifies"), "{help}");
}

#[test]
fn the_dry_run_shows_the_requests_signing_sends() {
    use cargo_gitops::build::describe::{
        UNLESS_ATTACHED, UNLESS_OCI_SUBJECT, WITHOUT_REFERRERS_API,
    };
    let registry = Registry::start();
    let fixture = signing_fixture(&registry, "planned", "sign = \"key\"\n");
    let dir = Dir::new();
    let (key, _) = key_pair(&dir);
    let dry_run =
        json(&podman_build(&fixture, Some(&key), &["--dry-run", "--format", "json"]).stdout);
    let built = podman_build(&fixture, Some(&key), &["--format", "json"]);
    assert!(built.status.success(), "{}", printed(&built));
    let report = json(&built.stdout);
    let digest = report["digest"].as_str().unwrap();
    // The provenance, then the signature, attached in one batch after the push.
    assert_eq!(report["evidence"][0]["action"], "attached");
    assert_eq!(report["evidence"][1]["action"], "signed");
    let artifacts = [
        report["evidence"][0]["reference"].as_str().unwrap(),
        report["evidence"][1]["reference"].as_str().unwrap(),
    ];
    let tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    let host = registry.host();

    let branch = dry_run["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["when"] == "not found: build once")
        .unwrap();
    let step = branch["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            let title = s["title"].as_str().unwrap();
            title.starts_with("attach ") && title.contains(" and the signature to the image in ")
        })
        .expect("a step attaching the documents and the signature");
    // Nothing was attached yet and Debian's registry has no referrers API: every request.
    let mut artifact = artifacts.iter();
    let mut expected: Vec<String> = step["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| match a["when"].as_str() {
            None => true,
            Some(when) => {
                when == UNLESS_ATTACHED
                    || when == WITHOUT_REFERRERS_API
                    || when == UNLESS_OCI_SUBJECT
                    || when.starts_with("404 without")
            }
        })
        .filter_map(|a| a["request"].as_str())
        .map(|r| {
            let r = r.replacen(&format!(" {host}/"), " /", 1);
            let r = r
                .replace("sha256-PUSHED_DIGEST", &tag)
                .replace("PUSHED_DIGEST", digest);
            match r.contains("ARTIFACT_DIGEST") {
                true => r.replace("ARTIFACT_DIGEST", artifact.next().unwrap()),
                false => r,
            }
        })
        .collect();
    // The image manifest; referrers API and referrers tag; the two artifact manifests; the
    // referrers tag written and read back.
    assert_eq!(expected.len(), 7, "{expected:#?}");
    let log = registry.settled_requests();
    let manifests: Vec<String> = log
        .iter()
        .filter(|r| r.contains("/manifests/") || r.contains("/referrers/"))
        .map(|r| r.rsplit_once(' ').unwrap().0.to_owned())
        .collect();
    // The step starts with the image's manifest, just before the referrers; what goes at
    // once may arrive in any order.
    let start = manifests
        .iter()
        .position(|r| r.starts_with("GET /v2/planned/referrers/"))
        .expect("the step asks for referrers")
        - 1;
    let mut sent = manifests[start..start + expected.len()].to_vec();
    sent.sort();
    expected.sort();
    assert_eq!(sent, expected);
    // Signed along with the provenance: the step after the claim sent nothing more.
    assert_eq!(
        manifests
            .iter()
            .filter(|r| r.starts_with("GET /v2/planned/referrers/"))
            .count(),
        1,
        "{manifests:#?}"
    );
}
