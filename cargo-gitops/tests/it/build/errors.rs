//! What a failing tool is said to mean: docker without its buildx plugin, a retagger that is
//! not installed, a podman push the registry refuses for want of a login. Each is one line that
//! says what to do, with the exit code of its kind, and nothing is pushed.

use super::build;
use crate::support::{Fixture, Registry, path_with_only};

#[test]
fn docker_without_the_buildx_plugin_says_to_install_it() {
    // The docker CLI here has no plugin: `docker buildx build` reads as `docker --output`.
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    // Exit 1 with one error line, after the steps' progress; docker's own usage text (what
    // it answers `docker buildx build …` with) never reaches the log.
    let output = build(&fixture, "buildx", "builtin", &[]).expect_exit(1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("Usage:") && !stderr.contains("unknown flag"),
        "{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "{stderr}");
    let line = errors[0];
    assert!(
        line.starts_with("error: `docker buildx` is not installed: docker has no buildx plugin")
            && line.contains("https://docs.docker.com/go/buildx/")
            && line.contains("--build-with podman or --build-with native"),
        "{line}"
    );
    assert!(registry.tags("fixture").is_empty());
}

#[test]
fn imagetools_without_docker_suggests_another_retagger() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let (_bin, path) = path_with_only(&[]);
    let line = build(&fixture, "podman", "imagetools", &[])
        .env("PATH", path)
        .expect_error(1);
    assert!(
        line.starts_with("error: `docker` is not installed: ")
            && line.contains("--retag-with builtin")
            && !line.contains("--build-with"),
        "{line}"
    );
}

#[test]
fn imagetools_without_the_buildx_plugin_suggests_another_retagger() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let line = build(&fixture, "podman", "imagetools", &[]).expect_error(1);
    assert!(
        line.starts_with("error: `docker buildx` is not installed: docker has no buildx plugin")
            && line.contains("--retag-with builtin")
            && !line.contains("--build-with"),
        "{line}"
    );
    assert!(registry.requests().is_empty(), "{:?}", registry.requests());
}

#[test]
fn a_podman_push_refused_as_unauthorized_says_podman_login() {
    let registry = Registry::start_with_user("ci", "right-password-1");
    let fixture = Fixture::new(&registry.host(), "fixture");
    // The built-in client has the credential, so the lookup works; podman has no login.
    let args = ["--registry-user", "ci", "--registry-password-stdin"];
    let output = build(&fixture, "podman", "builtin", &args)
        .write_stdin("right-password-1\n")
        .expect_exit(1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let host = registry.host();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert_eq!(
        line,
        format!(
            "error: `podman push` failed: {host} refused it as unauthorized; run `podman login {host}` (podman keeps its own logins), then run again"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("right-password-1"), "{stderr}");
    assert!(
        registry
            .tags_as("fixture", Some(("ci", "right-password-1")))
            .is_empty()
    );
}
