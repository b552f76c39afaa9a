//! Issue 29, integrity under a misbehaving registry and in the files and reports the tool
//! writes: created files honour the umask and rewritten ones keep their mode.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::support::{Fault, Proxy, Registry, TestCommand};
use crate::workflows::repository;

/// `command` run by `sh` under `umask`, so that the mode of what it creates can be told.
fn under_umask(command: &TestCommand, umask: &str) -> std::process::Command {
    let outer = command.std();
    let program = outer.get_program().to_owned();
    let args: Vec<_> = outer.get_args().map(ToOwned::to_owned).collect();
    let mut wrapped = std::process::Command::new("sh");
    wrapped
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(program)
        .args(args);
    if let Some(dir) = outer.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (key, value) in outer.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

fn run_under_umask(command: &TestCommand, umask: &str) {
    let output = under_umask(command, umask).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn generated_files_honour_the_umask_and_a_rewrite_keeps_the_mode() {
    let dir = repository(&format!(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"shop\"\n{}",
        crate::workflows::INSTALL_PINS
    ));
    let workflow = dir.join(".github/workflows/gitops-pipeline.yml");
    let gitlab = dir.join(".gitlab-ci.yml");
    let flux = dir.join("deploy/flux.yaml");
    let generate = |umask: &str| {
        let mut github = dir.command();
        github.args(["init-workflows", "-q"]);
        run_under_umask(&github, umask);
        let mut gitlab = dir.command();
        gitlab.args(["init-workflows", "-q", "--ci", "gitlab"]);
        run_under_umask(&gitlab, umask);
        let mut output = dir.command();
        output.args(["flux", "-q", "--output"]).arg(&flux);
        run_under_umask(&output, umask);
    };

    generate("022");
    let created = [&workflow, &gitlab, &flux];
    for path in created {
        assert_eq!(mode(path), 0o644, "{}", path.display());
    }

    // Another umask for new files; the existing ones keep the modes they were given.
    std::fs::set_permissions(&workflow, std::fs::Permissions::from_mode(0o664)).unwrap();
    std::fs::set_permissions(&gitlab, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&workflow, "stale\n").unwrap();
    std::fs::write(&flux, "stale\n").unwrap();
    std::fs::remove_file(dir.join(".gitlab/gitops.gitlab-ci.yml")).unwrap();
    generate("027");
    assert_ne!(std::fs::read_to_string(&workflow).unwrap(), "stale\n");
    assert_ne!(std::fs::read_to_string(&flux).unwrap(), "stale\n");
    assert_eq!(mode(&workflow), 0o664);
    assert_eq!(mode(&gitlab), 0o600);
    assert_eq!(mode(&flux), 0o644);
    assert_eq!(mode(&dir.join(".gitlab/gitops.gitlab-ci.yml")), 0o640);
}

/// `env --format gitlab` with GitLab's variables for `branch`, in `dir`.
fn gitlab_env(dir: &crate::support::Dir, branch: &str) -> TestCommand {
    let mut command = dir.command();
    command
        .env("GITLAB_CI", "true")
        .env("CI_COMMIT_BRANCH", branch)
        .env("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567")
        .args(["env", "--format", "gitlab", "--timestamp", "1654880868"]);
    command
}

#[test]
fn a_dotenv_report_sourced_by_bash_runs_nothing() {
    let dir = crate::support::Dir::new();
    // A report of plain values: sourced with every command made unfindable, nothing runs and
    // each variable holds exactly what was reported.
    let report = gitlab_env(&dir, "test/uat2").stdout();
    std::fs::write(dir.join("gitops.env"), &report).unwrap();
    let sourced = std::process::Command::new("bash")
        .args([
            "-euc",
            "PATH=/nonexistent; . ./gitops.env; printf '%s\\n' \"$GITOPS_REF\" \"$GITOPS_TAGS\"",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        sourced.status.success(),
        "{}",
        String::from_utf8_lossy(&sourced.stderr)
    );
    assert_eq!(
        String::from_utf8(sourced.stdout).unwrap(),
        "refs/heads/test/uat2\ntst-uat2-0123456-1654880868,tst-uat2-latest\n"
    );

    // A branch whose name is shell: refused with one line, and no report is written.
    let planted = dir.join("ran");
    let mut command = gitlab_env(&dir, "main$(touch${IFS}ran)");
    command.arg("--dotenv").arg(dir.join("evil.env"));
    let error = command.one_line_error(2);
    assert!(
        error.starts_with("error: GITOPS_REF=`refs/heads/main$(touch${IFS}ran)` is not plain"),
        "{error}"
    );
    assert!(error.ends_with("use --format json"), "{error}");
    assert!(!dir.join("evil.env").exists());
    assert!(!planted.exists());
}

/// An upload `Location` and a redirect `Location` that carry userinfo, planted by the fault
/// proxy in front of a real registry: the client goes where they say, but never sends the
/// userinfo as credentials (the registry is anonymous, so no request carries any).
#[test]
fn userinfo_in_a_registry_supplied_location_is_never_sent() {
    use cargo_gitops::registry::client::{ClientOptions, RegistryClient};
    use std::sync::{Arc, Mutex, OnceLock};

    let registry = Registry::start();
    // A real upload session, opened directly: the proxy hands its path out as the Location.
    let session = {
        let response = ureq::post(format!(
            "http://127.0.0.1:{}/v2/app/blobs/uploads/",
            registry.port
        ))
        .send_empty()
        .unwrap();
        assert_eq!(response.status(), 202);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        // The path of the session, whatever form the registry wrote it in.
        let path = location.split_once("/v2/").unwrap().1.to_owned();
        format!("/v2/{path}")
    };
    let blob = b"a blob the proxy sends elsewhere".to_vec();
    let digest = crate::support::sha256(&blob);
    let proxy_addr: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let authorizations = Arc::new(Mutex::new(Vec::new()));
    let proxy = {
        let (proxy_addr, authorizations, digest) =
            (proxy_addr.clone(), authorizations.clone(), digest.clone());
        Proxy::start(registry.port, move |seen| {
            authorizations.lock().unwrap().push(format!(
                "{} {} {:?}",
                seen.method, seen.path, seen.authorization
            ));
            let here = proxy_addr.get().unwrap();
            if seen.method == "POST" && seen.path.starts_with("/v2/app/blobs/uploads/") {
                let location = format!("http://intruder:secret@{here}{session}");
                return Fault::Answer(202, vec![("Location", location)], Vec::new());
            }
            if seen.method == "GET" && seen.path == format!("/v2/app/blobs/{digest}") {
                let location = format!("//intruder:secret@{here}/v2/app/blobs/{digest}?moved");
                return Fault::Answer(307, vec![("Location", location)], Vec::new());
            }
            Fault::Forward
        })
    };
    proxy_addr.set(proxy.addr.clone()).unwrap();

    let client = RegistryClient::new(&proxy.addr, None, &ClientOptions::default());
    client.upload_new_blob("app", &digest, &blob).unwrap();
    assert_eq!(
        registry.blob("app", &digest),
        blob,
        "the upload reached the registry"
    );
    let descriptor: cargo_gitops::registry::oci::Descriptor =
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/octet-stream",
            "digest": digest,
            "size": blob.len(),
        }))
        .unwrap();
    assert_eq!(client.get_blob("app", &descriptor).unwrap(), blob);
    let seen = authorizations.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|line| line.starts_with("PUT /v2/app/blobs/uploads/")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|line| line.contains("?moved")), "{seen:?}");
    assert!(seen.iter().all(|line| line.ends_with(" None")), "{seen:?}");
}

