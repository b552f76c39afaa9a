//! `cargo gitops deploy` against real parts: a `git daemon` on loopback holding the manifests
//! repository (real clones, pushes and non-fast-forward races), Debian's `docker-registry`
//! holding the images `build` would have pushed, and the real `kustomize build` reading the
//! result. The forge API of pull-request mode is not built yet; nothing here stands in for it.

use std::process::Command;

use crate::signing::push_image;
use crate::support::{Dir, GitServer, Registry, Stub, TestCommand, answer, run_together};

const TIMESTAMP: &str = "1654880868";

const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n# the service, as the cluster runs it\nresources:\n  - deployment.yaml\nimages:\n  # moved by cargo gitops deploy\n  - name: REGISTRY/api   # the API\n    newTag: \"old\"\n  - name: REGISTRY/web\n    newTag: old\n  - name: redis\n    newTag: '7'\n";

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  selector:\n    matchLabels: {app: shop}\n  template:\n    metadata:\n      labels: {app: shop}\n    spec:\n      containers:\n        - name: api\n          image: REGISTRY/api\n        - name: web\n          image: REGISTRY/web\n        - name: cache\n          image: redis\n";

/// A source repository on `main` (staging) shipping images `api` and `web` from `gitops.toml`,
/// whose deploy table points at `fleet` on `server`; and the images of its commit, pushed as
/// `build` would (lookup tag and staging tag) to `registry`.
struct Setup {
    source: Dir,
    registry: Registry,
    server: GitServer,
    /// Digest of each image, by name.
    digests: Vec<(String, String)>,
    staging_tag: String,
}

fn gitops_toml(registry: &str, deploy: &str) -> String {
    format!("registry = \"{registry}\"\n\n[deploy]\n{deploy}\n\n[images.api]\n\n[images.web]\n")
}

impl Setup {
    fn new(deploy: &str) -> Setup {
        let registry = Registry::start();
        let server = GitServer::start();
        let host = registry.host();
        server.create(
            "fleet",
            &[
                (
                    "apps/staging/kustomization.yaml",
                    &KUSTOMIZATION.replace("REGISTRY", &host),
                ),
                (
                    "apps/staging/deployment.yaml",
                    &DEPLOYMENT.replace("REGISTRY", &host),
                ),
                ("README.md", "the fleet\n"),
            ],
        );
        let source = Dir::git_repo();
        let deploy = deploy
            .replace("FLEET", &server.url("fleet"))
            .replace("MISSING", &server.url("missing"));
        source.create("gitops.toml", gitops_toml(&host, &deploy));
        source.commit("first");
        let mut setup = Setup {
            source,
            registry,
            server,
            digests: Vec::new(),
            staging_tag: String::new(),
        };
        for image in ["api", "web"] {
            setup.push(image);
        }
        setup
    }

    /// Pushes `image`'s build of the source's HEAD: lookup tag and staging tag.
    fn push(&mut self, image: &str) {
        let env = self
            .source
            .command()
            .args([
                "-p",
                image,
                "env",
                "--format",
                "json",
                "--timestamp",
                TIMESTAMP,
            ])
            .json();
        let tag = env["tags"][0].as_str().unwrap().to_owned();
        let lookup = env["lookup_tag"].as_str().unwrap().to_owned();
        let content = format!("{image} at {}", env["sha"]);
        let descriptor = push_image(&self.registry, image, &lookup, content.as_bytes());
        push_image(&self.registry, image, &tag, content.as_bytes());
        self.digests.retain(|(name, _)| name != image);
        self.digests
            .push((image.to_owned(), descriptor.digest.to_string()));
        self.staging_tag = tag;
    }

    fn digest(&self, image: &str) -> &str {
        &self
            .digests
            .iter()
            .find(|(name, _)| name == image)
            .unwrap()
            .1
    }

    fn deploy(&self) -> TestCommand {
        let mut command = self.source.command();
        command.arg("deploy");
        command
    }

