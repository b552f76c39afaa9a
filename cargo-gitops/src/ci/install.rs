//! How a generated pipeline installs cargo-gitops, and the names of what a release publishes.
//!
//! Three modes, from the `install` table: `prebuilt` (the default) downloads the release
//! archive of an exact version for the runner's platform and checks it against a SHA-256
//! written into the workflow; `cargo` runs `cargo install --locked cargo-gitops@VERSION`
//! behind a cache keyed on the version; `path` installs from a folder of the repository.
//! Each is a shell script that takes every value from `env:`, never from the YAML around it.
//!
//! A release `cargo-gitops-v{version}` holds, in cargo-binstall's default layout,
//! `cargo-gitops-{target}-v{version}.tar.gz` (a folder of the same name with the binary in
//! it), a `.sha256` beside each, and `cargo-gitops-v{version}.sha256sums` with every archive's
//! line; the release workflow makes exactly these, `pins update` reads the last.

use std::collections::BTreeMap;

use serde::Serialize;

use super::grammar;
use crate::config::{InstallMode, WorkflowSettings};
use crate::error::Error;

/// The runner platforms with a prebuilt archive: `RUNNER_OS`, `RUNNER_ARCH`, Rust target.
pub const TARGETS: [(&str, &str, &str); 4] = [
    ("Linux", "X64", "x86_64-unknown-linux-musl"),
    ("Linux", "ARM64", "aarch64-unknown-linux-musl"),
    ("macOS", "X64", "x86_64-apple-darwin"),
    ("macOS", "ARM64", "aarch64-apple-darwin"),
];

/// Where releases are downloaded from unless `install.base-url` names a mirror:
/// `{base}/cargo-gitops-v{version}/{archive}`.
pub const DEFAULT_BASE_URL: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/releases/download");

/// The script of the `prebuilt` mode.
pub const PREBUILT_SCRIPT: &str = include_str!("../../templates/install-prebuilt.sh");

const CARGO_SCRIPT: &str = r#"set -euo pipefail
if [ "$(cargo-gitops --version 2>/dev/null || true)" = "cargo-gitops $GITOPS_VERSION" ]; then
  echo "cargo-gitops $GITOPS_VERSION restored from the cache"
else
  cargo install --locked --force "cargo-gitops@$GITOPS_VERSION"
fi
"#;

const PATH_SCRIPT: &str = r#"set -euo pipefail
cargo install --locked --path "$GITOPS_INSTALL_PATH"
"#;

/// The release tag of a version: `cargo-gitops-v0.1.0`.
pub fn release_tag(version: &str) -> String {
    format!("cargo-gitops-v{version}")
}

/// The archive of one target: `cargo-gitops-x86_64-unknown-linux-musl-v0.1.0.tar.gz`.
pub fn archive_name(target: &str, version: &str) -> String {
    format!("cargo-gitops-{target}-v{version}.tar.gz")
}

/// The release's combined checksum file: `cargo-gitops-v0.1.0.sha256sums`.
pub fn checksums_name(version: &str) -> String {
    format!("{}.sha256sums", release_tag(version))
}

/// The variable that carries a target's pinned SHA-256 to the script.
pub fn checksum_variable(target: &str) -> String {
    format!(
        "GITOPS_SHA256_{}",
        target.to_ascii_uppercase().replace('-', "_")
    )
}

/// The install step(s), ready for the template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Install {
    pub mode: &'static str,
    /// The step's `env:`: every value the script reads.
    pub env: BTreeMap<String, String>,
    pub script: &'static str,
    /// `cargo` mode: the actions/cache key of the installed binary.
    pub cache_key: Option<String>,
}

/// Whether the configuration installs the prebuilt release (the default).
pub fn is_prebuilt(settings: &WorkflowSettings) -> bool {
    match settings.install.mode {
        Some(mode) => mode == InstallMode::Prebuilt,
        None => settings.install_path.is_none() && settings.install.path.is_none(),
    }
}

/// The version the pipeline installs: as configured, else this build's own.
pub fn version(settings: &WorkflowSettings) -> Result<String, Error> {
    let version = settings
        .install
        .version
        .clone()
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned());
    grammar::semver("install.version", &version)?;
    Ok(version)
}

/// The install of the configuration, every value checked.
pub fn plan(settings: &WorkflowSettings) -> Result<Install, Error> {
    match install_mode(settings)? {
        InstallMode::Path => path_install(settings),
        InstallMode::Cargo => {
            let version = version(settings)?;
            Ok(Install {
                mode: "cargo",
                cache_key: Some(format!(
                    "cargo-gitops-${{{{ runner.os }}}}-${{{{ runner.arch }}}}-{version}"
                )),
                env: BTreeMap::from([("GITOPS_VERSION".to_owned(), version)]),
                script: CARGO_SCRIPT,
            })
        }
        InstallMode::Prebuilt => prebuilt_install(settings),
    }
}