/// The lookup tag of an environment with build arguments carries 64 bits of their hash. A
/// lookup tag of the earlier 32-bit form is not trusted by a build: the commit builds once
/// more, under the new tag, and the old tag is left as it was.
#[test]
fn lookup_tags_of_the_32_bit_form_are_not_reused_and_the_commit_builds_once_more() {
    use crate::support::{Fixture, gitops_manifest};

    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let sha = fixture.head();
    let build = |timestamp: &str| {
        fixture
            .build("builtin", &["--build-with", "podman", "--format", "json"])
            .args(["--ref", "refs/heads/main", "--timestamp", timestamp])
            .json()
    };
    let first = build("1654880868");
    assert_eq!(first["action"], "built");
    // What an earlier version pushed for `PROFILE = "staging"`: the same image under the
    // 8-hex form of the tag (the hash's first 32 bits).
    let old_tag = format!("commit-{sha}-30f5b685");
    let (bytes, media_type, _) = registry
        .manifest("fixture", &format!("commit-{sha}"))
        .unwrap();
    registry.put_manifest("fixture", &old_tag, &bytes, &media_type);
    let old_digest = registry.digest("fixture", &old_tag).unwrap();

    fixture.create(
        "Cargo.toml",
        gitops_manifest(
            &registry.host(),
            "fixture",
            "\n[[workspace.metadata.gitops.environments]]\nname = \"staging\"\nbuild-args = { PROFILE = \"staging\" }\n",
        ),
    );
    let second = build("1654880869");
    assert_eq!(second["action"], "built", "{second}");
    let new_tag = format!("commit-{sha}-30f5b685e61d6656");
    assert_eq!(
        registry.digest("fixture", &new_tag).as_deref(),
        second["digest"].as_str()
    );
    assert_eq!(registry.digest("fixture", &old_tag).unwrap(), old_digest);
}