    fn kustomization(&self) -> String {
        self.server.file("fleet", "apps/staging/kustomization.yaml")
    }

    fn expected_kustomization(&self, images: &[&str]) -> String {
        let host = self.registry.host();
        let mut text = KUSTOMIZATION.replace("REGISTRY", &host);
        for image in images {
            let (old, quoted) = if *image == "api" {
                (
                    format!("  - name: {host}/api   # the API\n    newTag: \"old\"\n"),
                    true,
                )
            } else {
                (format!("  - name: {host}/web\n    newTag: old\n"), false)
            };
            let tag = if quoted {
                format!("\"{}\"", self.staging_tag)
            } else {
                self.staging_tag.clone()
            };
            let name_line = old.lines().next().unwrap().to_owned();
            let new = format!(
                "{name_line}\n    newTag: {tag}\n    digest: {}\n",
                self.digest(image)
            );
            text = text.replace(&old, &new);
        }
        text
    }
}

/// `kustomize build` of the fleet's staging folder as `main` has it.
fn kustomize_build(server: &GitServer) -> String {
    let checkout = Dir::new();
    crate::support::git_in(
        checkout.path(),
        ["clone", "--quiet", &server.url("fleet"), "fleet"],
    );
    let output = Command::new("kustomize")
        .arg("build")
        .arg(checkout.join("fleet/apps/staging"))
        .output()
        .expect("kustomize must be on PATH: PATH=\"$(.ci/install-tools kustomize):$PATH\"");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

const PUSH: &str =
    "repository = \"FLEET\"\nbranch = \"main\"\npath = \"apps/{environment}\"\nmode = \"push\"";

#[test]
fn one_commit_writes_every_image_keeping_every_other_byte_and_kustomize_runs_the_digest() {
    let setup = Setup::new(PUSH);
    let before = setup.server.head("fleet");
    let (stdout, _) = setup.deploy().succeeds();
    assert!(stdout.starts_with("staging: committed "), "{stdout}");
    assert_eq!(
        setup.kustomization(),
        setup.expected_kustomization(&["api", "web"])
    );
    // One commit, on top of what was there, naming environment, source commit and images.
    let log = setup.server.git("fleet", ["log", "--format=%H %P", "main"]);
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.lines().next().unwrap().ends_with(&before), "{log}");
    let message = setup
        .server
        .git("fleet", ["log", "-1", "--format=%B", "main"]);
    let source = setup.source.head();
    assert!(
        message.starts_with("deploy staging: 2 images of "),
        "{message}"
    );
    assert!(
        message.contains(&format!("Source commit: {source} (refs/heads/main)")),
        "{message}"
    );
    let host = setup.registry.host();
    for image in ["api", "web"] {
        let line = format!(
            "{host}/{image}: old@(none) -> {}@{}",
            setup.staging_tag,
            setup.digest(image)
        );
        assert!(message.contains(&line), "{line} in {message}");
        assert!(message.contains(&format!("Gitops-Digest: {}", setup.digest(image))));
    }
    // Only the kustomization changed.
    let changed = setup
        .server
        .git("fleet", ["diff", "--name-only", &before, "main"]);
    assert_eq!(changed, "apps/staging/kustomization.yaml");
    // What the cluster would run is exactly what was built.
    let built = kustomize_build(&setup.server);
    for image in ["api", "web"] {
        let reference = format!(
            "{host}/{image}:{}@{}",
            setup.staging_tag,
            setup.digest(image)
        );
        assert!(
            built.contains(&format!("image: {reference}")),
            "{reference} in:\n{built}"
        );
    }
    assert!(built.contains("image: redis:7"), "{built}");
}

