//! Configuration: finding it (`gitops.toml`, or `[workspace.metadata.gitops]` and
//! `[package.metadata.gitops]` in `Cargo.toml`), choosing the package or image, merging the
//! tables and checking every value. It reads the TOML directly (no `cargo metadata` run) so that
//! `cargo gitops env` stays within a few milliseconds, and so that errors give the file, the line
//! and the key. Running builds or writing workflows is not this module's job.

mod cargo;
mod collisions;
mod deploy;
mod environments;
mod gitlab;
mod raw;
mod reference;
mod settings;

pub use deploy::{
    DeployMode, DeploySettings, DeployTarget, ENVIRONMENT_PLACEHOLDER, ForgeKind, HelmValues,
    RawDeploy, is_branch_name, is_relative_path,
};
pub use gitlab::{DEFAULT_DIND, DEFAULT_IMAGE, GitlabSettings, RawGitlab, is_variable_name};
pub use settings::{
    BuildSettings, BuilderKind, DEFAULT_SIGNING_KEY_ENV, ExtraStep, Include, InstallMode,
    InstallSettings, Pin, PipelineKind, RegistryLogin, RegistrySecrets, RetaggerKind, SignMode,
    WorkflowSettings, default_pins,
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
    /// An `[workspace.metadata.gitops.images.NAME]` table of `Cargo.toml`: an image of the
    /// workspace's repository that no Cargo package builds (a Node service, say).
    CargoImage,
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
    /// Where the settings came from, for generated files' headers: `gitops.toml`,
    /// `[workspace.metadata.gitops] in Cargo.toml`, ….
    pub described_source: String,
    pub registry: Option<String>,
    /// Image repository name, without registry (`gitops-demo-app`).
    pub image_name: Option<String>,
    pub environments: Vec<Environment>,
    /// No `environments` are configured: the methodology's apply, and staging follows the
    /// repository's default branch (see [`Config::follow_default_branch`]).
    pub default_environments: bool,
    /// The workspace root (the manifest's folder), or the current folder without a manifest;
    /// relative paths in the configuration start here.
    pub root_dir: PathBuf,
    /// The chosen package's folder, where its Dockerfile is looked for first.
    pub package_dir: Option<PathBuf>,
    pub build: BuildSettings,
    pub workflows: WorkflowSettings,
    /// `timeout`: the whole run's deadline, when configured (`--timeout` wins).
    pub timeout: Option<std::time::Duration>,
    /// The `deploy` table, when there is one: where `cargo gitops deploy` writes the images.
    pub deploy: Option<DeploySettings>,
    /// The promotion gates of each environment that has any, by environment name.
    pub gates: std::collections::BTreeMap<String, Gates>,
}

impl Config {
    /// The name of the service this configuration ships, as reports and `-p` name it: the
    /// package (or image table), else the image, else `image`.
    pub fn service_name(&self) -> String {
        self.package
            .clone()
            .or_else(|| self.image_name.clone())
            .unwrap_or_else(|| "image".to_owned())
    }