/// Every tag of `name` with the digest it names, read from the registry itself.
fn tag_snapshot(registry: &Registry, name: &str) -> Vec<(String, String)> {
    let mut tags = registry.tags(name);
    tags.sort();
    tags.into_iter()
        .map(|tag| {
            let digest = registry.digest(name, &tag).unwrap();
            (tag, digest)
        })
        .collect()
}

/// The fault proxy answers the lookup of a commit that has no image with another commit's
/// digest (as a registry or proxy that mixes answers up would): the run reads that image by
/// digest, finds another commit's revision, and stops, one line and exit 1, with every tag
/// as it was. The same when the digest announced is not the hash of the bytes served.
#[test]
fn a_lookup_answered_with_another_commits_image_moves_no_tag() {
    use crate::support::{Fixture, gitops_manifest};

    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let first_sha = fixture.head();
    let first = fixture
        .build("builtin", &["--build-with", "podman", "--format", "json"])
        .args(["--ref", "refs/heads/main", "--timestamp", "1654880868"])
        .json();
    assert_eq!(first["action"], "built");
    let first_digest = first["digest"].as_str().unwrap().to_owned();
    let (first_bytes, media_type, _) = registry.manifest("fixture", &first_digest).unwrap();
    fixture.create("second.txt", "a second commit, never built\n");
    let sha = fixture.commit("second");
    assert_ne!(sha, first_sha);

    let forged = format!("sha256:{}", "ab".repeat(32));
    let lookup_path = format!("/v2/fixture/manifests/commit-{sha}");
    let headers = |digest: &str| {
        vec![
            ("Docker-Content-Digest", digest.to_owned()),
            ("Content-Type", media_type.clone()),
        ]
    };
    let cases = [
        // Another commit's real image.
        (first_digest.clone(), None),
        // A digest the bytes served under it do not hash to.
        (
            forged.clone(),
            Some(format!("/v2/fixture/manifests/{forged}")),
        ),
    ];
    for (announced, planted_at) in cases {
        let before = tag_snapshot(&registry, "fixture");
        let proxy = {
            let (lookup_path, planted_at) = (lookup_path.clone(), planted_at.clone());
            let (first_bytes, headers) = (first_bytes.clone(), headers(&announced));
            Proxy::start(registry.port, move |seen| {
                if seen.path == lookup_path {
                    let body = if seen.method == "HEAD" {
                        Vec::new()
                    } else {
                        first_bytes.clone()
                    };
                    return Fault::Answer(200, headers.clone(), body);
                }
                if planted_at.as_deref() == Some(seen.path) {
                    return Fault::Answer(200, headers.clone(), first_bytes.clone());
                }
                Fault::Forward
            })
        };
        fixture.create("Cargo.toml", gitops_manifest(&proxy.addr, "fixture", ""));
        let line = fixture
            .build("builtin", &["--build-with", "podman", "-q"])
            .args(["--ref", "refs/heads/main", "--timestamp", "1654880869"])
            .one_line_error(1);
        if planted_at.is_none() {
            assert!(
                line.starts_with(&format!("error: {}: lookup failed: ", proxy.addr)),
                "{line}"
            );
            assert!(
                line.contains(&format!(
                    "names {first_digest}, the image of commit {first_sha}, not of commit {sha}; no tag was moved onto it"
                )),
                "{line}"
            );
        } else {
            assert!(
                line.starts_with(&format!("error: {}: read manifest failed: ", proxy.addr))
                    && line.contains(&format!("not {forged} as asked for")),
                "{line}"
            );
        }
        assert_eq!(tag_snapshot(&registry, "fixture"), before, "{line}");
        assert!(
            !proxy
                .log()
                .iter()
                .any(|request| request.starts_with("PUT ")),
            "{:?}",
            proxy.log()
        );
    }
}

