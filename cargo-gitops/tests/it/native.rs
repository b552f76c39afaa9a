//! `cargo gitops build --build-with native`: reproducible images from a crate's binary, that
//! run, push to a real registry and promote by retag; one image per commit whichever
//! environment builds it, and whichever of two racing runs claims it; and the errors around
//! them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Dir, Registry, TestCommand, git_in, json, run_bounded, run_together};
use serde_json::Value;

const SHA_FILE: &str = "src/main.rs";

/// A one-binary crate with no dependencies, committed in a fresh git repository.
fn fixture_crate(registry: Option<&str>, extra_config: &str) -> Dir {
    let dir = Dir::git_repo();
    let gitops = match registry {
        Some(registry) => format!(
            "\n[package.metadata.gitops]\nregistry = \"{registry}\"\nimage = \"hello\"\nexposed-ports = [\"8080/tcp\"]\n{extra_config}"
        ),
        None => {
            format!("\n[package.metadata.gitops]\nexposed-ports = [\"8080/tcp\"]\n{extra_config}")
        }
    };
    dir.create(
        "Cargo.toml",
        format!("[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n{gitops}"),
    );
    dir.create(
        SHA_FILE,
        "fn main() {\n    println!(\"hello from a native image\");\n}\n",
    );
    dir.create(".gitignore", "/target\n");
    dir.commit("first");
    dir
}

/// `cargo gitops build --build-with native --format json` plus `args`, run in `dir`; exit 0.
fn build_json(dir: &Path, args: &[&str]) -> Value {
    TestCommand::new(dir)
        .args(["build", "--build-with", "native", "--format", "json"])
        .args(args)
        .json()
}

/// `cargo gitops build --build-with native` plus `args`, run in `dir`, that fails with exit
/// `code`; returns its one error line.
fn build_error(dir: &Path, args: &[&str], code: i32) -> String {
    TestCommand::new(dir)
        .args(["build", "--build-with", "native"])
        .args(args)
        .expect_error(code)
}

fn build_layout(dir: &Path, out: &Path, timestamp: &str) -> Value {
    build_json(
        dir,
        &[
            "--timestamp",
            timestamp,
            &format!("--output=oci:{}", out.display()),
        ],
    )
}

#[test]
fn two_clean_builds_of_one_commit_give_one_digest() {
    let first = fixture_crate(None, "");
    // The same commit, cloned elsewhere, built later: a different path and wall-clock time.
    let second = Dir::new();
    let clone = second.join("checkout");
    let (from, to) = (first.path().to_str().unwrap(), clone.to_str().unwrap());
    second.git(["clone", "-q", from, to]);
    // Both checkouts name the same origin, as two CI runs of one repository do: the image's
    // `source` label comes from it.
    first.git(["remote", "add", "origin", "https://example.com/hello.git"]);
    git_in(
        &clone,
        [
            "remote",
            "set-url",
            "origin",
            "https://example.com/hello.git",
        ],
    );

    let out_a = Dir::new();
    let out_b = Dir::new();
    let a = build_layout(first.path(), out_a.path(), "1654880868");
    std::thread::sleep(Duration::from_millis(1100));
    let b = build_layout(&clone, out_b.path(), "1754880868");
    assert_eq!(a["action"], "built");
    assert!(a["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(
        a["digest"], b["digest"],
        "the same commit built twice gave two images"
    );
    // The layout's index names the tags and the digest the report gave, and lists the
    // image's SBOM and provenance untagged, each naming the image as its subject.
    let index: Value = json(&std::fs::read(out_a.join("index.json")).unwrap());
    let (tagged, referrers): (Vec<&Value>, Vec<&Value>) = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .partition(|m| m.get("artifactType").is_none());
    let names: Vec<&str> = tagged
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    let types: Vec<&str> = referrers
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );
    for referrer in &referrers {
        let hex = referrer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let manifest: Value = json(&std::fs::read(out_a.join("blobs/sha256").join(hex)).unwrap());
        assert_eq!(manifest["subject"]["digest"], a["digest"], "{manifest}");
    }
    let sha = first.head();
    assert_eq!(
        names,
        [
            format!("commit-{sha}"),
            format!("stg-{}-1654880868", &sha[..7]),
            "stg-latest".to_owned()
        ]
    );
    assert!(tagged.iter().all(|m| m["digest"] == a["digest"]));
}