/// The mode the configuration asks for, refusing settings that belong to another mode.
fn install_mode(settings: &WorkflowSettings) -> Result<InstallMode, Error> {
    let install = &settings.install;
    let mode = match (install.mode, &settings.install_path, &install.path) {
        (_, Some(_), Some(_)) => {
            return Err(Error::usage(
                "configuration key `install-path`: install.path says the same; keep one of them",
            ));
        }
        (None | Some(InstallMode::Path), Some(_), None) => InstallMode::Path,
        (Some(mode), Some(_), None) => {
            return Err(Error::usage(format!(
                "configuration key `install-path`: it installs from a path, but install.mode is {mode:?}; remove one of them"
            )));
        }
        (None, None, Some(_)) => InstallMode::Path,
        (Some(mode), None, _) => mode,
        (None, None, None) => InstallMode::Prebuilt,
    };
    if mode != InstallMode::Path && install.path.is_some() {
        return Err(Error::usage(
            "configuration key `install.path`: only install.mode = \"path\" installs from a path",
        ));
    }
    if mode != InstallMode::Prebuilt {
        if install.base_url.is_some() {
            return Err(Error::usage(
                "configuration key `install.base-url`: only install.mode = \"prebuilt\" downloads releases",
            ));
        }
        if !install.sha256.is_empty() {
            return Err(Error::usage(
                "configuration key `install.sha256`: only install.mode = \"prebuilt\" checks release archives",
            ));
        }
    }
    Ok(mode)
}

/// `install.mode = "path"`: the repository's own package, built from its folder.
fn path_install(settings: &WorkflowSettings) -> Result<Install, Error> {
    let install = &settings.install;
    let (key, path) = match (&settings.install_path, &install.path) {
        (Some(path), _) => ("install-path", path),
        (None, Some(path)) => ("install.path", path),
        (None, None) => {
            return Err(Error::usage(
                "configuration key `install.path` is not set: install.mode = \"path\" needs the package's folder",
            ));
        }
    };
    if install.version.is_some() {
        return Err(Error::usage(
            "configuration key `install.version`: a path install builds the repository's own version; remove it",
        ));
    }
    grammar::repo_path(key, path)?;
    Ok(Install {
        mode: "path",
        env: BTreeMap::from([("GITOPS_INSTALL_PATH".to_owned(), path.clone())]),
        script: PATH_SCRIPT,
        cache_key: None,
    })
}

/// `install.mode = "prebuilt"`: the release archive, checked against its pinned SHA-256.
fn prebuilt_install(settings: &WorkflowSettings) -> Result<Install, Error> {
    let install = &settings.install;
    let version = version(settings)?;
    let base = install
        .base_url
        .clone()
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    grammar::https_url("install.base-url", &base)?;
    let mut env = BTreeMap::from([
        ("GITOPS_VERSION".to_owned(), version.clone()),
        ("GITOPS_RELEASE_BASE_URL".to_owned(), base),
    ]);
    for (target, sha) in &install.sha256 {
        let key = format!("install.sha256.\"{}\"", grammar::shown(target));
        if !TARGETS.iter().any(|(_, _, t)| t == target) {
            let known: Vec<&str> = TARGETS.iter().map(|(_, _, t)| *t).collect();
            return Err(Error::usage(format!(
                "configuration key `{key}`: there is no prebuilt archive for that target; prebuilt targets are {}",
                known.join(", ")
            )));
        }
        grammar::sha256(&key, sha)?;
        env.insert(checksum_variable(target), sha.clone());
    }
    if install.sha256.is_empty() {
        return Err(Error::usage(format!(
            "configuration key `install.sha256` is not set: a prebuilt install checks the archive of cargo-gitops {version} against a pinned SHA-256; run `cargo gitops pins update` to write them, or set install.mode = \"cargo\""
        )));
    }
    Ok(Install {
        mode: "prebuilt",
        env,
        script: PREBUILT_SCRIPT,
        cache_key: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cargo_binstalls_default_layout() {
        assert_eq!(release_tag("1.2.3"), "cargo-gitops-v1.2.3");
        assert_eq!(
            archive_name("x86_64-unknown-linux-musl", "1.2.3"),
            "cargo-gitops-x86_64-unknown-linux-musl-v1.2.3.tar.gz"
        );
        assert_eq!(checksums_name("1.2.3"), "cargo-gitops-v1.2.3.sha256sums");
        assert_eq!(
            checksum_variable("aarch64-apple-darwin"),
            "GITOPS_SHA256_AARCH64_APPLE_DARWIN"
        );
    }

    #[test]
    fn the_script_knows_every_target_and_github_expands_nothing_in_it() {
        for (os, arch, target) in TARGETS {
            assert!(
                PREBUILT_SCRIPT.contains(&format!("{os}/{arch}) target={target}")),
                "{target}"
            );
            assert!(
                PREBUILT_SCRIPT.contains(&checksum_variable(target)),
                "{target}"
            );
        }
        for script in [PREBUILT_SCRIPT, CARGO_SCRIPT, PATH_SCRIPT] {
            assert!(!script.contains("${{"));
        }
    }
}
