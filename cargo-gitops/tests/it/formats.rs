//! `--format json` on every command: each either writes one JSON value on stdout or refuses
//! the flag with a one-line usage error (exit 2); none ignores it.

use crate::support::{Dir, Registry, gitops_manifest};

#[test]
fn every_command_honours_or_refuses_format_json() {
    let registry = Registry::start();
    let dir = Dir::git_repo();
    dir.git(["config", "user.name", "Format Tester"]);
    dir.git(["config", "user.email", "format@example.com"]);
    let logins = format!(
        "registry-secrets = {{ username = \"REGISTRY_USER\", password = \"REGISTRY_PASSWORD\" }}\n{}",
        crate::workflows::INSTALL_PINS
    );
    dir.create(
        "Cargo.toml",
        gitops_manifest(&registry.host(), "app", &logins),
    );
    dir.commit("first");
    dir.command().arg("init-workflows").succeeds();
    dir.commit("workflows");

    let honoured: &[&[&str]] = &[
        &["env"],
        &[
            "build",
            "--build-with",
            "podman",
            "--retag-with",
            "builtin",
            "--dry-run",
        ],
        &["init-workflows", "--check"],
        &["release", "patch", "--dry-run"],
        &["promote", "testing", "--branch", "test/uat1", "--dry-run"],
        &["history", "staging"],
    ];
    for args in honoured {
        let mut command = dir.command();
        let value = command.args(*args).args(["--format", "json"]).json();
        assert!(value.is_object() || value.is_array(), "{args:?}: {value}");
    }
    let refused: &[&[&str]] = &[&["flux"]];
    for args in refused {
        let line = dir
            .command()
            .args(*args)
            .args(["--format", "json"])
            .usage_error();
        assert!(line.contains("drop --format"), "{args:?}: {line}");
    }
}
