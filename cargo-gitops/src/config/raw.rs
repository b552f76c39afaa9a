//! The configuration as written: the `gitops` table's keys (the same in `Cargo.toml` metadata
//! and in `gitops.toml`), the parts of a manifest that are read, and TOML errors with the file,
//! line and key. Turning these into checked values is `load`'s and `environments`' job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    BuilderKind, ExtraStep, Include, InstallSettings, Pin, PipelineKind, RawDeploy, RawGitlab,
    RegistryLogin, RegistrySecrets, RetaggerKind, SignMode,
};
use crate::error::Error;

/// The `gitops` table, as written in either manifest table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    pub registry: Option<String>,
    pub image: Option<String>,
    pub environments: Option<Vec<RawEnvironment>>,
    pub exclude_branches: Option<Vec<String>>,
    pub dockerfile: Option<PathBuf>,
    pub context: Option<PathBuf>,
    pub platforms: Option<Vec<String>>,
    pub builder: Option<BuilderKind>,
    pub retagger: Option<RetaggerKind>,
    pub buildx_builder: Option<String>,
    pub cache_from: Option<Vec<String>>,
    pub cache_to: Option<Vec<String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub bin: Option<String>,
    pub base: Option<String>,
    pub exposed_ports: Option<Vec<String>>,
    pub image_env: Option<BTreeMap<String, String>>,
    pub build_env: Option<BTreeMap<String, String>>,
    pub include: Option<Vec<Include>>,
    pub workdir: Option<String>,
    pub args: Option<Vec<String>>,
    pub sign: Option<SignMode>,
    pub signing_key_env: Option<String>,
    pub sbom: Option<bool>,
    pub provenance: Option<bool>,
    /// What an image is made of, beyond what `affected` knows (globs from the root).
    pub paths: Option<Vec<String>>,
    pub templates: Option<PathBuf>,
    pub actions: Option<BTreeMap<String, Pin>>,
    pub workflow_steps: Option<Vec<ExtraStep>>,
    pub id_token: Option<bool>,
    pub github_attestation: Option<bool>,
    pub runs_on: Option<String>,
    pub needs_workflows: Option<Vec<String>>,
    pub install_path: Option<String>,
    pub registry_secrets: Option<RegistrySecrets>,
    pub registry_logins: Option<BTreeMap<String, RegistryLogin>>,
    pub install: Option<InstallSettings>,
    pub ci: Option<Vec<PipelineKind>>,
    pub gitlab: Option<RawGitlab>,
    /// The whole run's deadline, as `--timeout` takes it (`"30m"`).
    pub timeout: Option<String>,
    /// Where `cargo gitops deploy` writes the images: checked by `deploy::settings`.
    pub deploy: Option<RawDeploy>,
    /// A package's table only: its image is built by a workflow of its own (this repository's
    /// release.yml builds the tool's), so the generated pipelines and commands without `-p`
    /// leave it out.
    pub own_workflow: Option<bool>,
    /// `gitops.toml` only: one table per image the repository ships, over the top-level keys.
    pub images: Option<BTreeMap<String, RawConfig>>,
}

