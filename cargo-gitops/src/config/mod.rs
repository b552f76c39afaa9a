//! Configuration: finding the manifest, reading `[workspace.metadata.gitops]` and
//! `[package.metadata.gitops]`, choosing the package, and turning the tables into checked
//! environments. It reads the TOML directly (no `cargo metadata` run) so that `cargo gitops env`
//! stays within a few milliseconds, and so that errors can give the line of the bad key.

mod gitlab;
mod settings;

pub use gitlab::{DEFAULT_DIND, DEFAULT_IMAGE, GitlabSettings, RawGitlab, is_variable_name};
pub use settings::{
    BuildSettings, BuilderKind, ExtraStep, Pin, PipelineKind, RegistrySecrets, RetaggerKind,
    WorkflowSettings, default_pins,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::environment::{self, BranchPattern, Environment, Latest, TagSelector};
use crate::error::Error;
use crate::registry::client::Repository;
use crate::tags::{Placeholder, TagFormat};

/// The `gitops` table, as written in either manifest table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    pub registry: Option<String>,
    pub image: Option<String>,
    pub environments: Option<Vec<RawEnvironment>>,
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
    pub templates: Option<PathBuf>,
    pub actions: Option<BTreeMap<String, Pin>>,
    pub workflow_steps: Option<Vec<ExtraStep>>,
    pub id_token: Option<bool>,
    pub runs_on: Option<String>,
    pub install_path: Option<String>,
    pub registry_secrets: Option<RegistrySecrets>,
    pub ci: Option<Vec<PipelineKind>>,
    pub gitlab: Option<RawGitlab>,
}