/// A referrers tag index that lists a referrer the repository no longer has (planted in the
/// real registry: listed while it existed, then deleted). The registry refuses every index
/// that names it, so without healing each later signed build of that digest fails. The
/// signed build rewrites the index without it, succeeds, and real cosign verifies the image.
/// Where the registry keeps refusing (the fault proxy), the one error line names the
/// referrers tag index, not a retag.
#[test]
fn a_referrers_index_listing_a_deleted_referrer_heals_and_the_signed_build_verifies() {
    use crate::signing::{assert_verifies, key_pair, referrers_index};
    use crate::support::{Dir, Fixture, gitops_manifest};
    use cargo_gitops::registry::oci::Descriptor;
    use cargo_gitops::registry::referrers::Artifact;

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "signed");
    let build = |extra: &str, key: Option<&Path>, host: &str| {
        fixture.create("Cargo.toml", gitops_manifest(host, "signed", extra));
        let mut command = fixture.build("builtin", &["--build-with", "podman"]);
        command.args(["--ref", "refs/heads/main", "--timestamp", "1654880868"]);
        if let Some(key) = key {
            command.env("GITOPS_SIGNING_KEY", std::fs::read_to_string(key).unwrap());
        }
        command
    };
    let first = build("", None, &registry.host())
        .args(["--format", "json"])
        .json();
    assert_eq!(first["action"], "built");
    let digest = first["digest"].as_str().unwrap().to_owned();
    let (subject_bytes, subject_type, _) = registry.manifest("signed", &digest).unwrap();
    let subject: Descriptor = serde_json::from_value(serde_json::json!({
        "mediaType": subject_type,
        "digest": digest,
        "size": subject_bytes.len(),
    }))
    .unwrap();

    // A referrer stored, listed in the index beside what the build attached, then deleted.
    let gone = Artifact {
        artifact_type: "application/vnd.example.deleted".to_owned(),
        media_type: "text/plain".to_owned(),
        bytes: b"a document since deleted".to_vec(),
        annotations: Default::default(),
    }
    .manifest(&subject);
    registry.put_blob("signed", b"{}");
    registry.put_blob("signed", b"a document since deleted");
    let gone_digest = gone.digest.to_string();
    registry.put_manifest("signed", &gone_digest, &gone.bytes, OCI_MANIFEST);
    let mut index = registry
        .manifest(
            "signed",
            &format!("sha256-{}", digest.trim_start_matches("sha256:")),
        )
        .map(|(bytes, _, _)| crate::support::json(&bytes))
        .unwrap_or_else(
            || serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
        );
    let listed_before = index["manifests"].as_array().unwrap().len();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": gone_digest,
            "size": gone.bytes.len(),
            "artifactType": "application/vnd.example.deleted",
        }));
    let tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    registry.put_manifest(
        "signed",
        &tag,
        &serde_json::to_vec(&index).unwrap(),
        OCI_INDEX,
    );
    let deleted = ureq::delete(format!(
        "http://{}/v2/signed/manifests/{gone_digest}",
        registry.host()
    ))
    .call()
    .unwrap();
    assert_eq!(deleted.status(), 202);
    assert!(registry.manifest("signed", &gone_digest).is_none());

    // Where the registry refuses every write of the index, the error is the index's.
    let keys = Dir::new();
    let (key, public) = key_pair(&keys);
    let refusing = Proxy::start(registry.port, |seen| {
        if seen.method == "PUT" && seen.path.contains("/manifests/sha256-") {
            let body = br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
            return Fault::Answer(
                400,
                vec![("Content-Type", "application/json".to_owned())],
                body.to_vec(),
            );
        }
        Fault::Forward
    });
    let line = build("sign = \"key\"\n", Some(&key), &refusing.addr)
        .arg("-q")
        .one_line_error(1);
    assert!(
        line.starts_with(&format!(
            "error: {}: attach failed: cannot write the referrers tag index signed:{tag}: ",
            refusing.addr
        )) && line.contains("MANIFEST_BLOB_UNKNOWN")
            && !line.contains("retag"),
        "{line}"
    );
    drop(refusing);

    // The real registry: the index is rewritten without the deleted referrer.
    let signed = build("sign = \"key\"\n", Some(&key), &registry.host())
        .args(["--format", "json"])
        .json();
    assert_eq!(signed["action"], "retagged", "{signed}");
    assert_eq!(signed["digest"], digest.as_str());
    let healed = referrers_index(&registry, "signed", &digest);
    let listed: Vec<&str> = healed["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&gone_digest.as_str()), "{healed}");
    // What the first build attached, and the signature.
    assert_eq!(listed.len(), listed_before + 1, "{healed}");
    assert_verifies(&public, &format!("{}/signed@{digest}", registry.host()));
}