#[test]
fn without_a_registry_the_layout_goes_under_target_gitops() {
    let dir = fixture_crate(None, "");
    let output = dir
        .command()
        .args(["build", "--build-with", "native", "--format", "json"])
        .expect_exit(0);
    let report = json(&output.stdout);
    let layout = PathBuf::from(report["layout"].as_str().unwrap());
    assert!(layout.ends_with("target/gitops/hello"), "{layout:?}");
    assert!(layout.join("oci-layout").is_file() && layout.join("index.json").is_file());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no registry is configured") && stderr.contains("target/gitops/hello"),
        "{stderr}"
    );
}

/// Builds demo-app natively from this workspace and runs the binary unpacked from the image.
#[test]
fn the_demo_app_image_runs() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Dir::new();
    let layout = out.join("layout");
    let report = build_json(
        workspace,
        &[
            "-p",
            "demo-app",
            "--ref",
            "refs/heads/main",
            "--sha",
            "0123456789abcdef0123456789abcdef01234567",
            "--timestamp",
            "1654880868",
            &format!("--output=oci:{}", layout.display()),
        ],
    );
    assert_eq!(report["action"], "built");

    let bundle = out.join("bundle");
    // umoci (Debian) is installed by .ci/test.
    run_bounded(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:stg-latest", layout.display()))
            .arg(&bundle),
        120,
    );
    let config: Value = json(&std::fs::read(bundle.join("config.json")).unwrap());
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/usr/local/bin/demo-app"])
    );
    assert_eq!(config["process"]["user"]["uid"], 65532);

    let port = crate::support::free_port();
    let mut server = Command::new(bundle.join("rootfs/usr/local/bin/demo-app"))
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut api = loop {
        match agent.get(&format!("http://127.0.0.1:{port}/api")).call() {
            Ok(response) => break response,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("demo-app from the image never answered: {e}"),
        }
    };
    assert_eq!(api.status(), 200);
    assert_eq!(api.headers()["content-type"], "application/json");
    assert_eq!(
        api.body_mut().read_to_string().unwrap(),
        r#"{"hello":"world"}"#
    );
    let mut root = agent
        .get(&format!("http://127.0.0.1:{port}/"))
        .call()
        .unwrap();
    assert_eq!(root.status(), 200);
    assert_eq!(root.body_mut().read_to_string().unwrap(), "Hello, World!");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn pushes_to_a_registry_and_promotes_by_retag() {
    let registry = Registry::start();
    let dir = fixture_crate(Some(&registry.host()), "");
    let report = build_json(dir.path(), &["--timestamp", "1654880868"]);
    let sha = dir.head();
    let digest = registry.digest("hello", &format!("commit-{sha}")).unwrap();
    assert_eq!(report["action"], "built");
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(
        registry.digest("hello", "stg-latest").as_deref(),
        Some(digest.as_str())
    );

    // skopeo reads the labels and the config the tool wrote.
    let inspect = run_bounded(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--config"])
            .arg(format!("docker://{}/hello:stg-latest", registry.host())),
        120,
    );
    let config = json(inspect.as_bytes());
    assert_eq!(config["config"]["User"], "65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/hello"])
    );
    assert_eq!(
        config["config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], sha.as_str());
    assert_eq!(labels["org.opencontainers.image.title"], "hello");
    // From the commit and the package only: no environment, no tag, no build time.
    assert_eq!(labels["org.opencontainers.image.version"], "0.1.0");
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2022-06-10T17:07:48Z"
    );
    assert_eq!(
        labels.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "org.opencontainers.image.created",
            "org.opencontainers.image.revision",
            "org.opencontainers.image.title",
            "org.opencontainers.image.version",
        ]
    );

    // A second push of the same image uploads no blob again.
    dir.git(["tag", "-a", "-m", "release", "v1.0.0"]);
    dir.git(["checkout", "-q", "--detach", "v1.0.0"]);
    let report = build_json(dir.path(), &[]);
    assert_eq!(report["action"], "retagged");
    assert_eq!(
        registry.digest("hello", "prd-1.0.0").as_deref(),
        Some(digest.as_str())
    );
}