impl RawConfig {
    /// Key by key, this table's value, else `fallback`'s (a package's table over the workspace's).
    fn or(self, fallback: RawConfig) -> RawConfig {
        RawConfig {
            registry: self.registry.or(fallback.registry),
            image: self.image.or(fallback.image),
            environments: self.environments.or(fallback.environments),
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
            templates: self.templates.or(fallback.templates),
            actions: self.actions.or(fallback.actions),
            workflow_steps: self.workflow_steps.or(fallback.workflow_steps),
            id_token: self.id_token.or(fallback.id_token),
            runs_on: self.runs_on.or(fallback.runs_on),
            install_path: self.install_path.or(fallback.install_path),
            registry_secrets: self.registry_secrets.or(fallback.registry_secrets),
            ci: self.ci.or(fallback.ci),
            gitlab: self.gitlab.or(fallback.gitlab),
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
struct Manifest {
    package: Option<ManifestPackage>,
    workspace: Option<ManifestWorkspace>,
}

#[derive(Deserialize)]
struct ManifestPackage {
    name: String,
    metadata: Option<ManifestMetadata>,
}

#[derive(Deserialize)]
struct ManifestWorkspace {
    #[serde(default)]
    members: Vec<String>,
    metadata: Option<ManifestMetadata>,
}

#[derive(Deserialize)]
struct ManifestMetadata {
    gitops: Option<RawConfig>,
}

/// The configuration in force, after defaults, merging and checks.
#[derive(Debug, Clone)]
pub struct Config {
    /// The manifest the settings came from; `None` when defaults apply (no `Cargo.toml`).
    pub manifest: Option<PathBuf>,
    /// The package whose image this is, when one was chosen.
    pub package: Option<String>,
    pub registry: Option<String>,
    /// Image repository name, without registry (`gitops-demo-app`).
    pub image_name: Option<String>,
    pub environments: Vec<Environment>,
    /// The workspace root (the manifest's folder), or the current folder without a manifest;
    /// relative paths in the configuration start here.
    pub root_dir: PathBuf,
    /// The chosen package's folder, where its Dockerfile is looked for first.
    pub package_dir: Option<PathBuf>,
    pub build: BuildSettings,
    pub workflows: WorkflowSettings,
}

impl Config {
    /// The defaults alone, as in a repository without a `Cargo.toml`.
    pub fn defaults() -> Config {
        Config {
            manifest: None,
            package: None,
            registry: None,
            image_name: None,
            environments: environment::defaults(),
            root_dir: PathBuf::from("."),
            package_dir: None,
            build: BuildSettings::default(),
            workflows: WorkflowSettings {
                pins: default_pins(),
                pipelines: vec![PipelineKind::Github],
                ..WorkflowSettings::default()
            },
        }
    }

    /// The Dockerfile: as configured, else the package's own, else the one at the root.
    pub fn dockerfile(&self) -> PathBuf {
        if let Some(path) = &self.build.dockerfile {
            return self.root_dir.join(path);
        }
        self.package_dir
            .iter()
            .map(|dir| dir.join("Dockerfile"))
            .find(|path| path.is_file())
            .unwrap_or_else(|| self.root_dir.join("Dockerfile"))
    }

    /// The build context: as configured, else the workspace root (so a member's Dockerfile
    /// can use the shared `Cargo.lock`).
    pub fn context(&self) -> PathBuf {
        match &self.build.context {
            Some(path) => self.root_dir.join(path),
            None => self.root_dir.clone(),
        }
    }

    /// The full image reference without tag (`ghcr.io/au2001/gitops-demo-app`), lowercase as
    /// registries require; an environment may name a repository of its own.
    pub fn image_for(&self, environment: Option<&Environment>) -> Option<String> {
        let name = environment
            .and_then(|env| env.image.as_deref())
            .or(self.image_name.as_deref())?;
        let reference = match &self.registry {
            Some(registry) => format!("{}/{}", registry.trim_end_matches('/'), name),
            None => name.to_owned(),
        };
        Some(reference.to_lowercase())
    }
}

/// Finds and reads the configuration. `manifest_path` is `--manifest-path`; otherwise the
/// nearest `Cargo.toml` above `cwd` is used, and its workspace root if it belongs to one.
pub fn load(
    manifest_path: Option<&Path>,
    package: Option<&str>,
    cwd: &Path,
) -> Result<Config, Error> {
    let start = match manifest_path {
        Some(path) => {
            if !path.is_file() {
                return Err(Error::usage(format!(
                    "manifest `{}` does not exist; check --manifest-path",
                    path.display()
                )));
            }
            Some(path.to_path_buf())
        }
        None => find_upwards(cwd),
    };
    let Some(start) = start else {
        if let Some(package) = package {
            return Err(Error::usage(format!(
                "package `{package}` not found: there is no Cargo.toml here or above; drop -p to use the defaults"
            )));
        }
        return Ok(Config {
            root_dir: cwd.to_path_buf(),
            ..Config::defaults()
        });
    };

    let start_manifest = read_manifest(&start)?;
    let (root_path, root) = if start_manifest.workspace.is_some() {
        (start.clone(), start_manifest)
    } else {
        match find_workspace_root(&start)? {
            Some((path, manifest)) => (path, manifest),
            None => (start.clone(), start_manifest),
        }
    };

    let root_dir = root_path.parent().unwrap_or(Path::new("."));
    let mut packages = Vec::new();
    if let Some(package) = &root.package {
        packages.push((
            package.name.clone(),
            root_path.clone(),
            package.metadata.as_ref().and_then(|m| m.gitops.clone()),
        ));
    }
    if let Some(workspace) = &root.workspace {
        for member_path in expand_members(root_dir, &workspace.members) {
            let manifest = read_manifest(&member_path)?;
            if let Some(package) = manifest.package {
                packages.push((
                    package.name,
                    member_path,
                    package.metadata.and_then(|m| m.gitops),
                ));
            }
        }
    }

    let chosen = match package {
        Some(name) => Some(packages.iter().find(|(n, _, _)| n == name).ok_or_else(|| {
            let known: Vec<&str> = packages.iter().map(|(n, _, _)| n.as_str()).collect();
            Error::usage(format!(
                "package `{name}` is not in the workspace at {}; known packages: {}",
                root_path.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?),
        None => {
            let shipping: Vec<_> = packages
                .iter()
                .filter(|(_, _, cfg)| cfg.is_some())
                .collect();
            let here = shipping.iter().find(|(_, path, _)| {
                path.parent()
                    .is_some_and(|dir| cwd.starts_with(dir) && dir != root_dir)
            });
            match (here, shipping.as_slice()) {
                (Some(found), _) => Some(*found),
                (None, [only]) => Some(*only),
                (None, []) => root
                    .package
                    .as_ref()
                    .and_then(|p| packages.iter().find(|(n, _, _)| *n == p.name)),
                (None, many) => {
                    let names: Vec<&str> = many.iter().map(|(n, _, _)| n.as_str()).collect();
                    return Err(Error::usage(format!(
                        "several packages ship images ({}); choose one with -p",
                        names.join(", ")
                    )));
                }
            }
        }
    };

    let workspace_raw = root
        .workspace
        .as_ref()
        .and_then(|w| w.metadata.as_ref())
        .and_then(|m| m.gitops.clone())
        .unwrap_or_default();
    let (merged, env_source) =
        match chosen.and_then(|(_, path, cfg)| cfg.as_ref().map(|c| (path, c))) {
            Some((package_path, package_raw)) => {
                let env_source = if package_raw.environments.is_some() {
                    (package_path.clone(), "package.metadata.gitops")
                } else {
                    (root_path.clone(), "workspace.metadata.gitops")
                };
                (package_raw.clone().or(workspace_raw), env_source)
            }
            None => (
                workspace_raw,
                (root_path.clone(), "workspace.metadata.gitops"),
            ),
        };

    let environments = match &merged.environments {
        Some(raw) => build_environments(raw, &env_source.0, env_source.1)?,
        None => environment::defaults(),
    };
    let package_name = chosen.map(|(name, _, _)| name.clone());
    let config = Config {
        root_dir: root_dir.to_path_buf(),
        package_dir: chosen.and_then(|(_, path, _)| path.parent().map(Path::to_path_buf)),
        manifest: Some(root_path.clone()),
        // The package's name stands in for `image` only once a registry says where it goes.
        image_name: merged
            .image
            .or_else(|| merged.registry.as_ref().and(package_name.clone())),
        package: package_name,
        registry: merged.registry,
        environments,
        build: BuildSettings {
            dockerfile: merged.dockerfile,
            context: merged.context,
            platforms: merged.platforms.unwrap_or_default(),
            builder: merged.builder,
            retagger: merged.retagger,
            buildx_builder: merged.buildx_builder,
            cache_from: merged.cache_from.unwrap_or_default(),
            cache_to: merged.cache_to.unwrap_or_default(),
            insecure_registries: merged.insecure_registries.unwrap_or_default(),
            bin: merged.bin,
            base: merged.base,
            exposed_ports: merged.exposed_ports.unwrap_or_default(),
            image_env: merged.image_env.unwrap_or_default(),
        },
        workflows: WorkflowSettings {
            templates: merged.templates,
            pins: {
                let mut pins = default_pins();
                for (action, pin) in merged.actions.unwrap_or_default() {
                    if !(pin.sha.len() == 40 && pin.sha.bytes().all(|b| b.is_ascii_hexdigit())) {
                        return Err(Error::Config {
                            file: root_path.clone(),
                            line: None,
                            key: format!("workspace.metadata.gitops.actions.\"{action}\".sha"),
                            message: format!(
                                "`{}` is not a full 40-hex commit sha; pin actions to commits, not tags",
                                pin.sha
                            ),
                        });
                    }
                    pins.insert(action, pin);
                }
                pins
            },
            extra_steps: merged.workflow_steps.unwrap_or_default(),
            id_token: merged.id_token.unwrap_or(false),
            runs_on: merged.runs_on,
            install_path: merged.install_path,
            gitlab: gitlab::settings(merged.gitlab, &root_path)?,
            pipelines: merged.ci.unwrap_or_else(|| vec![PipelineKind::Github]),
            registry_secrets: merged.registry_secrets,
        },
    };
    check_image_names(&config, &root_path)?;
    Ok(config)
}

/// Registry and image names must make image references: no scheme, no credentials (they
/// would be printed), no spaces. Checked here so the error names the key and the file.
fn check_image_names(config: &Config, file: &Path) -> Result<(), Error> {
    let bad = |key: &str, message: String| Error::Config {
        file: file.to_path_buf(),
        line: None,
        key: format!("workspace.metadata.gitops.{key}"),
        message,
    };
    if let Some(registry) = &config.registry
        && (registry.is_empty() || registry.contains("://") || registry.contains('@'))
    {
        return Err(bad(
            "registry",
            "write the registry as HOST[:PORT][/NAMESPACE], without a scheme or credentials (logins come from docker login or --registry-user)".to_owned(),
        ));
    }
    let mut images = vec![("image", config.image_for(None))];
    for env in &config.environments {
        if env.image.is_some() {
            images.push(("environments.image", config.image_for(Some(env))));
        }
    }
    for (key, image) in images {
        if let Some(image) = image {
            Repository::parse(&image).map_err(|e| bad(key, e.to_string()))?;
        }
    }
    Ok(())
}

fn find_upwards(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|path| path.is_file())
}

fn find_workspace_root(member: &Path) -> Result<Option<(PathBuf, Manifest)>, Error> {
    let Some(dir) = member.parent().and_then(Path::parent) else {
        return Ok(None);
    };
    for candidate in dir
        .ancestors()
        .map(|d| d.join("Cargo.toml"))
        .filter(|p| p.is_file())
    {
        let manifest = read_manifest(&candidate)?;
        if manifest.workspace.is_some() {
            return Ok(Some((candidate, manifest)));
        }
    }
    Ok(None)
}

fn expand_members(root_dir: &Path, members: &[String]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for member in members {
        let pattern = root_dir.join(member).join("Cargo.toml");
        match glob::glob(&pattern.to_string_lossy()) {
            Ok(found) => paths.extend(found.flatten()),
            Err(_) => paths.push(pattern),
        }
    }
    paths.retain(|p| p.is_file());
    paths
}

fn read_manifest(path: &Path) -> Result<Manifest, Error> {
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

fn config_error(path: &Path, text: &str, key: &str, err: &toml::de::Error) -> Error {
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

fn build_environments(
    raw: &[RawEnvironment],
    file: &Path,
    table: &str,
) -> Result<Vec<Environment>, Error> {
    let defaults = environment::defaults();
    let mut built: Vec<Environment> = Vec::with_capacity(raw.len());
    for (index, raw_env) in raw.iter().enumerate() {
        let key = |field: &str| format!("{table}.environments[{index}].{field}");
        let bad = |field: &str, message: String| Error::Config {
            file: file.to_path_buf(),
            line: None,
            key: key(field),
            message,
        };
        let name = raw_env.name.as_str();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                "name",
                format!(
                    "`{name}` is not a valid environment name; use letters, digits, `-` and `_`"
                ),
            ));
        }
        if built.iter().any(|e| e.name == name) {
            return Err(bad(
                "name",
                format!("environment `{name}` is listed twice; names must be unique"),
            ));
        }
        let inherited = defaults.iter().find(|d| d.name == name);

        let branches = match &raw_env.branches {
            Some(patterns) => patterns
                .iter()
                .map(|p| {
                    BranchPattern::new(p).map_err(|e| {
                        bad(
                            "branches",
                            format!("`{p}` is not a valid branch pattern: {e}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => inherited.map(|d| d.branches.clone()).unwrap_or_default(),
        };
        let tags = match &raw_env.tags {
            Some(RawTags {
                semver: Some(_),
                regex: Some(_),
            })
            | Some(RawTags {
                semver: None,
                regex: None,
            }) => {
                return Err(bad(
                    "tags",
                    "give exactly one of `semver` (\"stable\" or a channel name) and `regex`"
                        .to_owned(),
                ));
            }
            Some(RawTags {
                semver: Some(track),
                ..
            }) => Some(if track == "stable" {
                TagSelector::SemverStable
            } else if !track.is_empty() && track.chars().all(|c| c.is_ascii_alphanumeric()) {
                TagSelector::SemverChannel(track.clone())
            } else {
                return Err(bad(
                    "tags.semver",
                    format!(
                        "`{track}` is neither \"stable\" nor a channel name (letters and digits, e.g. \"alpha\")"
                    ),
                ));
            }),
            Some(RawTags {
                regex: Some(expr), ..
            }) => Some(TagSelector::Regex(
                regex::Regex::new(&format!("^(?:{expr})$")).map_err(|e| {
                    bad(
                        "tags.regex",
                        format!(
                            "`{expr}` is not a valid regular expression: {}",
                            last_line(&e.to_string())
                        ),
                    )
                })?,
            )),
            None => inherited.and_then(|d| d.tags.clone()),
        };
        if branches.is_empty() && tags.is_none() {
            return Err(bad(
                "branches",
                format!("environment `{name}` tracks no refs; give `branches` or `tags`"),
            ));
        }
        let format: TagFormat = match &raw_env.format {
            Some(text) => text
                .parse()
                .map_err(|e| bad("format", format!("`{text}`: {e}")))?,
            None => inherited.map(|d| d.format.clone()).ok_or_else(|| {
                bad(
                    "format",
                    format!(
                        "environment `{name}` needs a `format`, e.g. \"{}-{{sha}}-{{timestamp}}\"",
                        name
                    ),
                )
            })?,
        };
        let latest = match &raw_env.latest {
            Some(RawLatest::Enabled(false)) => Latest::Off,
            Some(RawLatest::Enabled(true)) => Latest::FromFormat,
            Some(RawLatest::Format(text)) => {
                let latest: TagFormat = text
                    .parse()
                    .map_err(|e| bad("latest", format!("`{text}`: {e}")))?;
                if let Some(p) = latest.placeholders().find(|p| {
                    matches!(
                        p,
                        Placeholder::Sha
                            | Placeholder::Sha40
                            | Placeholder::Timestamp
                            | Placeholder::Version
                    )
                }) {
                    return Err(bad(
                        "latest",
                        format!(
                            "`{text}` uses {{{}}}, which changes with each deploy; a latest tag must not",
                            p.name()
                        ),
                    ));
                }
                Latest::Format(latest)
            }
            None => inherited.map_or(Latest::FromFormat, |d| d.latest.clone()),
        };
        let build_args = raw_env.build_args.clone().unwrap_or_default();
        if let Some(bad_key) = build_args.keys().find(|k| k.is_empty() || k.contains('=')) {
            return Err(bad(
                "build-args",
                format!("`{bad_key}` is not a valid build argument name"),
            ));
        }
        let environment = Environment {
            name: name.to_owned(),
            branches,
            tags,
            format,
            latest,
            build_args,
            image: raw_env.image.clone(),
        };
        environment
            .check_format()
            .map_err(|message| bad("format", message))?;
        built.push(environment);
    }
    if built.is_empty() {
        return Err(Error::Config {
            file: file.to_path_buf(),
            line: None,
            key: format!("{table}.environments"),
            message: "no environments are configured; remove the key to use the defaults"
                .to_owned(),
        });
    }
    Ok(built)
}

/// The last non-empty line of a multi-line message (the regex crate puts the reason there),
/// so errors stay on one line.
fn last_line(text: &str) -> &str {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim();
    line.strip_prefix("error: ").unwrap_or(line)
}
