//! Promotion gates, through `cargo gitops build` against a real `docker-registry`: images
//! built by podman for staging, then promoted to production by a tag. Every gate passes on
//! an honest promotion; each tampered case (a signature by another key, a signature for
//! another digest, a provenance for another commit or repository, a moved staging tag, a
//! too-young image, a denied crate, a failing status) is refused with one line per gate and
//! leaves every tag and manifest of the repository byte-identical. Signatures come from the
//! tool and from the real `cosign sign`, with `cosign verify` agreeing; the status gate reads
//! a GitHub API served on loopback, whose requests are asserted exactly.

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::signing::{
    assert_fails_verification, assert_verifies, client, key_pair, push_image, tool,
};
use crate::support::{Dir, Fixture, Registry, Stub, answer, gitops_manifest, printed};
use cargo_gitops::registry::client::{Descriptor, Digest};
use cargo_gitops::registry::referrers::{self, Artifact};
use cargo_gitops::supply::sign::{self, KeySource, SigningKey};

const SPDX: &str = "application/spdx+json";
const ORIGIN: &str = "https://github.com/acme/app.git";

fn now() -> u64 {
    cargo_gitops::gates::now()
}

/// A fixture whose production environment has `gates`; `extra` goes into the gitops table
/// first. Its `origin` remote is `ORIGIN`.
fn gated(registry: &Registry, image: &str, extra: &str, gates: &str) -> Fixture {
    let fixture = Fixture::new(&registry.host(), image);
    let config = format!(
        "{extra}\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\ngates = {gates}\n\n[[workspace.metadata.gitops.environments]]\nname = \"staging\"\n"
    );
    fixture.create(
        "Cargo.toml",
        gitops_manifest(&registry.host(), image, &config),
    );
    fixture.commit("production is gated");
    fixture.git(["remote", "add", "origin", ORIGIN]);
    fixture
}

/// Builds the commit for staging with podman, its tags stamped `timestamp`; the digest.
fn staging(fixture: &Fixture, timestamp: u64, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut command = fixture.build("builtin", &["--build-with", "podman", "--format", "json"]);
    command
        .args(["--timestamp", &timestamp.to_string()])
        .args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output();
    assert!(out.status.success(), "{}", printed(&out));
    crate::support::json(&out.stdout)["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Tags the commit `v1.0.0` and checks it out: the next build is production's.
fn release(fixture: &Fixture) {
    fixture.git(["tag", "-a", "-m", "release", "v1.0.0"]);
    fixture.git(["checkout", "-q", "--detach", "v1.0.0"]);
}

fn promote(fixture: &Fixture, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = fixture.build("builtin", &["--build-with", "podman"]);
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output()
}

/// Every tag of `name` with the exact bytes of its manifest: what "nothing moved" compares.
fn snapshot(registry: &Registry, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut tags = registry.tags(name);
    tags.sort();
    tags.into_iter()
        .map(|tag| {
            let (bytes, _, _) = registry.manifest(name, &tag).unwrap();
            (tag, bytes)
        })
        .collect()
}

/// A refused promotion: exit 1, one line per gate, nothing in the registry changed.
fn assert_refused(
    fixture: &Fixture,
    registry: &Registry,
    env: &[(&str, &str)],
    args: &[&str],
) -> String {
    let before = snapshot(registry, &fixture.image);
    let out = promote(fixture, env, args);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("error: the gates of `production` refused sha256:"),
        "{stderr}"
    );
    assert!(stderr.contains("so no tag moved"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        snapshot(registry, &fixture.image),
        before,
        "a refused promotion changed the registry"
    );
    assert!(
        !registry
            .tags(&fixture.image)
            .contains(&"prd-1.0.0".to_owned()),
        "production got its tag"
    );
    stderr
}

fn spdx(packages: &[&str]) -> Vec<u8> {
    let packages: Vec<Value> = packages.iter().map(|p| json!({"name": p})).collect();
    serde_json::to_vec(&json!({"spdxVersion": "SPDX-2.3", "packages": packages})).unwrap()
}

fn descriptor(registry: &Registry, name: &str, digest: &str) -> Descriptor {
    let (bytes, media_type, _) = registry.manifest(name, digest).unwrap();
    serde_json::from_value(json!({
        "mediaType": media_type,
        "digest": digest,
        "size": bytes.len(),
    }))
    .unwrap()
}

/// An SLSA v1 provenance statement for `digest`, built from `commit` of `repository`.
fn provenance(digest: &str, commit: &str, repository: &str) -> Artifact {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://example.com/build",
                "externalParameters": {},
                "resolvedDependencies": [{"uri": format!("git+{repository}"), "digest": {"gitCommit": commit}}],
            },
            "runDetails": {"builder": {"id": "https://example.com/builder"}},
        },
    });
    Artifact {
        artifact_type: "application/vnd.in-toto+json".into(),
        media_type: "application/vnd.in-toto+json".into(),
        bytes: serde_json::to_vec(&statement).unwrap(),
        annotations: Default::default(),
    }
}

