//! Settings the configuration carries for the other layers: how images are built and retagged
//! (the builder and retagger kinds, Dockerfile, platforms, native options) and how workflows are
//! generated (action pins, extra steps, registry logins, how cargo-gitops is installed). Parsing and validation are `load`'s;
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

/// A file or folder of the repository (`from`, relative to the root) copied into a native
/// image at `to` (absolute), as a Dockerfile's `COPY configuration /app/configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Include {
    pub from: PathBuf,
    pub to: String,
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

/// The environment variable that holds the signing key's PEM unless `signing-key-env` names
/// another.
pub const DEFAULT_SIGNING_KEY_ENV: &str = "GITOPS_SIGNING_KEY";

/// How images are signed (`sign`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignMode {
    /// Not signed (the default; turns off a workspace's `sign` for one package).
    #[default]
    None,
    /// By `cargo gitops build`, with an ECDSA P-256 key (PEM) from `signing-key-env` or
    /// `--signing-key FILE`: cosign's format, no cosign needed.
    Key,
    /// By cosign in the generated GitHub workflow, with the job's OIDC token (Fulcio, Rekor).
    Keyless,
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
    /// Neither `cache-from` nor `cache-to` is configured: buildx keeps its cache in the
    /// image's own repository, `type=registry,ref=IMAGE:buildcache` (`mode=max`), which needs
    /// nothing but the push login. Setting either list (even to `[]`) replaces it.
    pub registry_cache: bool,
    pub insecure_registries: Vec<String>,
    /// Native builds: the binary to pack, when the package has several.
    pub bin: Option<String>,
    /// Native builds: a base image pinned by digest.
    pub base: Option<String>,
    pub exposed_ports: Vec<String>,
    /// Native builds: environment variables of the image.
    pub image_env: BTreeMap<String, String>,
    /// Native builds: environment variables of the compile (`SQLX_OFFLINE = "true"`).
    pub build_env: BTreeMap<String, String>,
    /// Native builds: files or folders of the repository copied into the image.
    pub include: Vec<Include>,
    /// Native builds: the image's working directory (default `/`).
    pub workdir: Option<String>,
    /// Native builds: the arguments the entrypoint gets (the image's `Cmd`).
    pub args: Vec<String>,
    /// How images are signed.
    pub sign: SignMode,
    /// `sign = "key"`: the environment variable that holds the key's PEM, when configured.
    pub signing_key_env: Option<String>,
    /// `sbom`, when configured: see [`BuildSettings::sbom`].
    pub sbom: Option<bool>,
    /// `provenance`, when configured: see [`BuildSettings::provenance`].
    pub provenance: Option<bool>,
    /// `paths`: globs (from the configuration's folder) of files the image is made of, which
    /// `affected` compares besides what it finds itself.
    pub paths: Vec<String>,
}

impl BuildSettings {
    /// Whether a build by `builder` attaches an SBOM. Native builds write their own (the
    /// crates linked into the binary), so it is on unless turned off; buildx asks BuildKit for
    /// one only when asked to, since its scanner is an image BuildKit pulls; podman makes none.
    pub fn sbom(&self, builder: BuilderKind) -> bool {
        match builder {
            BuilderKind::Native => self.sbom.unwrap_or(true),
            BuilderKind::Buildx => self.sbom.unwrap_or(false),
            BuilderKind::Podman => false,
        }
    }

    /// Whether a build by `builder` attaches a provenance statement: the tool's own for native
    /// and podman builds (on unless turned off), BuildKit's for buildx (only when asked to).
    pub fn provenance(&self, builder: BuilderKind) -> bool {
        match builder {
            BuilderKind::Buildx => self.provenance.unwrap_or(false),
            _ => self.provenance.unwrap_or(true),
        }
    }

    /// The environment variable that holds the signing key: configured, else the default.
    pub fn signing_key_env(&self) -> &str {
        self.signing_key_env
            .as_deref()
            .unwrap_or(DEFAULT_SIGNING_KEY_ENV)
    }
}

/// An action pinned to a full commit, with the release it is (for the `# vX.Y.Z` comment).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub sha: String,
    pub version: String,
}