#[test]
fn a_rerun_for_the_same_commit_makes_no_commit_and_says_so() {
    let setup = Setup::new(PUSH);
    setup.deploy().succeeds();
    let after_first = setup.server.head("fleet");
    let (stdout, _) = setup.deploy().succeeds();
    assert!(
        stdout.starts_with("staging: the manifests in ") && stdout.contains("nothing to commit"),
        "{stdout}"
    );
    assert_eq!(setup.server.head("fleet"), after_first);
    let report = setup.deploy().args(["--format", "json"]).json();
    assert_eq!(report[0]["result"], "up-to-date");
    assert_eq!(report[0]["commit"], serde_json::Value::Null);
    assert_eq!(report[0]["images"][0]["places"][0]["verdict"], "unchanged");
    assert_eq!(setup.server.head("fleet"), after_first);
}

#[test]
fn dry_run_prints_the_exact_diff_of_the_run_and_changes_nothing() {
    let setup = Setup::new(PUSH);
    let before = setup.server.head("fleet");
    let (stdout, _) = setup.deploy().arg("--dry-run").succeeds();
    assert_eq!(setup.server.head("fleet"), before);
    assert!(
        stdout.contains(
            "--- a/apps/staging/kustomization.yaml\n+++ b/apps/staging/kustomization.yaml\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("staging: dry run: would commit 2 images to "),
        "{stdout}"
    );
    // The diff printed is the diff the run then commits.
    setup.deploy().succeeds();
    let committed = setup.server.git("fleet", ["diff", &before, "main"]);
    let printed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('+') || l.starts_with('-'))
        .collect();
    let real: Vec<&str> = committed
        .lines()
        .filter(|l| l.starts_with('+') || l.starts_with('-'))
        .collect();
    assert_eq!(printed, real);
}