#[test]
fn every_gate_passes_on_an_honest_promotion_and_a_denied_crate_is_refused() {
    let registry = Registry::start();
    let fixture = gated(
        &registry,
        "app",
        "sign = \"key\"\n",
        "{ previous = \"staging\", soak = \"30m\", signature = true, provenance = true, sbom = { deny = [\"openssl-sys\"] }, status = \"flux/staging\", approval = true }",
    );
    let keys = Dir::new();
    let (key, public) = key_pair(&keys);
    let pem = std::fs::read_to_string(&key).unwrap();
    let sbom = keys.join("sbom.spdx.json");
    std::fs::write(&sbom, spdx(&["app", "serde"])).unwrap();
    let attach = format!("{SPDX}={}", sbom.display());
    let signing = [("GITOPS_SIGNING_KEY", pem.as_str())];
    let digest = staging(&fixture, now() - 7200, &signing, &["--attach", &attach]);
    let sha = fixture.head();

    let stub = Stub::start("127.0.0.1", |_| {
        answer(
            200,
            &[("Content-Type", "application/json")],
            br#"{"state":"success","statuses":[{"context":"flux/staging","state":"success"}]}"#,
        )
    });
    let api = format!("http://{}", stub.addr);
    release(&fixture);
    let env = [
        ("GITOPS_SIGNING_KEY", pem.as_str()),
        ("GITHUB_API_URL", api.as_str()),
        ("GITHUB_TOKEN", "ghs_TOKEN_NEVER_SHOWN"),
    ];
    let out = promote(&fixture, &env, &["--format", "json"]);
    assert!(out.status.success(), "{}", printed(&out));
    assert!(!printed(&out).contains("ghs_TOKEN_NEVER_SHOWN"));
    let report = crate::support::json(&out.stdout);
    assert_eq!(report["action"], "retagged");
    assert_eq!(report["digest"], digest.as_str());
    let outcomes: Vec<(String, String)> = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["gate"].as_str().unwrap().to_owned(),
                g["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("previous", "passed"),
        ("soak", "passed"),
        ("signature", "passed"),
        ("provenance", "passed"),
        ("sbom", "passed"),
        ("status", "passed"),
        ("approval", "deferred"),
    ]
    .iter()
    .map(|(g, o)| ((*g).to_owned(), (*o).to_owned()))
    .collect();
    assert_eq!(outcomes, expected, "{report}");
    assert!(
        report["gates"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("in `staging` for 2h"),
        "{report}"
    );
    // The status endpoint got exactly one request, with the token, for this commit.
    let seen = stub.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].path,
        format!("/repos/acme/app/commits/{sha}/status?per_page=100")
    );
    assert_eq!(
        seen[0].header("Authorization"),
        Some("Bearer ghs_TOKEN_NEVER_SHOWN")
    );
    assert_eq!(
        seen[0].header("Accept"),
        Some("application/vnd.github+json")
    );
    let recorded: Vec<&Value> = report["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "recorded")
        .collect();
    assert_eq!(recorded.len(), 1, "{report}");
    // cosign agrees with the signature gate.
    assert_verifies(&public, &format!("{}/app@{digest}", registry.host()));

    // The human report says what each gate found.
    let out = promote(&fixture, &env, &[]);
    assert!(out.status.success(), "{}", printed(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gates        previous passed: `staging` runs it now"),
        "{text}"
    );
    assert!(
        text.contains("signature passed: signature sha256:"),
        "{text}"
    );
    assert!(
        text.contains("approval deferred: checked by deploy"),
        "{text}"
    );

    // An SBOM listing a denied crate is attached: refused, nothing moves.
    let denied = Artifact {
        artifact_type: SPDX.into(),
        media_type: SPDX.into(),
        bytes: spdx(&["app", "openssl-sys"]),
        annotations: Default::default(),
    };
    referrers::attach(
        &client(&registry),
        "app",
        &descriptor(&registry, "app", &digest),
        &denied,
    )
    .unwrap();
    let before = snapshot(&registry, "app");
    let out = promote(&fixture, &env, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("  sbom: the SBOM lists denied crate(s) openssl-sys"),
        "{stderr}"
    );
    assert_eq!(snapshot(&registry, "app"), before);
}

#[test]
fn a_too_young_image_and_a_moved_staging_tag_are_refused_until_skipped_with_a_reason() {
    let registry = Registry::start();
    let fixture = gated(
        &registry,
        "young",
        "",
        "{ previous = \"staging\", soak = \"30m\" }",
    );
    let digest = staging(&fixture, now() - 60, &[], &[]);
    release(&fixture);
    let stderr = assert_refused(&fixture, &registry, &[], &[]);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(lines.len(), 1, "one line for the refused gate: {stderr}");
    assert!(
        lines[0].starts_with("  soak: the image has been in `staging` for 1m"),
        "{stderr}"
    );
    assert!(lines[0].contains("more of the 30m soak"), "{stderr}");

    // Someone moves staging's tag to another image: staging no longer runs this one.
    let stg_tag = registry
        .tags("young")
        .into_iter()
        .find(|t| t.starts_with("stg-") && t != "stg-latest")
        .unwrap();
    let other = push_image(&registry, "young", "elsewhere", b"another image");
    let (bytes, media_type, _) = registry.manifest("young", &other.digest).unwrap();
    registry.put_manifest("young", &stg_tag, &bytes, &media_type);
    let stderr = assert_refused(&fixture, &registry, &[], &[]);
    assert!(
        stderr.contains(&format!(
            "  previous: `staging` runs {} now (",
            other.digest
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "  soak: no tag of `staging` in {}/young names {digest}",
            registry.host()
        )),
        "{stderr}"
    );

    // Skipping needs a reason; with one, the promotion goes ahead and the report keeps it.
    let out = promote(&fixture, &[], &["--skip-gate", "soak"]);
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    let out = promote(&fixture, &[], &["--skip-gate", "status", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no `status` gate to skip"),
        "{}",
        printed(&out)
    );
    let out = promote(
        &fixture,
        &[],
        &[
            "--skip-gate",
            "soak",
            "--skip-gate",
            "previous",
            "--reason",
            "hotfix approved by the on-call lead",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", printed(&out));
    let report = crate::support::json(&out.stdout);
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["gates"][0]["outcome"], "skipped");
    assert_eq!(
        report["gates"][0]["detail"],
        "hotfix approved by the on-call lead"
    );
    assert_eq!(
        registry.digest("young", "prd-1.0.0").as_deref(),
        Some(digest.as_str())
    );
    // The record of the skip went with the image: history shows it, reason and all.
    let history = fixture
        .command()
        .args(["history", "production", "--format", "json"])
        .json();
    assert_eq!(history[0]["digest"], digest.as_str());
    assert_eq!(
        history[0]["gates"],
        json!([{"environment": "production", "passed": [], "skipped": ["previous", "soak"], "reason": "hotfix approved by the on-call lead"}])
    );
    let table = fixture.command().args(["history", "production"]).stdout();
    assert!(table.lines().next().unwrap().ends_with("GATES"), "{table}");
    assert!(
        table.contains("skipped previous,soak (hotfix approved by the on-call lead)"),
        "{table}"
    );
}

#[test]
fn signatures_by_another_key_or_for_another_digest_are_refused_and_cosigns_own_passes() {
    let registry = Registry::start();
    let host = registry.host();
    let keys = Dir::new();
    let (key, public) = key_pair(&keys);
    let gates = format!("{{ signature = {{ key = \"{}\" }} }}", public.display());
    let fixture = gated(&registry, "signed", "", &gates);
    let digest = staging(&fixture, now() - 60, &[], &[]);
    release(&fixture);
    let stderr = assert_refused(&fixture, &registry, &[], &[]);
    assert!(
        stderr.contains(&format!(
            "  signature: no signature is attached to {digest}"
        )),
        "{stderr}"
    );

    // Signed by another key: cosign refuses it, so does the gate.
    let strangers = Dir::new();
    let (stranger_key, _) = key_pair(&strangers);
    let stranger = SigningKey::load(&KeySource::File(stranger_key)).unwrap();
    let subject = descriptor(&registry, "signed", &digest);
    sign::sign(&client(&registry), "signed", &subject, &stranger, None).unwrap();
    assert_fails_verification(&public, &format!("{host}/signed@{digest}"));
    let stderr = assert_refused(&fixture, &registry, &[], &[]);
    assert!(
        stderr.contains("  signature: 1 signature(s) attached, none verifies with the key"),
        "{stderr}"
    );

    // The genuine key's signature of another image, moved onto this one.
    let genuine = SigningKey::load(&KeySource::File(key.clone())).unwrap();
    let elsewhere = Digest::of(b"some other image");
    let moved = sign::signature(&genuine, &elsewhere, None);
    referrers::attach(&client(&registry), "signed", &subject, &moved).unwrap();
    assert_fails_verification(&public, &format!("{host}/signed@{digest}"));
    let stderr = assert_refused(&fixture, &registry, &[], &[]);
    assert!(
        stderr.contains(&format!(
            "  signature: a signature by the key {} is attached, but it signs another image ({elsewhere})",
            public.display()
        )),
        "{stderr}"
    );

    // The real cosign signs it with the genuine key (its v3 bundle format): both agree.
    let run = |command: &mut std::process::Command| {
        let out = command.output().unwrap();
        assert!(out.status.success(), "{command:?}: {}", printed(&out));
    };
    run(tool("cosign")
        .current_dir(keys.path())
        .env("COSIGN_PASSWORD", "test")
        .args(["import-key-pair", "--key"])
        .arg(&key)
        .args(["--output-key-prefix", "imported", "-y"]));
    run(tool("cosign")
        .current_dir(keys.path())
        .env("COSIGN_PASSWORD", "test")
        .args([
            "sign",
            "--key",
            "imported.key",
            "--use-signing-config=false",
            "--tlog-upload=false",
            "--allow-http-registry=true",
            "-y",
        ])
        .arg(format!("{host}/signed@{digest}")));
    assert_verifies(&public, &format!("{host}/signed@{digest}"));
    let out = promote(&fixture, &[], &["--format", "json"]);
    assert!(out.status.success(), "{}", printed(&out));
    let report = crate::support::json(&out.stdout);
    assert_eq!(report["gates"][0]["outcome"], "passed", "{report}");
    assert_eq!(
        registry.digest("signed", "prd-1.0.0").as_deref(),
        Some(digest.as_str())
    );
}

#[test]
fn provenance_for_another_commit_or_repository_is_refused() {
    let registry = Registry::start();
    // No provenance of its own: the documents are attached by hand.
    let fixture = gated(
        &registry,
        "prov",
        "provenance = false\n",
        "{ provenance = true }",
    );
    let digest = staging(&fixture, now() - 60, &[], &[]);
    let sha = fixture.head();
    release(&fixture);
    let stderr = assert_refused(&fixture, &registry, &[], &[]);
    assert!(
        stderr.contains(&format!(
            "  provenance: no SLSA provenance is attached to {digest}"
        )),
        "{stderr}"
    );
    let subject = descriptor(&registry, "prov", &digest);
    let other_commit = "f".repeat(40);
    referrers::attach(
        &client(&registry),
        "prov",
        &subject,
        &provenance(&digest, &other_commit, ORIGIN),
    )
    .unwrap();
    let stderr = assert_refused(&fixture, &registry, &[], &[]);
    assert!(
        stderr.contains(&format!(
            "  provenance: the provenance says the image was built from commit {other_commit}, not {sha} being promoted"
        )),
        "{stderr}"
    );

    // The tool's own provenance, made where `origin` was another repository.
    let registry = Registry::start();
    let fixture = gated(&registry, "prov", "", "{ provenance = true }");
    fixture.git([
        "remote",
        "set-url",
        "origin",
        "https://github.com/evil/app.git",
    ]);
    staging(&fixture, now() - 60, &[], &[]);
    fixture.git(["remote", "set-url", "origin", ORIGIN]);
    release(&fixture);
    let stderr = assert_refused(&fixture, &registry, &[], &[]);
    assert!(
        stderr.contains(
            "  provenance: the provenance says the image was built from github.com/evil/app, not from this repository (github.com/acme/app)"
        ),
        "{stderr}"
    );
    // Back in the repository that built it, the same provenance passes.
    fixture.git([
        "remote",
        "set-url",
        "origin",
        "https://github.com/evil/app.git",
    ]);
    let out = promote(&fixture, &[], &["--format", "json"]);
    assert!(out.status.success(), "{}", printed(&out));
    let report = crate::support::json(&out.stdout);
    assert_eq!(report["gates"][0]["gate"], "provenance");
    assert_eq!(report["gates"][0]["outcome"], "passed");
}

#[test]
fn the_status_gate_reads_statuses_then_check_runs_and_refuses_until_success() {
    let registry = Registry::start();
    let fixture = gated(
        &registry,
        "status",
        "",
        "{ status = \"argocd/app (prod)\" }",
    );
    staging(&fixture, now() - 60, &[], &[]);
    let sha = fixture.head();
    release(&fixture);
    // First a pending status; then no status but a failed check run; then a good one.
    let round = Arc::new(AtomicUsize::new(0));
    let stub = {
        let round = round.clone();
        Stub::start("127.0.0.1", move |request| {
            let body: &[u8] = match (round.load(Ordering::SeqCst), request.path.contains("/check-runs")) {
                (0, _) => br#"{"statuses":[{"context":"argocd/app (prod)","state":"pending"}]}"#,
                (1, false) | (2, false) => br#"{"statuses":[{"context":"ci","state":"success"}]}"#,
                (1, true) => br#"{"total_count":1,"check_runs":[{"name":"argocd/app (prod)","status":"completed","conclusion":"failure"}]}"#,
                _ => br#"{"total_count":1,"check_runs":[{"name":"argocd/app (prod)","status":"completed","conclusion":"success"}]}"#,
            };
            answer(200, &[("Content-Type", "application/json")], body)
        })
    };
    let api = format!("http://{}", stub.addr);
    let env = [
        ("GITHUB_API_URL", api.as_str()),
        ("GITOPS_STATUS_TOKEN", "status-SECRET"),
    ];
    let stderr = assert_refused(&fixture, &registry, &env, &[]);
    assert!(
        stderr.contains(&format!(
            "  status: commit status `argocd/app (prod)` on {sha} is pending, not success"
        )),
        "{stderr}"
    );
    round.store(1, Ordering::SeqCst);
    let stderr = assert_refused(&fixture, &registry, &env, &[]);
    assert!(
        stderr.contains("  status: check run `argocd/app (prod)` on"),
        "{stderr}"
    );
    assert!(stderr.contains("is failure, not success"), "{stderr}");
    assert!(!stderr.contains("status-SECRET"), "{stderr}");
    round.store(2, Ordering::SeqCst);
    let out = promote(&fixture, &env, &["--format", "json"]);
    assert!(out.status.success(), "{}", printed(&out));
    assert!(!printed(&out).contains("status-SECRET"));

    let status_path = format!("/repos/acme/app/commits/{sha}/status?per_page=100");
    let checks_path =
        format!("/repos/acme/app/commits/{sha}/check-runs?check_name=argocd%2Fapp%20%28prod%29");
    let seen: Vec<(String, String, Option<String>)> = stub
        .seen()
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.header("Authorization").map(str::to_owned),
            )
        })
        .collect();
    let auth = Some("Bearer status-SECRET".to_owned());
    assert_eq!(
        seen,
        [
            ("GET".to_owned(), status_path.clone(), auth.clone()),
            ("GET".to_owned(), status_path.clone(), auth.clone()),
            ("GET".to_owned(), checks_path.clone(), auth.clone()),
            ("GET".to_owned(), status_path, auth.clone()),
            ("GET".to_owned(), checks_path, auth),
        ]
    );
}