#[test]
fn a_base_image_goes_under_the_binary() {
    let registry = Registry::start();
    // A base image in the registry: one layer with a file, pushed by the built-in client.
    let base_dir = fixture_crate(Some(&registry.host()), "");
    let base_layout = Dir::new();
    build_layout(base_dir.path(), base_layout.path(), "1654880868");
    run_bounded(
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:stg-latest", base_layout.path().display()))
            .arg(format!("docker://{}/base:1", registry.host())),
        120,
    );
    let base_digest = registry.digest("base", "1").unwrap();

    let dir = fixture_crate(
        Some(&registry.host()),
        &format!("base = \"{}/base@{base_digest}\"\n", registry.host()),
    );
    let digest = build_json(dir.path(), &[])["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let (manifest, _, _) = registry.manifest("hello", &digest).unwrap();
    let (base_manifest, _, _) = registry.manifest("base", &base_digest).unwrap();
    let layers = json(&manifest)["layers"].as_array().unwrap().clone();
    let base_layers = json(&base_manifest)["layers"].as_array().unwrap().clone();
    assert_eq!(layers.len(), base_layers.len() + 1);
    assert_eq!(
        layers[..base_layers.len()],
        base_layers[..],
        "the base layers come first, unchanged"
    );
}

#[test]
fn a_package_without_a_binary_is_one_line() {
    let registry = Registry::start();
    let dir = fixture_crate(Some(&registry.host()), "");
    std::fs::remove_file(dir.path().join(SHA_FILE)).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "pub fn f() {}\n").unwrap();
    dir.commit("a library");
    assert!(build_error(dir.path(), &[], 2).contains("package `hello` has no binary target"));
    assert!(registry.tags("hello").is_empty(), "something was pushed");
}

#[test]
fn a_package_that_is_not_in_the_workspace_is_one_line() {
    let dir = fixture_crate(None, "");
    let line = build_error(dir.path(), &["-p", "nosuch"], 2);
    assert!(line.contains("package `nosuch` is not in the workspace"));
}

#[test]
fn a_base_image_that_cannot_be_fetched_is_one_line_and_nothing_is_pushed() {
    let registry = Registry::start();
    let missing = format!("{}/base@sha256:{}", registry.host(), "0".repeat(64));
    let dir = fixture_crate(Some(&registry.host()), &format!("base = \"{missing}\"\n"));
    let line = build_error(dir.path(), &[], 1);
    assert!(
        line.contains(&registry.host()) && line.contains("read manifest"),
        "{line}"
    );
    assert!(registry.tags("hello").is_empty(), "something was pushed");
}

#[test]
fn a_platform_without_its_rust_target_names_the_rustup_command() {
    let dir = fixture_crate(None, "platforms = [\"linux/amd64\", \"linux/riscv64\"]\n");
    assert!(
        build_error(dir.path(), &[], 2)
            .contains("platform `linux/riscv64` is not supported by native builds")
    );
    let dir = fixture_crate(None, "platforms = [\"linux/arm64\"]\n");
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !installed.contains("aarch64-unknown-linux") {
        assert!(
            build_error(dir.path(), &[], 2)
                .contains("run `rustup target add aarch64-unknown-linux-musl`")
        );
    }
}

#[test]
fn one_commit_gives_one_native_image_whichever_environment_builds_it() {
    let first = Registry::start();
    let second = Registry::start();
    let dir = fixture_crate(Some(&first.host()), "");
    let sha = dir.head();
    dir.git(["tag", "-a", "-m", "release", "v1.0.0"]);
    // The same commit in another checkout, for production, to a registry of its own: only the
    // working tree's configuration names it.
    let other = Dir::new();
    let clone = other.join("checkout");
    other.git([
        "clone",
        "-q",
        dir.path().to_str().unwrap(),
        clone.to_str().unwrap(),
    ]);
    // Both name one origin, as two CI runs of one repository do: the `source` label is it.
    let origin = "https://example.com/hello.git";
    dir.git(["remote", "add", "origin", origin]);
    git_in(&clone, ["remote", "set-url", "origin", origin]);
    let manifest = clone.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace(&first.host(), &second.host())).unwrap();
    let staging = build_json(dir.path(), &["--ref", "refs/heads/main"]);
    // Compiled again, into a target folder of its own, as on a fresh runner.
    let production = TestCommand::new(&clone)
        .args(["build", "--build-with", "native", "--format", "json"])
        .args(["--ref", "refs/tags/v1.0.0"])
        .env("CARGO_TARGET_DIR", other.join("target"))
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
    for (registry, report) in [(&first, &staging), (&second, &production)] {
        assert_eq!(
            registry.digest("hello", &lookup).as_deref(),
            report["digest"].as_str()
        );
    }
}