/// The pins shipped with this release, by action: each the newest release of its current
/// major, its tag peeled to the commit in the action's own repository, and running on Node 24
/// (`runs.using: node24`; setup-crane and cosign-installer are composite actions, and so is
/// attest-build-provenance, over `actions/attest` on Node 24). The second value is the release,
/// written as the `# vX.Y.Z` comment beside the SHA in every workflow. `pins update` refreshes
/// them in a configuration; these are what a configuration without an `actions` table gets.
pub fn default_pins() -> BTreeMap<String, Pin> {
    let pin = |sha: &str, version: &str| Pin {
        sha: sha.to_owned(),
        version: version.to_owned(),
    };
    BTreeMap::from([
        (
            "actions/checkout".to_owned(),
            pin("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
        ),
        (
            "docker/setup-buildx-action".to_owned(),
            pin("37fe631027851001ddb9b187196cc803df7f5f0e", "v4.3.0"),
        ),
        (
            "docker/setup-qemu-action".to_owned(),
            pin("96fe6ef7f33517b61c61be40b68a1882f3264fb8", "v4.2.0"),
        ),
        (
            "docker/login-action".to_owned(),
            pin("4907a6ddec9925e35a0a9e82d7399ccc52663121", "v4.1.0"),
        ),
        (
            "imjasonh/setup-crane".to_owned(),
            pin("6da1ae018866400525525ce74ff892880c099987", "v0.5"),
        ),
        (
            "actions/cache".to_owned(),
            pin("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
        ),
        (
            "aws-actions/configure-aws-credentials".to_owned(),
            pin("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
        ),
        (
            "aws-actions/amazon-ecr-login".to_owned(),
            pin("03f1aad4c6c7ffd436567f42f9384779290529bd", "v2.1.7"),
        ),
        (
            "google-github-actions/auth".to_owned(),
            pin("7c6bc770dae815cd3e89ee6cdf493a5fab2cc093", "v3.0.0"),
        ),
        (
            "sigstore/cosign-installer".to_owned(),
            pin("6f9f17788090df1f26f669e9d70d6ae9567deba6", "v4.1.2"),
        ),
        (
            "actions/attest-build-provenance".to_owned(),
            pin("a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32", "v4.1.0"),
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

/// How a registry other than ghcr.io is logged in to, from `registry-logins."HOST"`: an AWS
/// role for ECR, workload identity federation for Artifact Registry, or the names of two
/// repository secrets for any registry. Checked against the registry's kind by `ci`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryLogin {
    pub aws_role: Option<String>,
    pub aws_region: Option<String>,
    pub workload_identity_provider: Option<String>,
    pub service_account: Option<String>,
    pub username_secret: Option<String>,
    pub password_secret: Option<String>,
}

/// How the generated pipeline installs cargo-gitops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallMode {
    /// The release archive for the runner's platform, checked against a pinned SHA-256.
    Prebuilt,
    /// `cargo install --locked cargo-gitops@VERSION`, cached by version.
    Cargo,
    /// `cargo install --locked --path PATH`, from the repository itself.
    Path,
}

/// The `install` table: mode, exact version, where releases are, and their pinned checksums
/// by target (written by `cargo gitops pins update`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InstallSettings {
    pub mode: Option<InstallMode>,
    pub version: Option<String>,
    pub base_url: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
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
    /// `github-attestation`: a GitHub build-provenance attestation of each image the pipeline
    /// builds, pushed to the registry beside it.
    pub github_attestation: bool,
    pub runs_on: Option<String>,
    /// Workflows (by `name:`) whose successful run on a pushed branch starts the branch
    /// environments' workflows (`workflow_run`), instead of the push itself.
    pub needs_workflows: Vec<String>,
    /// Install cargo-gitops from this path in the repository instead of crates.io.
    pub install_path: Option<String>,
    pub registry_secrets: Option<RegistrySecrets>,
    /// Logins by registry host, for registries other than ghcr.io.
    pub registry_logins: BTreeMap<String, RegistryLogin>,
    pub install: InstallSettings,
    /// The CIs `init-workflows` writes pipelines for; GitHub Actions when not configured.
    pub pipelines: Vec<PipelineKind>,
    pub gitlab: super::GitlabSettings,
}