#[test]
fn bad_gate_tables_are_configuration_errors_naming_key_and_file() {
    let registry = Registry::start();
    for (gates, says) in [
        ("{ colour = true }", "unknown field `colour`"),
        (
            "{ previous = \"staging\", soak = \"half an hour\" }",
            "is not a duration",
        ),
        ("{ previous = \"qa\" }", "is not a configured environment"),
        ("{ signature = true }", "no key to verify with"),
        (
            "{ signature = { identity = \"x\", issuer = \"https://y\" } }",
            "is needed to check a keyless signature",
        ),
        (
            "{ signature = { issuer = \"y\", trusted-root = \"root.json\" } }",
            "is not an OIDC issuer URL",
        ),
    ] {
        let fixture = gated(&registry, "conf", "", gates);
        let error = fixture.command().arg("env").one_line_error(2);
        assert!(error.contains("Cargo.toml"), "{gates}: {error}");
        assert!(error.contains("environments[0].gates"), "{gates}: {error}");
        assert!(error.contains(says), "{gates}: {error}");
    }
    // Production verifies signatures by default once the tool signs with a key; the dry run
    // shows the gate step before any tag moves.
    let fixture = gated(
        &registry,
        "conf",
        "sign = \"key\"\n",
        "{ previous = \"staging\" }",
    );
    let dry_run = fixture
        .build(
            "builtin",
            &[
                "--build-with",
                "podman",
                "--dry-run",
                "--ref",
                "refs/tags/v1.0.0",
                "--sha",
            ],
        )
        .arg(fixture.head())
        .stdout();
    assert!(
        dry_run.contains("## check the gates of `production`: previous = staging"),
        "{dry_run}"
    );
    let defaulted = Fixture::new(&registry.host(), "conf");
    defaulted.create(
        "Cargo.toml",
        gitops_manifest(&registry.host(), "conf", "sign = \"key\"\n"),
    );
    defaulted.commit("sign");
    let dry_run = defaulted
        .build(
            "builtin",
            &[
                "--build-with",
                "podman",
                "--dry-run",
                "--ref",
                "refs/tags/v1.0.0",
                "--sha",
            ],
        )
        .arg(defaulted.head())
        .stdout();
    assert!(
        dry_run.contains("## check the gates of `production`: signature"),
        "{dry_run}"
    );
    let staging_run = defaulted
        .build("builtin", &["--build-with", "podman", "--dry-run"])
        .stdout();
    assert!(!staging_run.contains("check the gates"), "{staging_run}");
}