#[test]
fn racing_native_runs_for_staging_and_production_end_on_one_digest() {
    let registry = Registry::start();
    let dir = fixture_crate(Some(&registry.host()), "");
    // Rounds in which both runs found the lookup tag free and built: true races.
    let mut both_built = 0;
    for round in 0..10 {
        let sha = dir.commit(&format!("race {round}"));
        let version = format!("1.0.{round}");
        dir.git(["tag", "-a", "-m", "release", &format!("v{version}")]);
        let timestamp = (1_654_880_900 + round).to_string();
        let refs = [
            "refs/heads/main".to_owned(),
            format!("refs/tags/v{version}"),
        ];
        let runs: Vec<Command> = refs
            .iter()
            .enumerate()
            .map(|(i, git_ref)| {
                let mut command = TestCommand::new(dir.path());
                command
                    .args(["build", "--build-with", "native", "-q", "--format", "json"])
                    .args(["--timestamp", &timestamp, "--ref", git_ref]);
                let mut command = command.std();
                // Different source times make two different images (the layer's times): only
                // the claim decides which one the commit's tags name.
                command.env("SOURCE_DATE_EPOCH", format!("165488000{i}"));
                command
            })
            .collect();
        let lookup_tag = format!("commit-{sha}");
        let outputs = run_together(&runs, 240);
        let lookup = registry.digest("hello", &lookup_tag);
        if outputs
            .iter()
            .all(|o| o.status.success() && json(&o.stdout)["action"] == "built")
        {
            both_built += 1;
        }
        for output in &outputs {
            assert!(
                output.status.success(),
                "race {round}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                json(&output.stdout)["digest"].as_str(),
                lookup.as_deref(),
                "race {round}"
            );
        }
        let tags = [
            format!("stg-{}-{timestamp}", &sha[..7]),
            "stg-latest".to_owned(),
            format!("prd-{version}"),
            "prd-latest".to_owned(),
        ];
        for tag in tags {
            assert_eq!(
                registry.digest("hello", &tag),
                lookup,
                "race {round}: {tag}"
            );
        }
    }
    assert!(both_built > 0, "the runs never raced");
}

