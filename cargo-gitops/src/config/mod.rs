//! Configuration: finding it (`gitops.toml`, or `[workspace.metadata.gitops]` and
//! `[package.metadata.gitops]` in `Cargo.toml`), choosing the package or image, merging the
//! tables and checking every value. It reads the TOML directly (no `cargo metadata` run) so that
//! `cargo gitops env` stays within a few milliseconds, and so that errors give the file, the line
//! and the key. Running builds or writing workflows is not this module's job.

mod cargo;
mod collisions;
mod environments;
mod gitlab;
mod raw;
mod reference;
mod settings;

pub use gitlab::{DEFAULT_DIND, DEFAULT_IMAGE, GitlabSettings, RawGitlab, is_variable_name};
pub use settings::{
    BuildSettings, BuilderKind, DEFAULT_SIGNING_KEY_ENV, ExtraStep, InstallMode, InstallSettings,
    Pin, PipelineKind, RegistryLogin, RegistrySecrets, RetaggerKind, SignMode, WorkflowSettings,
    default_pins,
};

use std::path::{Path, PathBuf};

use crate::environment::{self, Environment};
use crate::error::Error;
use crate::gates::spec::{self as gate_spec, Gates};
use raw::RawConfig;

/// The configuration file of a repository that is not (only) Rust.
pub const GITOPS_FILE: &str = "gitops.toml";

/// What the configuration was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Nothing configures the repository: the methodology's defaults.
    Defaults,
    /// `Cargo.toml` metadata tables.
    Cargo,
    /// `gitops.toml`.
    GitopsFile,
}

/// Where to look for the configuration, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// `--config`: a `gitops.toml` to read.
    pub config_path: Option<&'a Path>,
    /// `--manifest-path`: a `Cargo.toml` to read.
    pub manifest_path: Option<&'a Path>,
    /// `-p`: the package, or in `gitops.toml` the image, to act for.
    pub package: Option<&'a str>,
    /// Where the search for a configuration starts.
    pub cwd: &'a Path,
}

impl<'a> Source<'a> {
    /// Search from `cwd` for whatever configures the repository.
    pub fn search(cwd: &'a Path) -> Source<'a> {
        Source {
            config_path: None,
            manifest_path: None,
            package: None,
            cwd,
        }
    }
}

/// The configuration in force, after defaults, merging and checks.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the settings came from (`Cargo.toml` or `gitops.toml`); `None` when the
    /// defaults apply.
    pub manifest: Option<PathBuf>,
    /// Whether that file is a Cargo manifest (a Rust package can be built natively) or
    /// `gitops.toml`.
    pub source: SourceKind,
    /// The package (in `gitops.toml`, the named image) whose image this is, when one was chosen.
    pub package: Option<String>,
    /// Everything that ships an image in this repository, by package or image name, for the
    /// commands that cover them all (`init-workflows`, `flux`).
    pub images: Vec<String>,
    /// Things worth saying that are not errors (a misspelled table name).
    pub warnings: Vec<String>,
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
    /// The promotion gates of each environment that has any, by environment name.
    pub gates: std::collections::BTreeMap<String, Gates>,
}

impl Config {
    /// The defaults alone, as in a repository without a `Cargo.toml`.
    pub fn defaults() -> Config {
        Config {
            manifest: None,
            source: SourceKind::Defaults,
            package: None,
            images: Vec::new(),
            warnings: Vec::new(),
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
            gates: Default::default(),
        }
    }