#[test]
fn a_pinned_value_and_a_digest_set_by_hand_are_kept_and_the_run_says_why() {
    let mut setup = Setup::new(PUSH);
    let host = setup.registry.host();
    let hand_digest = format!("sha256:{}", "b".repeat(64));
    let work = Dir::new();
    crate::support::git_in(
        work.path(),
        ["clone", "--quiet", &setup.server.url("fleet"), "f"],
    );
    let file = work.join("f/apps/staging/kustomization.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text
        .replace(
            "  - name: REG/api   # the API\n"
                .replace("REG", &host)
                .as_str(),
            &format!("  # gitops:pinned\n  - name: {host}/api   # the API\n"),
        )
        .replace(
            &format!("  - name: {host}/web\n    newTag: old\n"),
            &format!("  - name: {host}/web\n    newTag: old\n    digest: {hand_digest}\n"),
        );
    std::fs::write(&file, &text).unwrap();
    crate::support::git_in(
        &work.join("f"),
        ["commit", "--quiet", "-am", "pin api, roll web back by hand"],
    );
    crate::support::git_in(&work.join("f"), ["push", "--quiet", "origin", "main"]);
    let before = setup.server.head("fleet");
    let (stdout, _) = setup.deploy().succeeds();
    assert_eq!(setup.kustomization(), text);
    assert_eq!(
        setup.server.head("fleet"),
        before,
        "nothing to commit when every image is kept"
    );
    assert!(
        stdout.contains(&format!("{host}/api kept: it is marked `# gitops:pinned`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{host}/web kept: its digest {hand_digest} was not written by cargo gitops deploy"
        )),
        "{stdout}"
    );

    // A digest this tool wrote is moved by the next deploy: unpin api, deploy, build again.
    let unpinned = text
        .replace("  # gitops:pinned\n", "")
        .replace(&format!("    digest: {hand_digest}\n"), "");
    std::fs::write(&file, &unpinned).unwrap();
    crate::support::git_in(
        &work.join("f"),
        ["commit", "--quiet", "-am", "hand both back"],
    );
    crate::support::git_in(&work.join("f"), ["push", "--quiet", "origin", "main"]);
    setup.deploy().succeeds();
    setup.source.commit("second");
    setup.push("api");
    setup.push("web");
    setup.deploy().succeeds();
    assert_eq!(
        setup.kustomization(),
        setup.expected_kustomization(&["api", "web"])
    );
}

/// Two pipelines deploying two services to one branch at the same moment: both land, neither
/// loses the other's update, 20 times out of 20.
#[test]
fn two_concurrent_deploys_of_two_services_both_land_every_time() {
    let mut setup = Setup::new(PUSH);
    for trial in 0..20 {
        if trial > 0 {
            setup.source.commit(&format!("change {trial}"));
            setup.push("api");
            setup.push("web");
        }
        let before = setup.server.head("fleet");
        let commands: Vec<Command> = ["api", "web"]
            .iter()
            .map(|image| {
                let mut command = setup.deploy();
                command.args(["-p", image]);
                command.std()
            })
            .collect();
        let outputs = run_together(&commands, 60);
        for output in &outputs {
            assert!(
                output.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert_eq!(
            setup.kustomization(),
            setup.expected_kustomization(&["api", "web"]),
            "trial {trial}"
        );
        let commits = setup
            .server
            .git("fleet", ["rev-list", "--count", &format!("{before}..main")]);
        assert_eq!(commits, "2", "trial {trial}: one commit per deploy");
        // Never forced: the old tip is an ancestor of the new one.
        setup
            .server
            .git("fleet", ["merge-base", "--is-ancestor", &before, "main"]);
    }
}

#[test]
fn flux_markers_and_helm_values_are_written_in_place() {
    let registry = Registry::start();
    let server = GitServer::start();
    let host = registry.host();
    let marked = format!(
        "apiVersion: apps/v1\r\nkind: Deployment\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n        - name: api\r\n          image: {host}/api:old # {{\"$imagepolicy\": \"flux-system:api-staging\"}}\r\n"
    );
    let values = "# chart values\nimage:\n  repository: x # kept\n  tag: 'old'\nreplicas: 1\n";
    server.create(
        "fleet",
        &[
            ("clusters/staging/api.yaml", &marked),
            ("clusters/staging/values.yaml", values),
        ],
    );
    let source = Dir::git_repo();
    source.create(
        "gitops.toml",
        format!("registry = \"{host}\"\nimage = \"api\"\n\n[deploy]\nrepository = \"{}\"\npath = \"clusters/{{environment}}\"\nhelm-values = \"values.yaml\"\n", server.url("fleet")),
    );
    source.commit("first");
    let env = source
        .command()
        .args(["env", "--format", "json", "--timestamp", TIMESTAMP])
        .json();
    let tag = env["tags"][0].as_str().unwrap();
    let digest = push_image(
        &registry,
        "api",
        env["lookup_tag"].as_str().unwrap(),
        b"api",
    )
    .digest
    .to_string();
    push_image(&registry, "api", tag, b"api");
    let report = source.command().args(["deploy", "--format", "json"]).json();
    assert_eq!(report[0]["result"], "committed");
    assert_eq!(report[0]["branch"], "main");
    assert_eq!(
        server.file("fleet", "clusters/staging/api.yaml"),
        marked.replace(
            &format!("{host}/api:old"),
            &format!("{host}/api:{tag}@{digest}")
        )
    );
    assert_eq!(
        server.file("fleet", "clusters/staging/values.yaml"),
        format!(
            "# chart values\nimage:\n  repository: x # kept\n  tag: '{tag}'\n  digest: '{digest}'\nreplicas: 1\n"
        )
    );
}

/// Runs `deploy` in `setup` expecting one error line with `code`; asserts the manifests did
/// not move.
fn refused(setup: &Setup, command: &mut TestCommand, code: i32) -> String {
    let before = setup.server.head("fleet");
    let line = command.one_line_error(code);
    assert_eq!(setup.server.head("fleet"), before);
    line
}

#[test]
fn bad_input_gets_one_clear_line_and_leaves_the_manifests_untouched() {
    // A repository the server does not have.
    let setup = Setup::new(&PUSH.replace("FLEET", "MISSING"));
    let line = refused(&setup, &mut setup.deploy(), 1);
    assert!(
        line.starts_with("error: cannot clone the manifests repository git://127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("check `deploy.repository`"), "{line}");

    // A folder the manifests do not have.
    let setup = Setup::new(&PUSH.replace("apps/{environment}", "apps/{environment}/eu"));
    let line = refused(&setup, &mut setup.deploy(), 1);
    assert_eq!(
        line,
        "error: the manifests repository has no folder `apps/staging/eu` (deploy.path); create it with the manifests, or fix `deploy.path`"
    );

    // A manifest that does not name the image.
    let setup = Setup::new(PUSH);
    let work = Dir::new();
    crate::support::git_in(
        work.path(),
        ["clone", "--quiet", &setup.server.url("fleet"), "f"],
    );
    let file = work.join("f/apps/staging/kustomization.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("/web\n", "/website\n");
    std::fs::write(&file, text).unwrap();
    crate::support::git_in(&work.join("f"), ["commit", "--quiet", "-am", "rename"]);
    crate::support::git_in(&work.join("f"), ["push", "--quiet", "origin", "main"]);
    let line = refused(&setup, &mut setup.deploy(), 1);
    assert!(
        line.starts_with(&format!(
            "error: no manifest under `apps/staging` names image {}/web: ",
            setup.registry.host()
        )),
        "{line}"
    );
    // Nothing half-done: api was found, but no commit was made for it either.
    assert!(!setup.kustomization().contains("digest"));

    // A branch that does not exist, and bad configuration.
    let setup = Setup::new(&PUSH.replace("\"main\"", "\"deploys\""));
    let line = refused(&setup, &mut setup.deploy(), 1);
    assert!(line.contains("has no branch `deploys`"), "{line}");
    for (bad, key) in [
        ("path = \"../outside\"", "deploy.path"),
        ("path = \"/etc\"", "deploy.path"),
        ("branch = \"a..b\"", "deploy.branch"),
        ("credential = \"ghp_not a name\"", "deploy.credential"),
        ("mode = \"force\"", "deploy.mode"),
        ("unknown = 1", "deploy"),
    ] {
        let setup_dir = Dir::git_repo();
        setup_dir.create(
            "gitops.toml",
            format!("registry = \"127.0.0.1:1\"\nimage = \"api\"\n\n[deploy]\n{bad}\n"),
        );
        setup_dir.commit("first");
        let line = setup_dir.command().arg("deploy").usage_error();
        assert!(
            line.contains("gitops.toml") && line.contains(key),
            "{bad}: {line}"
        );
    }
}

/// A smart-HTTP server that refuses every credential: the run says the credential was refused,
/// names the variable (never its value), and the token went to that origin only.
#[test]
fn a_refused_credential_is_one_line_naming_the_variable_never_the_token() {
    let refusing = Stub::start("127.0.0.1", |_| {
        answer(401, &[("WWW-Authenticate", "Basic realm=\"fleet\"")], b"")
    });
    let mut setup = Setup::new(PUSH);
    let url = format!("http://{}/fleet.git", refusing.addr);
    setup.source.create(
        "gitops.toml",
        gitops_toml(
            &setup.registry.host(),
            &format!("repository = \"{url}\"\ncredential = \"FLEET_TOKEN\""),
        ),
    );
    setup.source.commit("http fleet");
    setup.push("api");
    setup.push("web");
    let mut command = setup.deploy();
    command.env("FLEET_TOKEN", "tok-3f9a-secret");
    let line = refused(&setup, &mut command, 1);
    assert!(
        line.starts_with(&format!(
            "error: the manifests repository {url} refused the credential: "
        )),
        "{line}"
    );
    assert!(
        line.ends_with("check that $FLEET_TOKEN holds a token with write access to it"),
        "{line}"
    );
    assert!(!line.contains("tok-3f9a"), "{line}");
    let seen = refusing.seen();
    assert!(!seen.is_empty());
    let expected = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "x-access-token:tok-3f9a-secret"
        )
    );
    assert!(
        seen.iter()
            .any(|r| r.header("authorization") == Some(expected.as_str())),
        "{seen:?}"
    );

    // Named but not set: a usage error before anything is cloned.
    let line = setup.deploy().usage_error();
    assert!(
        line.contains("`deploy.credential` names $FLEET_TOKEN, which is not set"),
        "{line}"
    );
}

#[test]
fn a_commit_without_an_image_is_refused_before_any_clone() {
    let setup = Setup::new(PUSH);
    setup.source.commit("not built");
    let line = refused(&setup, &mut setup.deploy(), 1);
    assert!(
        line.contains("has no image yet; run `cargo gitops build` for it first"),
        "{line}"
    );
}

/// The promotion gates run before any manifest moves: a refusal leaves the manifests
/// repository as it was, a skipped gate needs a reason that the write-back commit records, and
/// the approval gate needs pull-request mode.
#[test]
fn the_gates_run_before_any_manifest_moves_and_a_skip_is_recorded_in_the_commit() {
    let gated =
        format!("{PUSH}\n\n[[environments]]\nname = \"staging\"\ngates = {{ sbom = true }}\n");
    let setup = Setup::new(&gated);
    let line = setup.deploy().expect_error(1);
    assert!(
        line.starts_with("error: the gates of `staging` refused sha256:"),
        "{line}"
    );
    assert!(!setup.kustomization().contains("digest"));
    let before = setup.server.head("fleet");
    let refusal = setup.deploy().output();
    assert!(
        String::from_utf8_lossy(&refusal.stderr).contains("sbom"),
        "{}",
        String::from_utf8_lossy(&refusal.stderr)
    );
    assert_eq!(setup.server.head("fleet"), before);

    // Skipped with a reason: the deploy lands, and its commit says which gate and why.
    setup
        .deploy()
        .args(["--skip-gate", "sbom", "--reason", "hotfix for the outage"])
        .succeeds();
    assert_ne!(setup.server.head("fleet"), before);
    let message = setup.server.git("fleet", ["log", "-1", "--format=%B"]);
    for image in ["api", "web"] {
        assert!(
            message.contains(&format!(
                "Gates: {}/{image} sbom skipped (hotfix for the outage)",
                setup.registry.host()
            )),
            "{message}"
        );
    }
    assert_eq!(
        setup.kustomization(),
        setup.expected_kustomization(&["api", "web"])
    );

    // A skip without a reason is refused by the command line itself.
    let usage = setup.deploy().args(["--skip-gate", "sbom"]).expect_exit(2);
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--reason"));

    // The approval gate: a person merges the deploy, so push mode is refused.
    let approval =
        format!("{PUSH}\n\n[[environments]]\nname = \"staging\"\ngates = {{ approval = true }}\n");
    let setup = Setup::new(&approval);
    let line = refused(&setup, &mut setup.deploy(), 2);
    assert!(
        line.contains("has the approval gate") && line.contains("mode = \"pull-request\""),
        "{line}"
    );
}

/// A service `build --reuse-unchanged` found unchanged has this commit's environment tag on an
/// earlier commit's image and no lookup tag of its own: deploy writes that image.
#[test]
fn an_image_kept_from_an_earlier_commit_is_found_by_its_environment_tag() {
    let mut setup = Setup::new(PUSH);
    let kept = setup.digest("web").to_owned();
    let first = setup.source.head();
    setup
        .source
        .create("README.md", "api changed, web did not\n");
    setup.source.commit("second");
    setup.push("api");
    // web: only the staging tag of the new commit, on the first commit's image.
    let env = setup
        .source
        .command()
        .args([
            "-p",
            "web",
            "env",
            "--format",
            "json",
            "--timestamp",
            TIMESTAMP,
        ])
        .json();
    let tag = env["tags"][0].as_str().unwrap();
    assert!(!tag.contains(&first[..7]), "{tag}");
    let descriptor = push_image(
        &setup.registry,
        "web",
        tag,
        format!("web at \"{first}\"").as_bytes(),
    );
    assert_eq!(descriptor.digest.to_string(), kept);
    setup.deploy().succeeds();
    let kustomization = setup.kustomization();
    assert!(
        kustomization.contains(&format!("newTag: {tag}\n    digest: {kept}\n")),
        "{kustomization}"
    );
}
