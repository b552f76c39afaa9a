//! Settings the configuration carries for the other layers: how images are built and retagged
//! (the builder and retagger kinds, Dockerfile, platforms, native options) and how workflows are
//! generated (action pins, extra steps, registry secrets). Parsing and validation are `load`'s;
//! running builders or writing workflows is not this module's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// Which program builds images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuilderKind {
    /// `docker buildx build --push`: BuildKit, remote builders, multi-platform.
    Buildx,
    /// `podman build`, then `podman push` of each tag.
    Podman,
    /// No Dockerfile, no daemon: the crate's binary, compiled statically, packed as an image.
    Native,
}

/// Which program looks images up and retags them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetaggerKind {
    /// `crane digest`, then `crane tag` / `crane copy`.
    Crane,
    /// `docker buildx imagetools inspect`, then `create --prefer-index=false`.
    Imagetools,
    /// `skopeo inspect --raw`, then `skopeo copy --preserve-digests`.
    Skopeo,
    /// The built-in registry client: one HEAD to look up, one GET and one PUT per tag to retag.
    Builtin,
}

impl RetaggerKind {
    pub fn program(self) -> Option<&'static str> {
        match self {
            RetaggerKind::Crane => Some("crane"),
            RetaggerKind::Imagetools => Some("docker"),
            RetaggerKind::Skopeo => Some("skopeo"),
            RetaggerKind::Builtin => None,
        }
    }
}

/// How images are built and retagged, as configured (flags may still override).
#[derive(Debug, Clone, Default)]
pub struct BuildSettings {
    pub dockerfile: Option<PathBuf>,
    pub context: Option<PathBuf>,
    pub platforms: Vec<String>,
    pub builder: Option<BuilderKind>,
    pub retagger: Option<RetaggerKind>,
    pub buildx_builder: Option<String>,
    pub cache_from: Vec<String>,
    pub cache_to: Vec<String>,
    pub insecure_registries: Vec<String>,
    /// Native builds: the binary to pack, when the package has several.
    pub bin: Option<String>,
    /// Native builds: a base image pinned by digest.
    pub base: Option<String>,
    pub exposed_ports: Vec<String>,
    /// Native builds: environment variables of the image.
    pub image_env: BTreeMap<String, String>,
}

/// An action pinned to a full commit, with the release it is (for the `# vX.Y.Z` comment).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub sha: String,
    pub version: String,
}

/// The pins shipped with this release, by action.
pub fn default_pins() -> BTreeMap<String, Pin> {
    let pin = |sha: &str, version: &str| Pin {
        sha: sha.to_owned(),
        version: version.to_owned(),
    };
    BTreeMap::from([
        (
            "actions/checkout".to_owned(),
            pin("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
        ),
        (
            "docker/setup-buildx-action".to_owned(),
            pin("b5ca514318bd6ebac0fb2aedd5d36ec1b5c232a2", "v3.10.0"),
        ),
        (
            "docker/login-action".to_owned(),
            pin("74a5d142397b4f367a81961eba4e8cd7edddf772", "v3.4.0"),
        ),
        (
            "imjasonh/setup-crane".to_owned(),
            pin("31b88efe9de28ae0ffa220711af4b60be9435f6e", "v0.4"),
        ),
    ])
}

/// A step added to the pipeline before `cargo gitops build`, from `workflow-steps` in config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraStep {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub with: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// Secrets that hold the registry login, for registries other than ghcr.io.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySecrets {
    pub username: String,
    pub password: String,
}

/// A CI whose pipelines `init-workflows` writes (`ci = ["github", "gitlab"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PipelineKind {
    /// GitHub Actions: `.github/workflows/gitops-*.yml`.
    Github,
    /// GitLab CI: `.gitlab/gitops.gitlab-ci.yml`, included from `.gitlab-ci.yml`.
    Gitlab,
}

/// Workflow settings from the configuration.
#[derive(Debug, Clone, Default)]
pub struct WorkflowSettings {
    pub templates: Option<PathBuf>,
    pub pins: BTreeMap<String, Pin>,
    pub extra_steps: Vec<ExtraStep>,
    pub id_token: bool,
    pub runs_on: Option<String>,
    /// Install cargo-gitops from this path in the repository instead of crates.io.
    pub install_path: Option<String>,
    pub registry_secrets: Option<RegistrySecrets>,
    /// The CIs `init-workflows` writes pipelines for; GitHub Actions when not configured.
    pub pipelines: Vec<PipelineKind>,
    pub gitlab: super::GitlabSettings,
}