#[test]
fn on_a_registry_with_the_referrers_api_the_gates_read_cosigns_signature_and_the_tools_documents() {
    let registry = Registry::start_olareg();
    let host = registry.host();
    let keys = Dir::new();
    let (key, public) = key_pair(&keys);
    let gates = format!(
        "{{ previous = \"staging\", soak = \"30m\", signature = {{ key = \"{}\" }}, provenance = true, sbom = true }}",
        public.display()
    );
    let fixture = gated(&registry, "api", "", &gates);
    let sbom = keys.join("sbom.spdx.json");
    std::fs::write(&sbom, spdx(&["app"])).unwrap();
    let attach = format!("{SPDX}={}", sbom.display());
    let digest = staging(&fixture, now() - 7200, &[], &["--attach", &attach]);
    release(&fixture);
    // Unsigned: refused, through the referrers API, with nothing written.
    let stderr = assert_refused(&fixture, &registry, &[], &[]);
    let refused: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(
        refused,
        [format!("  signature: no signature is attached to {digest}; sign it (sign = \"key\", or `cosign sign --key`) before promoting").as_str()],
        "{stderr}"
    );
    // The real cosign signs it (v3's bundle, found through the API): every gate passes.
    let run = |command: &mut std::process::Command| {
        let out = command.output().unwrap();
        assert!(out.status.success(), "{command:?}: {}", printed(&out));
    };
    run(tool("cosign")
        .current_dir(keys.path())
        .env("COSIGN_PASSWORD", "test")
        .args(["import-key-pair", "--key"])
        .arg(&key)
        .args(["--output-key-prefix", "imported", "-y"]));
    run(tool("cosign")
        .current_dir(keys.path())
        .env("COSIGN_PASSWORD", "test")
        .args([
            "sign",
            "--key",
            "imported.key",
            "--use-signing-config=false",
            "--tlog-upload=false",
            "--allow-http-registry=true",
            "-y",
        ])
        .arg(format!("{host}/api@{digest}")));
    assert_verifies(&public, &format!("{host}/api@{digest}"));
    let out = promote(&fixture, &[], &["--format", "json"]);
    assert!(out.status.success(), "{}", printed(&out));
    let report = crate::support::json(&out.stdout);
    let outcomes: Vec<&str> = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["passed"; 5], "{report}");
    assert_eq!(
        registry.digest("api", "prd-1.0.0").as_deref(),
        Some(digest.as_str())
    );
}

