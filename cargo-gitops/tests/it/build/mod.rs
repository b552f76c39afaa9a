//! `cargo gitops build` end to end against a real registry: build once with podman (or docker
//! buildx), promote by retagging with each retagger that runs here, and the failures around it.
//! The dry run against the run (`plan`), what images are made of and where their tags end
//! (`images`), and what a failing tool is said to mean (`errors`) have modules of their own.

use serde_json::Value;

use crate::support::{
    Buildkit, Fixture, Registry, TestCommand, docker_config_with_buildx, json, path_with_only,
    printed,
};

mod errors;
mod images;
mod plan;

/// `cargo gitops build --build-with BUILDER --retag-with RETAGGER` plus `args`, in the fixture.
fn build(fixture: &Fixture, builder: &str, retagger: &str, args: &[&str]) -> TestCommand {
    let mut command = fixture.build(retagger, &["--build-with", builder]);
    command.args(args);
    command
}

/// Builds `main` with podman; returns the digest of the lookup tag.
fn build_main(registry: &Registry, fixture: &Fixture) -> String {
    let args = ["--format", "json", "--timestamp", "1654880868"];
    let report = build(fixture, "podman", "builtin", &args).json();
    let sha = fixture.head();
    assert_eq!(report["action"], "built");
    assert_eq!(report["environment"], "staging");
    let lookup = format!("commit-{sha}");
    let digest = registry
        .digest(&fixture.image, &lookup)
        .expect("lookup tag pushed");
    assert_eq!(report["digest"], digest.as_str());
    let stg = format!("stg-{}-1654880868", &sha[..7]);
    // The build's provenance is attached before any tag names the image: the registry has
    // no referrers API, so its referrers tag lists it.
    let referrers = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    assert_eq!(
        registry.tags(&fixture.image),
        vec![
            lookup.clone(),
            referrers,
            stg.clone(),
            "stg-latest".to_owned()
        ]
    );
    assert_eq!(
        registry.digest(&fixture.image, &stg).as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(
        registry.digest(&fixture.image, "stg-latest").as_deref(),
        Some(digest.as_str())
    );
    digest
}

/// Tags HEAD `v1.0.0`, checks it out detached, and promotes it with `retagger`, with a PATH
/// that has no podman (so a build attempt would fail) and no git (it is read through git2).
fn promote(
    registry: &Registry,
    fixture: &Fixture,
    retagger: &str,
    extra_path: &[&str],
    digest: &str,
) {
    fixture.git(["tag", "-a", "-m", "release", "v1.0.0"]);
    fixture.git(["checkout", "-q", "--detach", "v1.0.0"]);
    let (_bin, path) = path_with_only(extra_path);
    let before = registry.requests().len();
    let mut command = build(fixture, "podman", retagger, &["--format", "json"]);
    command.env("PATH", path);
    if retagger == "imagetools" {
        command.env("DOCKER_CONFIG", docker_config_with_buildx());
    }
    let report = command.json();
    assert_eq!(report["action"], "retagged", "{report}");
    assert_eq!(report["environment"], "production");
    assert_eq!(report["digest"], digest);
    assert_eq!(
        report["tags"],
        serde_json::json!(["prd-1.0.0", "prd-latest"])
    );
    assert_eq!(
        registry.digest(&fixture.image, "prd-1.0.0").as_deref(),
        Some(digest)
    );
    assert_eq!(
        registry.digest(&fixture.image, "prd-latest").as_deref(),
        Some(digest)
    );
    // A retag moves no layer: nothing is uploaded, and no layer is downloaded.
    let (manifest, _, _) = registry.manifest(&fixture.image, digest).unwrap();
    let layers: Vec<String> = json(&manifest)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    assert!(!layers.is_empty());
    let moved: Vec<String> = registry.requests()[before..]
        .iter()
        .filter(|r| {
            r.contains("/blobs/uploads")
                || (r.starts_with("GET ") && layers.iter().any(|l| r.contains(l.as_str())))
        })
        .cloned()
        .collect();
    assert!(moved.is_empty(), "{moved:?}");
}

/// Every tag of the fixture's image is on `digest`.
fn assert_every_tag_on(registry: &Registry, fixture: &Fixture, digest: &str) {
    // The referrers tag (`sha256-<hex>`) names the index of what is attached, not an image;
    // `buildcache` holds buildx's cache of the builds.
    for tag in registry
        .tags(&fixture.image)
        .into_iter()
        .filter(|t| !t.starts_with("sha256-") && t != "buildcache")
    {
        assert_eq!(
            registry.digest(&fixture.image, &tag).as_deref(),
            Some(digest),
            "{tag}"
        );
    }
}

/// Builds `main` in a new fixture, then promotes it with `retagger` (see `promote`).
fn build_then_promote(retagger: &str, extra_path: &[&str]) {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let digest = build_main(&registry, &fixture);
    promote(&registry, &fixture, retagger, extra_path, &digest);
}

#[test]
fn builds_once_then_promotes_by_retag_with_the_builtin_client() {
    build_then_promote("builtin", &[]);
}

#[test]
fn promotes_by_retag_with_skopeo() {
    build_then_promote("skopeo", &["skopeo"]);
}

#[test]
fn a_second_run_for_the_same_commit_retags() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let digest = build_main(&registry, &fixture);
    let args = ["--format", "json", "--timestamp", "1654880999"];
    let report = build(&fixture, "podman", "builtin", &args).json();
    assert_eq!(report["action"], "retagged");
    assert_eq!(report["digest"], digest.as_str());
    let sha = fixture.head();
    assert_eq!(
        registry
            .digest(&fixture.image, &format!("stg-{}-1654880999", &sha[..7]))
            .as_deref(),
        Some(digest.as_str())
    );
}

