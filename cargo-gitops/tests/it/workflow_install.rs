//! The install step of the generated pipeline, run for real: its `run:` script and `env:` are
//! read back from the YAML and run with bash, as a runner would, against a release layout
//! served on 127.0.0.1 (the base URL overridden the way a mirror is): a good archive installs
//! and the binary runs; a tampered archive, a missing asset, an unpinned or unsupported
//! platform each fail with one line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use yaml_rust2::YamlLoader;

use crate::support::{Dir, sha256};
use crate::workflows::{generate, repository};

const VERSION: &str = "9.9.9";
const TARGET: &str = "x86_64-unknown-linux-musl";

/// A static file server on 127.0.0.1 for `root`, for as long as the test runs: 200 with the
/// file, 404 for anything else. Returns its base URL.
pub(crate) fn serve(root: &Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
            let file = root.join(path.trim_start_matches('/'));
            let safe = !path.contains("..");
            let response = match std::fs::read(&file) {
                Ok(body) if safe && file.is_file() => {
                    let mut head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    head.extend(body);
                    head
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    url
}

/// A release of a stand-in cargo-gitops (a script printing its version) in the layout the
/// release workflow publishes, under `root`; returns the archive's path and SHA-256.
pub(crate) fn release(root: &Path, target: &str, version: &str) -> (PathBuf, String) {
    release_of(root, target, version, "")
}

/// `release` of a binary that runs `extra` first.
fn release_of(root: &Path, target: &str, version: &str, extra: &str) -> (PathBuf, String) {
    let name = format!("cargo-gitops-{target}-v{version}");
    let staging = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(staging.path().join(&name)).unwrap();
    let bin = staging.path().join(&name).join("cargo-gitops");
    std::fs::write(
        &bin,
        format!("#!/bin/sh\n{extra}echo \"cargo-gitops {version}\"\n"),
    )
    .unwrap();
    let status = Command::new("chmod").arg("755").arg(&bin).status().unwrap();
    assert!(status.success());
    let dir = root.join(format!("cargo-gitops-v{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = dir.join(format!("{name}.tar.gz"));
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(staging.path())
        .arg(&name)
        .status()
        .unwrap();
    assert!(status.success());
    let sha = sha256(&std::fs::read(&archive).unwrap());
    (archive, sha.trim_start_matches("sha256:").to_owned())
}

/// The install step of a generated pipeline: its script and its `env:`.
pub(crate) fn install_step(dir: &Dir) -> (String, BTreeMap<String, String>) {
    let files = generate(dir);
    let pipeline = &files
        .iter()
        .find(|(n, _)| n == "gitops-pipeline.yml")
        .unwrap()
        .1;
    let doc = &YamlLoader::load_from_str(pipeline).unwrap()[0];
    let step = doc["jobs"]["build"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("install cargo-gitops"))
        })
        .expect("an install step");
    let env = step["env"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_owned(),
                v.as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (step["run"].as_str().unwrap().to_owned(), env)
}

/// Runs a step's script as GitHub Actions runs a bash step, with the step's `env:`, the
/// runner's variables and `overrides`, in `runner` (its temp dir and GITHUB_PATH file).
fn run_step(
    script: &str,
    env: &BTreeMap<String, String>,
    runner: &Path,
    overrides: &[(&str, &str)],
) -> Output {
    let file = runner.join("step.sh");
    std::fs::write(&file, script).unwrap();
    let temp = runner.join("temp");
    std::fs::create_dir_all(&temp).unwrap();
    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", runner)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", &temp)
        .env("GITHUB_PATH", runner.join("github_path"))
        .envs(env)
        .current_dir(runner);
    for (key, value) in overrides {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn config(version: &str, pins: &[(&str, &str)]) -> String {
    let mut text = format!(
        "[workspace]\n\n[workspace.metadata.gitops]\nimage = \"ghcr.io/acme/shop\"\n\n[workspace.metadata.gitops.install]\nversion = \"{version}\"\n\n[workspace.metadata.gitops.install.sha256]\n"
    );
    for (target, sha) in pins {
        text.push_str(&format!("{target} = \"{sha}\"\n"));
    }
    text
}

/// Asserts a failed step: exit 1, stderr one `::error::` line that contains `needle`.
fn assert_one_line_failure(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
    assert!(
        stderr.starts_with("::error::install cargo-gitops: "),
        "{stderr}"
    );
    assert!(stderr.contains(needle), "no `{needle}` in: {stderr}");
}

#[test]
fn the_prebuilt_install_downloads_checks_and_puts_the_binary_on_path() {
    let releases = tempfile::tempdir().unwrap();
    let (_, sha) = release(releases.path(), TARGET, VERSION);
    let base = serve(releases.path());
    let dir = repository(&config(VERSION, &[(TARGET, &sha)]));
    let (script, env) = install_step(&dir);
    assert_eq!(env["GITOPS_VERSION"], VERSION);
    assert_eq!(
        env["GITOPS_RELEASE_BASE_URL"],
        "https://github.com/au2001/gitops-demo-app/releases/download"
    );
    assert_eq!(env["GITOPS_SHA256_X86_64_UNKNOWN_LINUX_MUSL"], sha);

    let runner = tempfile::tempdir().unwrap();
    let output = run_step(
        &script,
        &env,
        runner.path(),
        &[("GITOPS_RELEASE_BASE_URL", &base)],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(&format!("installed cargo-gitops {VERSION} for {TARGET}")));
    let path = std::fs::read_to_string(runner.path().join("github_path")).unwrap();
    let bin_dir = path.trim_end();
    let version = Command::new(Path::new(bin_dir).join("cargo-gitops"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("cargo-gitops {VERSION}")
    );
}

#[test]
fn a_tampered_archive_is_refused_with_one_line() {
    let releases = tempfile::tempdir().unwrap();
    let (archive, sha) = release(releases.path(), TARGET, VERSION);
    let base = serve(releases.path());
    let dir = repository(&config(VERSION, &[(TARGET, &sha)]));
    let (script, env) = install_step(&dir);
    // Another archive under the same name, as a compromised release or mirror would serve.
    let other = tempfile::tempdir().unwrap();
    let (evil, evil_sha) = release_of(other.path(), TARGET, VERSION, "curl -s evil.example\n");
    std::fs::copy(evil, &archive).unwrap();
    assert_ne!(sha, evil_sha);

    let runner = tempfile::tempdir().unwrap();
    let output = run_step(
        &script,
        &env,
        runner.path(),
        &[("GITOPS_RELEASE_BASE_URL", &base)],
    );
    assert_one_line_failure(
        &output,
        &format!("has SHA-256 {evil_sha}, but the workflow pins {sha}"),
    );
    assert!(
        !runner.path().join("github_path").exists(),
        "nothing was put on PATH"
    );
}

#[test]
fn a_missing_asset_fails_with_one_line() {
    let releases = tempfile::tempdir().unwrap();
    let (_, sha) = release(releases.path(), TARGET, VERSION);
    let base = serve(releases.path());
    let dir = repository(&config("9.9.10", &[(TARGET, &sha)]));
    let (script, env) = install_step(&dir);
    let runner = tempfile::tempdir().unwrap();
    let output = run_step(
        &script,
        &env,
        runner.path(),
        &[("GITOPS_RELEASE_BASE_URL", &base)],
    );
    assert_one_line_failure(&output, "is missing (HTTP 404)");
}

#[test]
fn an_unsupported_or_unpinned_platform_and_a_plain_http_mirror_fail_with_one_line() {
    let releases = tempfile::tempdir().unwrap();
    let (_, sha) = release(releases.path(), TARGET, VERSION);
    let base = serve(releases.path());
    let dir = repository(&config(VERSION, &[(TARGET, &sha)]));
    let (script, env) = install_step(&dir);
    let runner = tempfile::tempdir().unwrap();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("RUNNER_OS", "Windows"), ("GITOPS_RELEASE_BASE_URL", &base)],
            "no prebuilt cargo-gitops for runner platform 'Windows/X64'",
        ),
        (
            &[("RUNNER_ARCH", "ARM64"), ("GITOPS_RELEASE_BASE_URL", &base)],
            "no SHA-256 is pinned for aarch64-unknown-linux-musl",
        ),
        (
            &[("GITOPS_RELEASE_BASE_URL", "http://mirror.example/releases")],
            "must be an https URL",
        ),
    ];
    for (overrides, needle) in cases {
        let output = run_step(&script, &env, runner.path(), overrides);
        assert_one_line_failure(&output, needle);
    }
    // Loopback only by its parsed host: a userinfo that looks like 127.0.0.1 (the real host
    // is after `@`), a host that merely starts like one, credentials, a query or a fragment.
    let port = base.rsplit(':').next().unwrap();
    let port = port.trim_end_matches('/');
    for url in [
        format!("http://127.0.0.1:{port}@mirror.example:{port}/releases"),
        format!("http://localhost:{port}@mirror.example/releases"),
        "http://127.0.0.1.mirror.example/releases".to_owned(),
        "http://localhost.mirror.example/releases".to_owned(),
        format!("http://127.0.0.1:{port}x/releases"),
        "https://user:secret@github.com/releases".to_owned(),
        format!("{base}?x=1"),
        format!("{base}#@mirror.example"),
    ] {
        let output = run_step(
            &script,
            &env,
            runner.path(),
            &[("GITOPS_RELEASE_BASE_URL", &url)],
        );
        assert_one_line_failure(&output, "must be an https URL without credentials");
        assert!(!String::from_utf8_lossy(&output.stderr).contains("secret"));
    }
}

#[test]
fn the_cargo_and_path_installs_pass_their_values_through_env() {
    // A stand-in cargo that records its arguments, one per line.
    let runner = tempfile::tempdir().unwrap();
    let bin = runner.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("cargo"),
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$HOME/cargo-args\"\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(bin.join("cargo"))
        .status()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let dir = repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nimage = \"ghcr.io/acme/shop\"\n\n[workspace.metadata.gitops.install]\nmode = \"path\"\npath = \"tools/cargo-gitops\"\n",
    );
    let (script, env) = install_step(&dir);
    assert_eq!(
        env,
        BTreeMap::from([(
            "GITOPS_INSTALL_PATH".to_owned(),
            "tools/cargo-gitops".to_owned()
        )])
    );
    let output = run_step(&script, &env, runner.path(), &[("PATH", &path)]);
    assert!(output.status.success(), "{output:?}");
    let args = std::fs::read_to_string(runner.path().join("cargo-args")).unwrap();
    assert_eq!(args, "install\n--locked\n--path\ntools/cargo-gitops\n");

    let dir = repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nimage = \"ghcr.io/acme/shop\"\n\n[workspace.metadata.gitops.install]\nmode = \"cargo\"\nversion = \"1.2.3\"\n",
    );
    let files = generate(&dir);
    let pipeline = &files
        .iter()
        .find(|(n, _)| n == "gitops-pipeline.yml")
        .unwrap()
        .1;
    assert!(
        pipeline.contains("key: \"cargo-gitops-${{ runner.os }}-${{ runner.arch }}-1.2.3\""),
        "{pipeline}"
    );
    let (script, env) = install_step(&dir);
    let output = run_step(&script, &env, runner.path(), &[("PATH", &path)]);
    assert!(output.status.success(), "{output:?}");
    let args = std::fs::read_to_string(runner.path().join("cargo-args")).unwrap();
    assert_eq!(args, "install\n--locked\n--force\ncargo-gitops@1.2.3\n");
    crate::workflows::validate_dir(&dir);
}