#[test]
fn a_fresh_build_that_would_tag_before_the_gates_could_look_is_refused_before_it_starts() {
    for gates in ["{ sbom = true }", "{ previous = \"staging\" }"] {
        let registry = Registry::start();
        let fixture = gated(&registry, "fresh", "", gates);
        release(&fixture);
        let out = promote(&fixture, &[], &[]);
        assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("refused the image this run would build, so no tag moved"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "no image of commit {} exists yet, so there is nothing to check before this run builds and tags one",
                &fixture.head()[..7]
            )),
            "{stderr}"
        );
        assert!(
            !stderr.contains("build with podman"),
            "nothing was built: {stderr}"
        );
        assert!(registry.tags("fresh").is_empty(), "nothing was pushed");
    }
}

#[test]
fn in_a_gitlab_job_the_status_gate_reads_gitlabs_commit_statuses() {
    let registry = Registry::start();
    let fixture = gated(
        &registry,
        "glstatus",
        "",
        "{ status = \"flux/production\" }",
    );
    staging(&fixture, now() - 60, &[], &[]);
    let sha = fixture.head();
    release(&fixture);
    let round = Arc::new(AtomicUsize::new(0));
    let stub = {
        let round = round.clone();
        Stub::start("127.0.0.1", move |_| {
            let body: &[u8] = match round.load(Ordering::SeqCst) {
                0 => br#"[]"#,
                1 => br#"[{"name":"flux/production","status":"running"},{"name":"flux/production","status":"success"}]"#,
                _ => br#"[{"name":"flux/production","status":"success"}]"#,
            };
            answer(200, &[("Content-Type", "application/json")], body)
        })
    };
    let api = format!("http://{}/api/v4", stub.addr);
    let env = [
        ("GITLAB_CI", "true"),
        ("CI_API_V4_URL", api.as_str()),
        ("CI_PROJECT_ID", "42"),
        ("CI_COMMIT_TAG", "v1.0.0"),
        ("CI_COMMIT_SHA", sha.as_str()),
        ("GITOPS_STATUS_TOKEN", "glpat-SECRET"),
    ];
    let stderr = assert_refused(&fixture, &registry, &env, &[]);
    assert!(
        stderr.contains(&format!(
            "  status: commit {sha} has no commit status named `flux/production`"
        )),
        "{stderr}"
    );
    round.store(1, Ordering::SeqCst);
    // The newest status of the name is the one that counts.
    let stderr = assert_refused(&fixture, &registry, &env, &[]);
    assert!(
        stderr.contains("  status: commit status `flux/production` on")
            && stderr.contains("is running, not success"),
        "{stderr}"
    );
    assert!(!stderr.contains("glpat-SECRET"), "{stderr}");
    round.store(2, Ordering::SeqCst);
    let out = promote(&fixture, &env, &["--format", "json"]);
    assert!(out.status.success(), "{}", printed(&out));
    assert!(!printed(&out).contains("glpat-SECRET"));
    let path = format!(
        "/api/v4/projects/42/repository/commits/{sha}/statuses?name=flux%2Fproduction&per_page=100"
    );
    let seen: Vec<(String, String, Option<String>, Option<String>)> = stub
        .seen()
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.header("PRIVATE-TOKEN").map(str::to_owned),
                r.header("Authorization").map(str::to_owned),
            )
        })
        .collect();
    let one = (
        "GET".to_owned(),
        path,
        Some("glpat-SECRET".to_owned()),
        None,
    );
    assert_eq!(seen, [one.clone(), one.clone(), one]);
}