/// A registry that answers every request slowly (the fault proxy delays each by 3 s): the
/// run stops at its deadline, from `--timeout` or from `timeout` in the configuration, with
/// one line that names the step it was in, and within seconds.
#[test]
fn a_slow_registry_stops_the_run_at_its_deadline_naming_the_step() {
    use crate::support::{Fixture, gitops_manifest};
    use std::time::{Duration, Instant};

    let registry = Registry::start();
    let proxy = Proxy::start(registry.port, |_| Fault::Delay(Duration::from_secs(3)));
    let fixture = Fixture::new(&proxy.addr, "fixture");
    let sha = fixture.head();
    let lookup = format!("`lookup {}/fixture:commit-{sha}`", proxy.addr);
    for (configured, flag) in [
        ("", Some("2s")),
        ("timeout = \"2s\"\n", None),
        ("timeout = \"1h\"\n", Some("2")),
    ] {
        fixture.create(
            "Cargo.toml",
            gitops_manifest(&proxy.addr, "fixture", configured),
        );
        let mut command = fixture.build("builtin", &["--build-with", "podman", "-q"]);
        command.args(["--ref", "refs/heads/main"]);
        if let Some(flag) = flag {
            command.args(["--timeout", flag]);
        }
        let started = Instant::now();
        let line = command.one_line_error(1);
        let elapsed = started.elapsed();
        assert_eq!(
            line,
            format!(
                "error: the run took longer than its timeout of 2s, during {lookup}; raise --timeout (or `timeout` in the configuration) if that step needs longer, or find out why it is slow"
            )
        );
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(8),
            "{elapsed:?}"
        );
    }
    assert!(registry.tags("fixture").is_empty());

    // Durations that are not one: refused before anything runs, exit 2, one line.
    let line = fixture
        .build("builtin", &["--timeout", "soon"])
        .usage_error();
    assert!(
        line.starts_with("error: --timeout: `soon` is not a duration"),
        "{line}"
    );
    fixture.create(
        "Cargo.toml",
        gitops_manifest(&proxy.addr, "fixture", "timeout = \"0s\"\n"),
    );
    let line = fixture.command().arg("env").usage_error();
    assert!(line.contains("timeout"), "{line}");
    assert!(line.contains("`0s` is not a duration"), "{line}");
}