impl RawConfig {
    /// Key by key, this table's value, else `fallback`'s (a package's table over the workspace's).
    pub fn or(self, fallback: RawConfig) -> RawConfig {
        RawConfig {
            registry: self.registry.or(fallback.registry),
            image: self.image.or(fallback.image),
            environments: self.environments.or(fallback.environments),
            exclude_branches: self.exclude_branches.or(fallback.exclude_branches),
            dockerfile: self.dockerfile.or(fallback.dockerfile),
            context: self.context.or(fallback.context),
            platforms: self.platforms.or(fallback.platforms),
            builder: self.builder.or(fallback.builder),
            retagger: self.retagger.or(fallback.retagger),
            buildx_builder: self.buildx_builder.or(fallback.buildx_builder),
            cache_from: self.cache_from.or(fallback.cache_from),
            cache_to: self.cache_to.or(fallback.cache_to),
            insecure_registries: self.insecure_registries.or(fallback.insecure_registries),
            bin: self.bin.or(fallback.bin),
            base: self.base.or(fallback.base),
            exposed_ports: self.exposed_ports.or(fallback.exposed_ports),
            image_env: self.image_env.or(fallback.image_env),
            build_env: self.build_env.or(fallback.build_env),
            include: self.include.or(fallback.include),
            workdir: self.workdir.or(fallback.workdir),
            args: self.args.or(fallback.args),
            sign: self.sign.or(fallback.sign),
            signing_key_env: self.signing_key_env.or(fallback.signing_key_env),
            sbom: self.sbom.or(fallback.sbom),
            provenance: self.provenance.or(fallback.provenance),
            paths: self.paths.or(fallback.paths),
            templates: self.templates.or(fallback.templates),
            actions: self.actions.or(fallback.actions),
            workflow_steps: self.workflow_steps.or(fallback.workflow_steps),
            id_token: self.id_token.or(fallback.id_token),
            github_attestation: self.github_attestation.or(fallback.github_attestation),
            runs_on: self.runs_on.or(fallback.runs_on),
            needs_workflows: self.needs_workflows.or(fallback.needs_workflows),
            install_path: self.install_path.or(fallback.install_path),
            registry_secrets: self.registry_secrets.or(fallback.registry_secrets),
            registry_logins: self.registry_logins.or(fallback.registry_logins),
            install: self.install.or(fallback.install),
            ci: self.ci.or(fallback.ci),
            gitlab: match (self.gitlab, fallback.gitlab) {
                (Some(own), Some(shared)) => Some(own.or(shared)),
                (own, shared) => own.or(shared),
            },
            timeout: self.timeout.or(fallback.timeout),
            deploy: self.deploy.or(fallback.deploy),
            // Not inherited: it says how one package's image is built.
            own_workflow: self.own_workflow,
            images: self.images,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawEnvironment {
    pub name: String,
    pub branches: Option<Vec<String>>,
    pub tags: Option<RawTags>,
    pub format: Option<String>,
    pub latest: Option<RawLatest>,
    pub build_args: Option<BTreeMap<String, String>>,
    pub image: Option<String>,
    /// Promotion gates (`gates = { previous = "staging", soak = "30m" }`).
    pub gates: Option<crate::gates::spec::RawGates>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTags {
    /// `"stable"`, or a channel name that pre-releases start with (`"alpha"`).
    pub semver: Option<String>,
    /// A regular expression the whole tag name must match.
    pub regex: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "true, false, or a tag format such as \"prd-alpha-latest\""
)]
pub enum RawLatest {
    Enabled(bool),
    Format(String),
}

#[derive(Deserialize)]
pub struct Manifest {
    pub package: Option<ManifestPackage>,
    pub workspace: Option<ManifestWorkspace>,
}

#[derive(Deserialize)]
pub struct ManifestPackage {
    pub name: String,
    pub metadata: Option<ManifestMetadata>,
}

#[derive(Deserialize)]
pub struct ManifestWorkspace {
    #[serde(default)]
    pub members: Vec<String>,
    pub metadata: Option<ManifestMetadata>,
}

#[derive(Deserialize)]
pub struct ManifestMetadata {
    pub gitops: Option<RawConfig>,
    /// Other tools' tables, read only to notice a misspelled `gitops`.
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

/// Reads a TOML file into `T`; errors name the file, the line and the key.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadManifest {
        path: path.to_path_buf(),
        source,
    })?;
    let deserializer =
        toml::Deserializer::parse(&text).map_err(|err| config_error(path, &text, "", &err))?;
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let key = err.path().to_string();
        config_error(path, &text, &key, err.inner())
    })
}

pub fn config_error(path: &Path, text: &str, key: &str, err: &toml::de::Error) -> Error {
    let line = err
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    Error::Config {
        file: path.to_path_buf(),
        line,
        key: if key == "." {
            String::new()
        } else {
            key.to_owned()
        },
        message: err.message().trim().to_owned(),
    }
}