    /// The defaults alone, as in a repository without a `Cargo.toml`.
    pub fn defaults() -> Config {
        Config {
            manifest: None,
            source: SourceKind::Defaults,
            package: None,
            images: Vec::new(),
            warnings: Vec::new(),
            described_source: "the default configuration (no gitops.toml or Cargo.toml table)"
                .to_owned(),
            registry: None,
            image_name: None,
            environments: environment::defaults(),
            default_environments: true,
            root_dir: PathBuf::from("."),
            package_dir: None,
            build: BuildSettings {
                registry_cache: true,
                ..BuildSettings::default()
            },
            workflows: WorkflowSettings {
                pins: default_pins(),
                pipelines: vec![PipelineKind::Github],
                ..WorkflowSettings::default()
            },
            timeout: None,
            deploy: None,
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

    /// The default environments' staging tracks `main`; in a repository whose default branch is
    /// another (`master`, `trunk`), it tracks that one instead: the CI's word for it first
    /// (`from_ci`), else `origin/HEAD`. When neither names one and the repository has no
    /// `main`, a warning says staging follows a branch that does not exist.
    pub fn follow_default_branch(&mut self, from_ci: Option<&str>, cwd: &Path) {
        if !self.default_environments {
            return;
        }
        let branch = from_ci
            .map(str::to_owned)
            .or_else(|| crate::git::default_branch(cwd));
        let Some(branch) = branch else {
            if crate::git::has_branch(cwd, "main") == Some(false) {
                self.warnings.push(
                    "staging follows `main`, which this repository does not have, and origin/HEAD names no default branch; run `git remote set-head origin --auto`, or configure environments with your default branch".to_owned(),
                );
            }
            return;
        };
        let Ok(pattern) = environment::BranchPattern::new(&branch) else {
            self.warnings.push(format!(
                "the default branch `{}` cannot be a branch pattern, so staging follows `main`; configure environments with it",
                branch.escape_debug()
            ));
            return;
        };
        if branch == "main" || pattern.has_wildcard() {
            return;
        }
        for env in &mut self.environments {
            if env.branches.len() == 1 && env.branches[0].as_str() == "main" {
                env.branches = vec![pattern.clone()];
            }
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
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| GITOPS_FILE.to_owned());
    config.described_source = match &name {
        Some(name) => format!("[images.{name}] in {file_name}"),
        None => file_name,
    };
    config.source = SourceKind::GitopsFile;
    config.package = name;
    config.images = names;
    config.root_dir = root_dir;
    Ok(config)
}

/// The checked configuration from merged raw keys: what both sources share.
fn resolve(
    merged: RawConfig,
    mut environments: Vec<Environment>,
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
    let excluded = match &merged.exclude_branches {
        None => environment::default_excluded_branches(),
        Some(patterns) => patterns
            .iter()
            .map(|p| {
                environment::BranchPattern::new(p)
                    .map_err(|message| bad_key(file, &key("exclude-branches"), &message))
            })
            .collect::<Result<_, _>>()?,
    };
    for env in &mut environments {
        env.exclude_branches = if env.branches.iter().any(|b| b.has_wildcard()) {
            excluded.clone()
        } else {
            Vec::new()
        };
    }
    let gates = environment_gates(&merged, &environments, file, &key)?;
    if merged.images.is_some() {
        return Err(bad_key(
            file,
            &key("images"),
            "`images` tables belong in gitops.toml or in [workspace.metadata.gitops]; a package ships its own image from [package.metadata.gitops]",
        ));
    }
    check_native_keys(&merged, file, &key)?;
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
    check_paths(merged.paths.as_deref().unwrap_or_default(), file, &key)?;
    let timeout = match &merged.timeout {
        Some(text) => Some(
            crate::deadline::parse(text)
                .map_err(|message| bad_key(file, &key("timeout"), &message))?,
        ),
        None => None,
    };
    let deploy = deploy::settings(merged.deploy, &environments, file, &key)?;
    let config = Config {
        timeout,
        manifest: Some(file.to_path_buf()),
        source: SourceKind::Cargo,
        package: None,
        images: Vec::new(),
        warnings: Vec::new(),
        // Each loader says where the settings came from.
        described_source: String::new(),
        registry: merged.registry,
        image_name: merged.image,
        default_environments: merged.environments.is_none(),
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
            registry_cache: merged.cache_from.is_none() && merged.cache_to.is_none(),
            cache_from: merged.cache_from.unwrap_or_default(),
            cache_to: merged.cache_to.unwrap_or_default(),
            insecure_registries: merged.insecure_registries.unwrap_or_default(),
            bin: merged.bin,
            base: merged.base,
            exposed_ports: merged.exposed_ports.unwrap_or_default(),
            image_env: merged.image_env.unwrap_or_default(),
            build_env: merged.build_env.unwrap_or_default(),
            include: merged.include.unwrap_or_default(),
            workdir: merged.workdir,
            args: merged.args.unwrap_or_default(),
            sign: merged.sign.unwrap_or_default(),
            signing_key_env,
            sbom: merged.sbom,
            provenance: merged.provenance,
            paths: merged.paths.unwrap_or_default(),
        },
        workflows: WorkflowSettings {
            templates: merged.templates,
            pins,
            extra_steps: merged.workflow_steps.unwrap_or_default(),
            id_token: merged.id_token.unwrap_or(false),
            github_attestation: merged.github_attestation.unwrap_or(false),
            runs_on: merged.runs_on,
            needs_workflows: merged.needs_workflows.unwrap_or_default(),
            install_path: merged.install_path,
            registry_secrets: merged.registry_secrets,
            registry_logins: merged.registry_logins.unwrap_or_default(),
            install: merged.install.unwrap_or_default(),
            gitlab: gitlab::settings(merged.gitlab, file, &key)?,
            pipelines: merged.ci.unwrap_or_else(|| vec![PipelineKind::Github]),
        },
        deploy,
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

/// `paths`: globs inside the repository (relative, no `..`), each one that compiles.
fn check_paths(paths: &[String], file: &Path, key: &dyn Fn(&str) -> String) -> Result<(), Error> {
    for (index, pattern) in paths.iter().enumerate() {
        let why = if pattern.is_empty() {
            Some("is empty".to_owned())
        } else if pattern.starts_with('/') || pattern.split('/').any(|part| part == "..") {
            Some("leaves the repository; give a glob relative to the configuration's folder, without `..`".to_owned())
        } else {
            globset::Glob::new(pattern)
                .err()
                .map(|e| format!("is not a glob ({})", e.kind()))
        };
        if let Some(why) = why {
            return Err(bad_key(
                file,
                &key(&format!("paths[{index}]")),
                &format!("`{}` {why}", pattern.escape_debug()),
            ));
        }
    }
    Ok(())
}

/// The native build's drop-in keys: names of variables, absolute paths in the image, and
/// paths of the repository that stay inside it.
fn check_native_keys(
    merged: &RawConfig,
    file: &Path,
    key: &dyn Fn(&str) -> String,
) -> Result<(), Error> {
    for name in merged.build_env.iter().flat_map(|env| env.keys()) {
        if !is_variable_name(name) {
            return Err(bad_key(
                file,
                &key("build-env"),
                &format!(
                    "`{}` is not an environment variable name (letters, digits and _, not starting with a digit)",
                    name.escape_debug()
                ),
            ));
        }
    }
    let absolute = |path: &str| {
        path.starts_with('/')
            && !path.split('/').any(|part| part == ".." || part == ".")
            && !path.contains(|c: char| c.is_control())
    };
    if let Some(workdir) = &merged.workdir
        && !absolute(workdir)
    {
        return Err(bad_key(
            file,
            &key("workdir"),
            &format!(
                "`{}` is not an absolute path in the image such as /app",
                workdir.escape_debug()
            ),
        ));
    }
    for (index, include) in merged.include.iter().flatten().enumerate() {
        let inside = include.from.is_relative()
            && include.from.components().all(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            });
        if !inside {
            return Err(bad_key(
                file,
                &key(&format!("include[{index}].from")),
                &format!(
                    "`{}` is not a path inside the repository (relative, without ..)",
                    include.from.display()
                ),
            ));
        }
        if !absolute(&include.to) || include.to == "/" {
            return Err(bad_key(
                file,
                &key(&format!("include[{index}].to")),
                &format!(
                    "`{}` is not an absolute path in the image such as /app/configuration",
                    include.to.escape_debug()
                ),
            ));
        }
    }
    Ok(())
}

fn bad_key(file: &Path, key: &str, message: &str) -> Error {
    Error::Config {
        file: file.to_path_buf(),
        line: None,
        key: key.to_owned(),
        message: message.to_owned(),
    }
}