/// Errors name what they are about: a bad `registry` in a package's table is that table's
/// key in that package's manifest; an environment's `image` on another registry is said to
/// be one (not a repeat of `registry`).
#[test]
fn configuration_errors_name_the_key_where_it_is_written() {
    use crate::support::Dir;

    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        "[workspace]\nresolver = \"3\"\nmembers = [\"crates/*\"]\n\n\
         [workspace.metadata.gitops]\nregistry = \"registry.example.com/acme\"\n",
    );
    dir.create(
        "crates/web/Cargo.toml",
        "[package]\nname = \"web\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [package.metadata.gitops]\nregistry = \"Registry.Example.com/acme\"\nimage = \"web\"\n",
    );
    dir.commit("workspace");
    let line = dir.command().args(["env", "-p", "web"]).usage_error();
    assert_eq!(
        line,
        format!(
            "error: {}: package.metadata.gitops.registry: `Registry.Example.com/acme` has uppercase letters; write `registry.example.com/acme`",
            dir.join("crates/web/Cargo.toml").display()
        )
    );

    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"shop\"\n\n\
         [[workspace.metadata.gitops.environments]]\nname = \"staging\"\nimage = \"quay.io/team/shop\"\n",
    );
    dir.commit("configured");
    let line = dir.command().arg("env").usage_error();
    assert!(
        line.ends_with(
            "workspace.metadata.gitops.environments[0].image: `quay.io/team/shop` names another registry (`quay.io`) than `registry` (`ghcr.io/acme`); with `registry` set an environment's image is a repository there: drop the host, or unset `registry` and write every image as a full reference"
        ),
        "{line}"
    );
}

/// An upload location (from the registry, through the fault proxy) that cannot be reached is
/// reported as that location, not as the registry.
#[test]
fn an_unreachable_upload_location_is_reported_as_that_location() {
    use cargo_gitops::registry::client::{ClientOptions, RegistryClient, RetryPolicy};
    use std::time::Duration;

    let registry = Registry::start();
    // A port nothing listens on.
    let closed = crate::support::free_port();
    let proxy = Proxy::start(registry.port, move |seen| {
        if seen.method == "POST" {
            let location = format!("http://127.0.0.1:{closed}/upload/1");
            return Fault::Answer(202, vec![("Location", location)], Vec::new());
        }
        Fault::Forward
    });
    let options = ClientOptions {
        retry: RetryPolicy {
            attempts: 2,
            budget: Duration::from_secs(10),
            base_delay: Duration::from_millis(50),
        },
        ..ClientOptions::default()
    };
    let client = RegistryClient::new(&proxy.addr, None, &options);
    let blob = b"a blob for nowhere".to_vec();
    let digest = crate::support::sha256(&blob);
    let error = client
        .upload_new_blob("app", &digest, &blob)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!(
            "{}: upload blob failed: cannot reach http://127.0.0.1:{closed}, where the registry sent this request (",
            proxy.addr
        )),
        "{error}"
    );
    assert!(!error.contains("cannot reach registry"), "{error}");
}