#[test]
fn a_dry_run_of_a_layout_build_shows_its_steps_and_writes_nothing() {
    let dir = fixture_crate(None, "");
    let out = Dir::new();
    let layout = out.join("layout");
    let dry_run = build_json(
        dir.path(),
        &["--dry-run", &format!("--output=oci:{}", layout.display())],
    );
    assert_eq!(dry_run["lookup"], serde_json::json!([]));
    let outcomes = dry_run["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 1, "{dry_run}");
    let steps = outcomes[0]["steps"].as_array().unwrap();
    let titles: Vec<&str> = steps.iter().map(|s| s["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), 4, "{titles:?}");
    assert!(
        titles[0].starts_with("write the list of crates linked for "),
        "{titles:?}"
    );
    assert!(titles[1].starts_with("compile hello for "), "{titles:?}");
    assert_eq!(
        titles[2..],
        [
            "pack the image",
            &format!("write OCI image layout {}", layout.display())
        ]
    );
    let compile = steps[1]["actions"][0]["run"].as_str().unwrap();
    assert!(
        compile.contains("rustc --release --manifest-path")
            && compile.contains("-p hello")
            && compile.contains("-Wl,--undefined=AUDITABLE_VERSION_INFO"),
        "{compile}"
    );
    assert!(!layout.exists(), "a dry run wrote the layout");
}

/// A registry that cannot take the build's documents stops the build before any tag names
/// the image, with one line that says how to build without them; with them turned off the
/// same registry takes the build.
#[test]
fn a_registry_refusing_the_documents_says_how_to_build_without_them() {
    let registry = Registry::start();
    let proxy = crate::support::Proxy::start(registry.port, |s| {
        if s.path.contains("/referrers/") || s.path.contains("/manifests/sha256-") {
            crate::support::Fault::Answer(
                400,
                vec![("Content-Type", "application/json".to_owned())],
                br#"{"errors":[{"code":"UNSUPPORTED","message":"artifacts are not supported"}]}"#
                    .to_vec(),
            )
        } else {
            crate::support::Fault::Forward
        }
    });
    let dir = fixture_crate(Some(&proxy.addr), "");
    let line = build_error(dir.path(), &[], 1);
    assert!(line.contains("artifacts are not supported"), "{line}");
    assert!(
        line.contains(
            "set sbom = false and provenance = false to build without attaching documents"
        ),
        "{line}"
    );
    assert!(
        registry
            .tags("hello")
            .iter()
            .all(|t| !t.starts_with("stg-") && !t.starts_with("dev-")),
        "{:?}",
        registry.tags("hello")
    );

    let dir = fixture_crate(Some(&proxy.addr), "sbom = false\nprovenance = false\n");
    let report = build_json(dir.path(), &[]);
    assert_eq!(report["action"], "built", "{report}");
    assert!(
        report.get("evidence").is_none(),
        "nothing attached: {report}"
    );
}

/// A native build as a drop-in for a Dockerfile: the compile gets `build-env` (the crate does
/// not compile without it), `include` copies a folder into the image, and `workdir` and
/// `args` become the image's working directory and `Cmd`. The binary, unpacked with umoci and
/// run from the image's working directory, reads the included file.
#[test]
fn build_env_include_workdir_and_args_make_a_drop_in_for_a_dockerfile() {
    let dir = fixture_crate(
        None,
        "build-env = { GREETING = \"hello from build-env\" }\ninclude = [{ from = \"configuration\", to = \"/app/configuration\" }]\nworkdir = \"/app\"\nargs = [\"--serve\"]\n",
    );
    dir.create(
        SHA_FILE,
        "fn main() {\n    let base = std::fs::read_to_string(\"configuration/base.yaml\").unwrap();\n    println!(\"{}: {}\", env!(\"GREETING\"), base.trim());\n}\n",
    );
    dir.create("configuration/base.yaml", "port: 8000\n");
    dir.create("configuration/local/override.yaml", "debug: true\n");
    dir.commit("drop-in");
    let out = Dir::new();
    let layout = out.join("layout");
    let report = build_layout(dir.path(), &layout, TS_DROP_IN);
    assert_eq!(report["action"], "built", "{report}");
    let bundle = out.join("bundle");
    run_bounded(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:stg-latest", layout.display()))
            .arg(&bundle),
        120,
    );
    let config: Value = json(&std::fs::read(bundle.join("config.json")).unwrap());
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/usr/local/bin/hello", "--serve"])
    );
    assert_eq!(config["process"]["cwd"], "/app");
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("app/configuration/local/override.yaml")).unwrap(),
        "debug: true\n"
    );
    let output = Command::new(rootfs.join("usr/local/bin/hello"))
        .current_dir(rootfs.join("app"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hello from build-env: port: 8000\n"
    );
}

const TS_DROP_IN: &str = "1654880868";

/// `init-workflows` for a native build beside a Dockerfile says what the Dockerfile does
/// that the native build leaves out, and which key carries it over.
#[test]
fn init_workflows_says_what_a_dockerfile_does_that_the_native_build_does_not() {
    let dir = fixture_crate(
        Some("ghcr.io/acme"),
        "builder = \"native\"\n\n[package.metadata.gitops.install.sha256]\nx86_64-unknown-linux-musl = \"1111111111111111111111111111111111111111111111111111111111111111\"\n",
    );
    dir.create(
        "Dockerfile",
        "FROM rust:1 AS build\nRUN cargo build --release\nFROM debian:12-slim\nWORKDIR /app\nCOPY --from=build /target/release/hello hello\nCOPY configuration configuration\nENV APP_ENVIRONMENT=production\nENTRYPOINT [\"./hello\"]\n",
    );
    dir.commit("dockerfile");
    let output = dir.command().args(["init-workflows"]).expect_exit(0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("warning: Dockerfile is not used by the native build"))
        .unwrap_or_else(|| panic!("{stderr}"));
    for part in [
        "`WORKDIR /app`: set workdir",
        "`COPY configuration configuration`: list it in include",
        "`ENV APP_ENVIRONMENT=production`: set it in image-env",
    ] {
        assert!(warning.contains(part), "{part}: {warning}");
    }
    assert!(!warning.contains("--from"), "{warning}");
}