/// The README's excerpt of the generated install step is the generator's: every line of it,
/// in order, in the step generated for the README's configuration (`# …` stands for lines cut).
#[test]
fn the_readme_shows_the_install_step_the_generator_writes() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let excerpt = readme
        .split("<!-- install-step-excerpt -->\n```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the README has the install step excerpt");
    let dir = crate::workflows::repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"web\"\n\n[workspace.metadata.gitops.install.sha256]\nx86_64-unknown-linux-musl = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n",
    );
    let files = generate(&dir);
    let pipeline = &files
        .iter()
        .find(|(n, _)| n == "gitops-pipeline.yml")
        .unwrap()
        .1;
    let generated: Vec<&str> = pipeline.lines().collect();
    let start = generated
        .iter()
        .position(|l| l.trim_start().starts_with("- name: install cargo-gitops"))
        .expect("an install step");
    let mut at = start;
    let mut skipping = false;
    for line in excerpt.lines() {
        if line.trim() == "# …" {
            skipping = true;
            continue;
        }
        if skipping {
            at += generated[at..]
                .iter()
                .position(|g| *g == line)
                .unwrap_or_else(|| panic!("README line not in the generated step: {line}"));
        } else {
            assert_eq!(generated.get(at), Some(&line), "README line {line:?}");
        }
        at += 1;
        skipping = false;
    }
    assert!(
        generated[at..]
            .first()
            .is_some_and(|l| l.trim_start().starts_with("- name: ")),
        "the excerpt ends where the step ends"
    );
}