#[test]
fn concurrent_runs_for_one_commit_leave_every_tag_on_one_digest() {
    // Both runs build; whichever claims the lookup tag first wins, and the other's tags follow.
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let runs: Vec<_> = (0..2)
        .map(|i| {
            // Different source times make the two builds differ, as racing builds of a
            // Dockerfile that is not reproducible do.
            let args = ["-q", "--timestamp", &format!("165488086{i}")];
            let mut command = build(&fixture, "podman", "builtin", &args).std();
            command.env("SOURCE_DATE_EPOCH", format!("165488000{i}"));
            command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for run in runs {
        let output = run.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let sha = fixture.head();
    let lookup = registry
        .digest(&fixture.image, &format!("commit-{sha}"))
        .unwrap();
    assert_every_tag_on(&registry, &fixture, &lookup);
}

#[test]
fn no_environment_is_nothing_to_do() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    fixture.git(["tag", "nightly"]);
    fixture.git(["checkout", "-q", "--detach", "nightly"]);
    let output = fixture
        .command()
        .args(["build", "--format", "json"])
        .expect_exit(0);
    assert_eq!(json(&output.stdout)["action"], "none");
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to deploy"));
    assert!(registry.requests().is_empty(), "{:?}", registry.requests());
}

#[test]
fn a_stopped_registry_fails_naming_it_and_the_step() {
    let mut registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    registry.stop();
    let error = build(&fixture, "podman", "builtin", &[]).expect_error(1);
    assert!(
        error.contains(&registry.host()) && error.contains("lookup"),
        "{error}"
    );
}

#[test]
fn a_registry_killed_mid_push_leaves_no_environment_tag_and_a_rerun_completes() {
    let mut registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let mut run = build(&fixture, "podman", "builtin", &["-q"])
        .std()
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the registry as soon as the first blob upload starts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !registry
        .requests()
        .iter()
        .any(|r| r.starts_with("POST ") && r.contains("/blobs/uploads/"))
    {
        assert!(std::time::Instant::now() < deadline, "no upload started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    registry.stop();
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    registry.restart();
    let tags = registry.tags(&fixture.image);
    assert!(
        tags.iter().all(|t| !t.starts_with("stg-")),
        "an environment tag survived a failed push: {tags:?}"
    );

    let report = build(&fixture, "podman", "builtin", &["--format", "json"]).json();
    let digest = report["digest"].as_str().unwrap().to_owned();
    assert_every_tag_on(&registry, &fixture, &digest);
}

#[test]
fn wrong_credentials_say_not_logged_in_and_never_print_the_password() {
    let registry = Registry::start_with_user("ci", "right-password-1");
    let fixture = Fixture::new(&registry.host(), "fixture");
    let args = ["--registry-user", "ci", "--registry-password-stdin", "-v"];
    let output = fixture
        .build("builtin", &args)
        .write_stdin("wrong-password-2\n")
        .expect_exit(1);
    let all = printed(&output);
    assert!(
        all.contains(&format!("not logged in to {}", registry.host())),
        "{all}"
    );
    assert!(
        !all.contains("wrong-password-2") && !all.contains("right-password-1"),
        "{all}"
    );
}

#[test]
fn dry_run_prints_the_commands_and_runs_none() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let (_bin, path) = path_with_only(&[]);
    let args = ["--dry-run", "--timestamp", "1654880868"];
    let output = build(&fixture, "podman", "skopeo", &args)
        .env("PATH", path)
        .env("GITOPS_REGISTRY_USER", "ci")
        .env("GITOPS_REGISTRY_PASSWORD", "s3cret-value")
        .expect_exit(0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let sha = fixture.head();
    let host = registry.host();
    assert!(
        stdout.contains(&format!(
            "skopeo inspect --raw --tls-verify=false docker://{host}/fixture:commit-{sha}"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("podman push --tls-verify=false --digestfile"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{host}/fixture:stg-{}-1654880868", &sha[..7])),
        "{stdout}"
    );
    assert!(
        !stdout.contains("s3cret-value")
            && !String::from_utf8_lossy(&output.stderr).contains("s3cret-value")
    );
    assert!(
        registry.requests().is_empty(),
        "dry run spoke to the registry: {:?}",
        registry.requests()
    );
}

#[test]
fn a_missing_tool_is_one_line_that_says_what_to_install() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let (_bin, path) = path_with_only(&[]);
    let error = fixture
        .command()
        .env("PATH", path)
        .args(["build", "--retag-with", "skopeo"])
        .expect_error(1);
    assert!(
        error.contains("`skopeo` is not installed") && error.contains("apt-get install skopeo"),
        "{error}"
    );
}

#[test]
fn github_actions_outputs_and_summary() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let sha = fixture.head();
    let outputs = fixture.path().join("github_output");
    let summary = fixture.path().join("step_summary");
    build(
        &fixture,
        "podman",
        "builtin",
        &["--timestamp", "1654880868"],
    )
    .env("GITHUB_ACTIONS", "true")
    .env("GITHUB_REF", "refs/heads/main")
    .env("GITHUB_SHA", &sha)
    .env("GITHUB_OUTPUT", &outputs)
    .env("GITHUB_STEP_SUMMARY", &summary)
    .assert()
    .success()
    .stderr(predicates::str::contains("::group::build with podman"));
    let text = std::fs::read_to_string(&outputs).unwrap();
    let digest = registry
        .digest("fixture", &format!("commit-{sha}"))
        .unwrap();
    assert!(text.contains("action=built\nbuilt=true\n"), "{text}");
    assert!(text.contains(&format!("digest={digest}\n")), "{text}");
    assert!(
        text.contains(&format!(
            "tags<<GITOPS_EOF\nstg-{}-1654880868\nstg-latest\nGITOPS_EOF\n",
            &sha[..7]
        )),
        "{text}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("| action | `built` |"), "{summary}");
}

#[test]
fn promotes_by_retag_with_crane() {
    build_then_promote("crane", &["crane"]);
}

#[test]
fn promotes_by_retag_with_docker_buildx_imagetools() {
    build_then_promote("imagetools", &["docker"]);
}

/// `build` with docker buildx through `buildkit`'s builder, named by `BUILDX_BUILDER` and read
/// from its `DOCKER_CONFIG` (which holds no login, as the scrubbed one).
fn buildx(buildkit: &Buildkit, fixture: &Fixture, args: &[&str]) -> TestCommand {
    let mut command = build(fixture, "buildx", "builtin", args);
    command
        .env("DOCKER_CONFIG", buildkit.docker_config())
        .env("BUILDX_BUILDER", buildkit.name());
    command
}

#[test]
fn builds_with_docker_buildx() {
    let buildkit = Buildkit::start();
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let report = buildx(&buildkit, &fixture, &["--format", "json"]).json();
    assert_eq!(report["action"], "built", "{report}");
    let sha = fixture.head();
    let digest = registry
        .digest(&fixture.image, &format!("commit-{sha}"))
        .unwrap();
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(
        registry.digest(&fixture.image, "stg-latest").as_deref(),
        Some(digest.as_str())
    );
    // Without cache-from or cache-to, the build's cache went into the image's own repository.
    let (cache, _, _) = registry
        .manifest(&fixture.image, "buildcache")
        .expect("a buildcache tag");
    assert!(
        String::from_utf8_lossy(&cache).contains("application/vnd.buildkit.cacheconfig.v0"),
        "{}",
        String::from_utf8_lossy(&cache)
    );

    // A second run for the same commit finds the lookup tag and only retags.
    let before = registry.settled_requests().len();
    let args = ["--format", "json", "--timestamp", "1654880999"];
    let report = buildx(&buildkit, &fixture, &args).json();
    assert_eq!(report["action"], "retagged", "{report}");
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(
        registry
            .digest(&fixture.image, &format!("stg-{}-1654880999", &sha[..7]))
            .as_deref(),
        Some(digest.as_str())
    );
    let uploads: Vec<String> = registry
        .requests_since(before)
        .into_iter()
        .filter(|r| r.contains("/blobs/uploads"))
        .collect();
    assert!(uploads.is_empty(), "a retag uploaded: {uploads:?}");
    assert_every_tag_on(&registry, &fixture, &digest);
}

/// The image manifest (digest and config) of the one platform of the index `digest` that
/// buildx pushed, and how many attestation manifests the index holds.
fn buildx_image(registry: &Registry, image: &str, digest: &str) -> (String, Value, usize) {
    let (index, media_type, _) = registry.manifest(image, digest).unwrap();
    assert_eq!(media_type, "application/vnd.oci.image.index.v1+json");
    let children = json(&index)["manifests"].as_array().unwrap().clone();
    let (attestations, images): (Vec<_>, Vec<_>) = children
        .iter()
        .partition(|m| m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest");
    assert_eq!(images.len(), 1, "{children:?}");
    let child = images[0]["digest"].as_str().unwrap().to_owned();
    let (manifest, _, _) = registry.manifest(image, &child).unwrap();
    let config = json(&manifest)["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = json(&registry.blob(image, &config));
    (child, config, attestations.len())
}

#[test]
fn buildx_builds_of_one_commit_for_staging_and_production_are_one_image() {
    // Each environment's run finds an empty registry at the configured address (a fresh one
    // started on the port of the last), so both build, on one BuildKit.
    let buildkit = Buildkit::start();
    let mut staging = Registry::start();
    let fixture = Fixture::new(&staging.host(), "fixture");
    let report = buildx(&buildkit, &fixture, &["--format", "json"]).json();
    assert_eq!(report["action"], "built", "{report}");
    assert_eq!(report["environment"], "staging");
    let staging_digest = report["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        staging
            .digest(&fixture.image, &format!("commit-{}", fixture.head()))
            .as_deref(),
        Some(staging_digest.as_str())
    );
    let (staging_image, config, attestations) =
        buildx_image(&staging, &fixture.image, &staging_digest);
    staging.stop();

    let production = Registry::start_on(staging.port);
    assert_eq!(production.host(), staging.host());
    assert!(production.tags(&fixture.image).is_empty());
    fixture.git(["tag", "-a", "-m", "release", "v1.0.0"]);
    fixture.git(["checkout", "-q", "--detach", "v1.0.0"]);
    let report = buildx(&buildkit, &fixture, &["--format", "json"]).json();
    assert_eq!(report["action"], "built", "{report}");
    assert_eq!(report["environment"], "production");
    let production_digest = report["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        production.digest(&fixture.image, "prd-1.0.0").as_deref(),
        Some(production_digest.as_str())
    );
    assert_every_tag_on(&production, &fixture, &production_digest);

    // The image itself is byte-identical: its times are the commit's (the tool passes
    // `SOURCE_DATE_EPOCH` from it; the fixture commits at GIT_COMMITTER_DATE), not the build's.
    let (production_image, production_config, _) =
        buildx_image(&production, &fixture.image, &production_digest);
    assert_eq!(production_image, staging_image);
    assert_eq!(production_config, config);
    assert_eq!(config["created"], "2022-06-10T17:07:48Z");
    // The pushed digest is not: it is that of an index which also holds buildx's default
    // provenance attestation (`--provenance=mode=min`), and that records each build's
    // invocation id and start and finish times, which no source time replaces. So the two
    // indexes differ, and only by their attestation.
    assert_eq!(attestations, 1);
    assert_ne!(production_digest, staging_digest);
}

#[test]
fn a_failed_build_shows_the_builders_last_lines_and_pushes_nothing() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    std::fs::write(
        fixture.path().join("Dockerfile"),
        "FROM scratch\nCOPY no-such-file /no-such-file\n",
    )
    .unwrap();
    fixture.git(["commit", "-q", "-a", "-m", "a broken Dockerfile"]);
    let output = build(&fixture, "podman", "builtin", &[]).expect_exit(1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error: `podman build"), "{stderr}");
    assert!(stderr.contains("failed with exit code"), "{stderr}");
    // The builder's own explanation is quoted, not just its exit code.
    assert!(stderr.contains("no-such-file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        registry.tags(&fixture.image).is_empty(),
        "a failed build pushed something"
    );
}

#[test]
fn a_ref_of_another_environment_is_refused_before_anything_runs() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    // `main` deploys to staging; the production workflow must not push its tags.
    let line = build(
        &fixture,
        "podman",
        "builtin",
        &["--environment", "production"],
    )
    .expect_error(2);
    assert!(
        line.contains("refs/heads/main deploys to `staging`, not to `production`"),
        "{line}"
    );
    assert!(registry.requests().is_empty(), "{:?}", registry.requests());
}

/// Buildx keeps its cache in the image's repository unless the configuration says otherwise;
/// an explicit `cache-from = []` and `cache-to = []` turn it off.
#[test]
fn buildx_caches_in_the_images_repository_unless_configured() {
    let registry = Registry::start();
    let host = registry.host();
    let dry_run = |extra: &str| {
        let fixture = Fixture::new(&host, "fixture");
        if !extra.is_empty() {
            fixture.create(
                "Cargo.toml",
                crate::support::gitops_manifest(&host, "fixture", extra),
            );
            fixture.commit("cache settings");
        }
        let output = build(&fixture, "buildx", "builtin", &["--dry-run"]).expect_exit(0);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let default = dry_run("");
    assert!(
        default.contains(&format!(
            "--cache-from type=registry,ref={host}/fixture:buildcache,registry.insecure=true --cache-to type=registry,ref={host}/fixture:buildcache,registry.insecure=true,mode=max"
        )),
        "{default}"
    );
    let off = dry_run("cache-from = []\ncache-to = []\n");
    assert!(!off.contains("--cache-"), "{off}");
    let own = dry_run("cache-from = [\"type=local,src=/tmp/c\"]\n");
    assert!(own.contains("--cache-from type=local,src=/tmp/c"), "{own}");
    assert!(!own.contains("buildcache"), "{own}");
    assert!(registry.requests().is_empty());
}

/// Build arguments take `{sha}`, `{ref}` and `{version}`; the values are part of the lookup
/// tag, so a `{ref}` gives each ref its image. The `source` label is an https address only
/// (an SSH remote's https form), never a local path, and the CI's word comes first.
#[test]
fn build_args_fill_in_the_commit_and_the_source_label_is_an_https_address() {
    let registry = Registry::start();
    let host = registry.host();
    let fixture = Fixture::new(&host, "fixture");
    fixture.create(
        "Cargo.toml",
        crate::support::gitops_manifest(
            &host,
            "fixture",
            "\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\ntags = { semver = \"stable\" }\nformat = \"prd-{version}\"\nbuild-args = { GIT_SHA = \"{sha}\", GIT_REF = \"{ref}\", VERSION = \"v{version}\" }\n\n[[workspace.metadata.gitops.environments]]\nname = \"staging\"\nbranches = [\"main\"]\nbuild-args = { GIT_SHA = \"{sha}\" }\n",
        ),
    );
    fixture.commit("build args");
    let sha = fixture.head();
    fixture.git(["tag", "v1.2.3"]);
    let dry_run = |args: &[&str]| {
        let output = build(
            &fixture,
            "buildx",
            "builtin",
            &[&["--dry-run"], args].concat(),
        )
        .expect_exit(0);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let release = dry_run(&["--ref", "refs/tags/v1.2.3", "--sha", &sha]);
    for arg in [
        "--build-arg GIT_REF=v1.2.3".to_owned(),
        format!("--build-arg GIT_SHA={sha}"),
        "--build-arg VERSION=v1.2.3".to_owned(),
    ] {
        assert!(release.contains(&arg), "{arg}: {release}");
    }
    let staging = dry_run(&["--ref", "main", "--sha", &sha]);
    assert!(
        staging.contains(&format!("--build-arg GIT_SHA={sha}")),
        "{staging}"
    );
    let lookup = |text: &str| {
        text.split_whitespace()
            .find(|w| w.contains(&format!(":commit-{sha}-")))
            .map(str::to_owned)
    };
    assert_ne!(lookup(&release), lookup(&staging));
    assert!(
        !release.contains("{sha}") && !release.contains("{ref}"),
        "{release}"
    );

    // The source label: a local origin gives none, an SSH one its https form, the CI's first.
    fixture.git(["remote", "add", "origin", "/srv/git/fixture"]);
    assert!(!dry_run(&[]).contains("org.opencontainers.image.source"));
    fixture.git([
        "remote",
        "set-url",
        "origin",
        "git@github.com:acme/fixture.git",
    ]);
    assert!(
        dry_run(&[]).contains(
            "--label org.opencontainers.image.source=https://github.com/acme/fixture.git"
        ),
        "{}",
        dry_run(&[])
    );
    let output = build(&fixture, "buildx", "builtin", &["--dry-run"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_SHA", &sha)
        .env("GITHUB_SERVER_URL", "https://github.example.com")
        .env("GITHUB_REPOSITORY", "acme/web")
        .expect_exit(0);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(
            "--label org.opencontainers.image.source=https://github.example.com/acme/web"
        ),
    );
    assert!(registry.requests().is_empty());
}