    /// The promotion gates of environment `name`: none unless configured (or defaulted).
    pub fn gates_of(&self, name: &str) -> Gates {
        self.gates.get(name).cloned().unwrap_or_default()
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

    /// The full image reference without tag (`ghcr.io/au2001/gitops-demo-app`); an
    /// environment may name a repository of its own. Configured names are checked to be
    /// lowercase at load; only a package name standing in for `image` is lowercased.
    pub fn image_for(&self, environment: Option<&Environment>) -> Option<String> {
        let name = environment
            .and_then(|env| env.image.as_deref())
            .or(self.image_name.as_deref())?;
        let reference = match &self.registry {
            Some(registry) => format!("{}/{}", registry.trim_end_matches('/'), name),
            None => name.to_owned(),
        };
        Some(reference)
    }
}

/// The file that configures the repository, once found.
enum Located {
    GitopsFile(PathBuf),
    Cargo(PathBuf),
    Nothing,
}

/// Finds and reads the configuration. `--config` names a `gitops.toml`, `--manifest-path` a
/// `Cargo.toml`; otherwise the nearest `gitops.toml` above the current folder wins, else the
/// nearest `Cargo.toml` (and its workspace root). A repository configured in both places is an
/// error: one of them would be silently ignored.
pub fn load(source: &Source<'_>) -> Result<Config, Error> {
    match locate(source)? {
        Located::GitopsFile(path) => load_gitops_file(&path, source.package),
        Located::Cargo(path) => cargo::load(&path, source.package, source.cwd),
        Located::Nothing => {
            if let Some(package) = source.package {
                return Err(Error::usage(format!(
                    "package `{package}` not found: there is no {GITOPS_FILE} or Cargo.toml here or above; drop -p to use the defaults"
                )));
            }
            Ok(Config {
                root_dir: source.cwd.to_path_buf(),
                ..Config::defaults()
            })
        }
    }
}

/// The configuration of every image the repository ships (each package, or each
/// `[images.NAME]`), for the commands that cover them all; with `-p`, only that one.
pub fn load_each(source: &Source<'_>) -> Result<Vec<Config>, Error> {
    if source.package.is_some() {
        return Ok(vec![load(source)?]);
    }
    let names = match locate(source)? {
        Located::GitopsFile(path) => {
            let raw: RawConfig = raw::read_toml(&path)?;
            raw.images.unwrap_or_default().into_keys().collect()
        }
        Located::Cargo(path) => cargo::shipping(&path)?,
        Located::Nothing => Vec::new(),
    };
    if names.len() < 2 {
        return Ok(vec![load(source)?]);
    }
    names
        .iter()
        .map(|name| {
            load(&Source {
                package: Some(name),
                ..*source
            })
        })
        .collect()
}

fn locate(source: &Source<'_>) -> Result<Located, Error> {
    match (source.config_path, source.manifest_path) {
        (Some(_), Some(_)) => Err(Error::usage(
            "give --config (a gitops.toml) or --manifest-path (a Cargo.toml), not both",
        )),
        (Some(path), None) if !path.is_file() => Err(Error::usage(format!(
            "`{}` does not exist; check --config",
            path.display()
        ))),
        (Some(path), None) => Ok(Located::GitopsFile(path.to_path_buf())),
        (None, Some(path)) if !path.is_file() => Err(Error::usage(format!(
            "manifest `{}` does not exist; check --manifest-path",
            path.display()
        ))),
        (None, Some(path)) => Ok(Located::Cargo(path.to_path_buf())),
        (None, None) => search(source.cwd),
    }
}

fn search(cwd: &Path) -> Result<Located, Error> {
    let gitops_file = cwd
        .ancestors()
        .map(|dir| dir.join(GITOPS_FILE))
        .find(|path| path.is_file());
    let manifest = cargo::find_upwards(cwd);
    Ok(match (gitops_file, manifest) {
        (Some(file), Some(manifest)) => {
            let dir = file.parent().unwrap_or(Path::new("."));
            if let Some(root) = cargo::configured_root(&manifest)?
                && root.starts_with(dir)
            {
                return Err(Error::usage(format!(
                    "both {} and {} configure this repository; keep one of them (move the keys into {GITOPS_FILE}, or delete it)",
                    file.display(),
                    root.display()
                )));
            }
            Located::GitopsFile(file)
        }
        (Some(file), None) => Located::GitopsFile(file),
        (None, Some(manifest)) => Located::Cargo(manifest),
        (None, None) => Located::Nothing,
    })
}

/// Reads `gitops.toml`: its top-level keys, and with `[images.NAME]` tables, the chosen image's
/// keys over them.
fn load_gitops_file(path: &Path, image: Option<&str>) -> Result<Config, Error> {
    let mut top: RawConfig = raw::read_toml(path)?;
    let images = top.images.take().unwrap_or_default();
    let misplaced = top
        .own_workflow
        .is_some()
        .then(|| "own-workflow".to_owned());
    if let Some(key) = misplaced.or_else(|| {
        images
            .iter()
            .find(|(_, raw)| raw.own_workflow.is_some())
            .map(|(name, _)| format!("images.{name}.own-workflow"))
    }) {
        return Err(bad_key(
            path,
            &key,
            "it marks a Cargo package built by a workflow of its own; gitops.toml images are all built by the generated pipelines, so remove it",
        ));
    }
    let names: Vec<String> = images.keys().cloned().collect();
    let chosen = match image {
        Some(name) => Some(images.get_key_value(name).ok_or_else(|| {
            Error::usage(format!(
                "image `{name}` is not in {}; its images are: {}",
                path.display(),
                if names.is_empty() {
                    "none (add an [images.NAME] table, or drop -p)".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })?),
        None if images.len() > 1 => {
            return Err(Error::usage(format!(
                "{} ships several images ({}); choose one with -p",
                path.display(),
                names.join(", ")
            )));
        }
        None => images.iter().next(),
    };
    let root_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let (merged, table, name) = match chosen {
        Some((name, raw)) => {
            if raw.images.is_some() {
                return Err(bad_key(
                    path,
                    &format!("images.{name}.images"),
                    "images do not nest; list every image at the top level",
                ));
            }
            let table = if raw.environments.is_some() {
                format!("images.{name}")
            } else {
                String::new()
            };
            let mut merged = raw.clone().or(top);
            // The table's name stands in for `image` once a registry says where it goes.
            if merged.image.is_none() && merged.registry.is_some() {
                merged.image = Some(name.clone());
            }
            (merged, table, Some(name.clone()))
        }
        None => (top, String::new(), None),
    };
    let environments = match &merged.environments {
        Some(raw) => environments::build(raw, path, &table)?,
        None => environment::defaults(),
    };
    let mut config = resolve(merged, environments, path, &table)?;
    config.source = SourceKind::GitopsFile;
    config.package = name;
    config.images = names;
    config.root_dir = root_dir;
    Ok(config)
}

/// The checked configuration from merged raw keys: what both sources share.
fn resolve(
    merged: RawConfig,
    environments: Vec<Environment>,
    file: &Path,
    table: &str,
) -> Result<Config, Error> {
    let key = |name: &str| {
        if table.is_empty() {
            name.to_owned()
        } else {
            format!("{table}.{name}")
        }
    };
    let gates = environment_gates(&merged, &environments, file, &key)?;
    if merged.images.is_some() {
        return Err(bad_key(
            file,
            &key("images"),
            "`images` tables belong in gitops.toml; in Cargo.toml each package ships its image from [package.metadata.gitops]",
        ));
    }
    let mut pins = default_pins();
    for (action, pin) in merged.actions.unwrap_or_default() {
        if !crate::tags::is_sha40(&pin.sha) {
            return Err(bad_key(
                file,
                &key(&format!("actions.\"{action}\".sha")),
                &format!(
                    "`{}` is not a full 40-hex commit sha; pin actions to commits, not tags",
                    pin.sha.escape_debug()
                ),
            ));
        }
        pins.insert(action, pin);
    }
    let signing_key_env = signing_key_env(merged.sign, merged.signing_key_env, file, &key)?;
    let config = Config {
        manifest: Some(file.to_path_buf()),
        source: SourceKind::Cargo,
        package: None,
        images: Vec::new(),
        warnings: Vec::new(),
        registry: merged.registry,
        image_name: merged.image,
        environments,
        root_dir: file.parent().unwrap_or(Path::new(".")).to_path_buf(),
        package_dir: None,
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
            sign: merged.sign.unwrap_or_default(),
            signing_key_env,
            sbom: merged.sbom,
            provenance: merged.provenance,
        },
        workflows: WorkflowSettings {
            templates: merged.templates,
            pins,
            extra_steps: merged.workflow_steps.unwrap_or_default(),
            id_token: merged.id_token.unwrap_or(false),
            github_attestation: merged.github_attestation.unwrap_or(false),
            runs_on: merged.runs_on,
            install_path: merged.install_path,
            registry_secrets: merged.registry_secrets,
            registry_logins: merged.registry_logins.unwrap_or_default(),
            install: merged.install.unwrap_or_default(),
            gitlab: gitlab::settings(merged.gitlab, file)?,
            pipelines: merged.ci.unwrap_or_else(|| vec![PipelineKind::Github]),
        },
        gates,
    };
    reference::check(&config, file, &key)?;
    collisions::check(&config, file, &key)?;
    Ok(config)
}

/// Each environment's gates, checked: as configured, else the defaults (none, but for
/// `production`, which verifies the signature when the tool signs with a key). Only
/// environments with a gate are listed.
fn environment_gates(
    merged: &RawConfig,
    environments: &[Environment],
    file: &Path,
    key: &dyn Fn(&str) -> String,
) -> Result<std::collections::BTreeMap<String, Gates>, Error> {
    let signs_with_key = merged.sign == Some(SignMode::Key);
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    let raw_envs = merged.environments.as_deref().unwrap_or_default();
    let root = file.parent().unwrap_or(Path::new("."));
    let mut all = std::collections::BTreeMap::new();
    for environment in environments {
        let configured = raw_envs
            .iter()
            .position(|raw| raw.name == environment.name)
            .and_then(|index| raw_envs[index].gates.as_ref().map(|g| (index, g)));
        let gates = match configured {
            Some((index, raw)) => {
                gate_spec::check(raw, root, signs_with_key, &names, &environment.name).map_err(
                    |(gate, message)| {
                        bad_key(
                            file,
                            &key(&format!("environments[{index}].gates.{gate}")),
                            &message,
                        )
                    },
                )?
            }
            None if environment.name == "production" && signs_with_key => Gates {
                signature: Some(gate_spec::SignatureKey::SigningKey),
                ..Gates::default()
            },
            None => Gates::default(),
        };
        if !gates.is_empty() {
            all.insert(environment.name.clone(), gates);
        }
    }
    Ok(all)
}

/// `signing-key-env`: a variable name (the workflows pass it through `env:`), and only with
/// `sign = "key"`.
fn signing_key_env(
    sign: Option<SignMode>,
    name: Option<String>,
    file: &Path,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<String>, Error> {
    let Some(name) = name else {
        return Ok(None);
    };
    if !is_variable_name(&name) {
        return Err(bad_key(
            file,
            &key("signing-key-env"),
            &format!(
                "`{}` is not an environment variable name (letters, digits and _, not starting with a digit)",
                name.escape_debug()
            ),
        ));
    }
    if sign != Some(SignMode::Key) {
        return Err(bad_key(
            file,
            &key("signing-key-env"),
            "names where the signing key is, which only `sign = \"key\"` uses; set `sign = \"key\"` or drop it",
        ));
    }
    Ok(Some(name))
}

fn bad_key(file: &Path, key: &str, message: &str) -> Error {
    Error::Config {
        file: file.to_path_buf(),
        line: None,
        key: key.to_owned(),
        message: message.to_owned(),
    }
}
