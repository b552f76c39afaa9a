//! Configuration in `Cargo.toml`: finding the manifest and its workspace root, the packages that
//! ship an image (`[package.metadata.gitops]`) and the images no package builds
//! (`[workspace.metadata.gitops.images.NAME]`, a Dockerfile service of the same repository),
//! choosing one, and merging its table over `[workspace.metadata.gitops]`. Checking the merged
//! keys is `resolve`'s job, in `mod.rs`.

use std::path::{Path, PathBuf};

use super::raw::{self, Manifest, ManifestMetadata, RawConfig};
use super::{Config, SourceKind, environments, resolve};
use crate::environment;
use crate::error::Error;

/// A package of the workspace: its name, manifest and `gitops` table; or an image of the
/// workspace's `images` tables, which no package builds (`image_table`).
struct Package {
    name: String,
    manifest: PathBuf,
    table: Option<RawConfig>,
    image_table: bool,
}

impl Package {
    /// Whether the package ships an image through the generated pipelines: it has a table,
    /// without `own-workflow = true` (such an image is chosen with `-p` only).
    fn in_pipelines(&self) -> bool {
        self.table
            .as_ref()
            .is_some_and(|t| t.own_workflow != Some(true))
    }
}

pub fn find_upwards(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|path| path.is_file())
}

/// The workspace root of `manifest` when it, or one of its packages, has a `gitops` table.
pub fn configured_root(manifest: &Path) -> Result<Option<PathBuf>, Error> {
    let (root_path, root) = workspace_root(manifest)?;
    let root_dir = root_path.parent().unwrap_or(Path::new("."));
    let configured = gitops_of(root.workspace.as_ref().and_then(|w| w.metadata.as_ref())).is_some()
        || packages(&root_path, &root, root_dir)?
            .iter()
            .any(|p| p.table.is_some());
    Ok(configured.then_some(root_path))
}

/// The packages of `start`'s workspace that ship an image through the generated pipelines
/// (have a `gitops` table without `own-workflow = true`).
pub fn shipping(start: &Path) -> Result<Vec<String>, Error> {
    let (root_path, root) = workspace_root(start)?;
    let root_dir = root_path.parent().unwrap_or(Path::new("."));
    Ok(packages(&root_path, &root, root_dir)?
        .into_iter()
        .filter(Package::in_pipelines)
        .map(|p| p.name)
        .collect())
}

/// Reads the configuration of the workspace `start` belongs to, for `package` (or the one
/// package that ships an image, or the one whose folder `cwd` is in).
pub fn load(start: &Path, package: Option<&str>, cwd: &Path) -> Result<Config, Error> {
    let (root_path, root) = workspace_root(start)?;
    let root_dir = root_path.parent().unwrap_or(Path::new("."));
    let packages = packages(&root_path, &root, root_dir)?;
    let chosen = choose(&packages, package, cwd, root_dir, &root_path)?.or_else(|| {
        // A single package without a table of its own still names the image.
        root.package
            .as_ref()
            .and_then(|p| packages.iter().find(|q| q.name == p.name))
    });
    let mut workspace_raw = gitops_of(root.workspace.as_ref().and_then(|w| w.metadata.as_ref()))
        .cloned()
        .unwrap_or_default();
    // Read by `packages`: each image table is one of the images to choose from.
    workspace_raw.images = None;
    let image_table = chosen.is_some_and(|p| p.image_table);
    if workspace_raw.own_workflow.is_some() {
        return Err(super::bad_key(
            &root_path,
            "workspace.metadata.gitops.own-workflow",
            "it belongs in the [package.metadata.gitops] table of the package whose image a workflow of its own builds",
        ));
    }
    // A package's own `registry` and `image` are checked where they are written, so an error
    // names that table's key and file rather than the workspace table merged under them.
    if let Some((package, written)) = chosen
        .filter(|p| !p.image_table)
        .and_then(|p| p.table.as_ref().map(|t| (p, t)))
    {
        let registry = written
            .registry
            .as_deref()
            .or(workspace_raw.registry.as_deref());
        super::reference::check_table(
            written,
            registry,
            &package.manifest,
            "package.metadata.gitops",
        )?;
    }
    let (mut merged, env_file, table) = match chosen.and_then(|p| p.table.as_ref().map(|t| (p, t)))
    {
        Some((_, table)) if image_table => (
            table.clone().or(workspace_raw),
            root_path.clone(),
            "workspace.metadata.gitops",
        ),
        Some((package, table)) if table.environments.is_some() => (
            table.clone().or(workspace_raw),
            package.manifest.clone(),
            "package.metadata.gitops",
        ),
        Some((_, table)) => (
            table.clone().or(workspace_raw),
            root_path.clone(),
            "workspace.metadata.gitops",
        ),
        None => (
            workspace_raw,
            root_path.clone(),
            "workspace.metadata.gitops",
        ),
    };
    let environments = match &merged.environments {
        Some(raw) => environments::build(raw, &env_file, table)?,
        None => environment::defaults(),
    };
    let package_name = chosen.map(|p| p.name.clone());
    // The package's name stands in for `image` once a registry says where it goes; registries
    // take lowercase names only.
    if merged.image.is_none() && merged.registry.is_some() {
        merged.image = package_name.as_ref().map(|n| n.to_lowercase());
    }
    let mut config = resolve(merged, environments, &root_path, table)?;
    config.described_source = describe_source(chosen, &root, root_dir);
    config.source = if image_table {
        SourceKind::CargoImage
    } else {
        SourceKind::Cargo
    };
    config.package = package_name;
    config.package_dir = chosen
        .filter(|p| !p.image_table)
        .and_then(|p| p.manifest.parent().map(Path::to_path_buf));
    config.root_dir = root_dir.to_path_buf();
    config.images = packages
        .iter()
        .filter(|p| p.in_pipelines())
        .map(|p| p.name.clone())
        .collect();
    config.warnings = misspelled_tables(&root, &root_path);
    Ok(config)
}

/// The tables the settings came from, for generated files' headers: the package's own over
/// the workspace's, each with its manifest's path from the workspace root.
fn describe_source(chosen: Option<&Package>, root: &Manifest, root_dir: &Path) -> String {
    let workspace = gitops_of(root.workspace.as_ref().and_then(|w| w.metadata.as_ref()))
        .is_some()
        .then(|| "[workspace.metadata.gitops] in Cargo.toml".to_owned());
    let package = chosen.filter(|p| p.table.is_some()).map(|p| {
        let manifest = p.manifest.strip_prefix(root_dir).unwrap_or(&p.manifest);
        if p.image_table {
            format!(
                "[workspace.metadata.gitops.images.{}] in {}",
                p.name,
                manifest.display()
            )
        } else {
            format!("[package.metadata.gitops] in {}", manifest.display())
        }
    });
    match (package, workspace) {
        (Some(package), Some(workspace)) => format!("{package} over {workspace}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => "the defaults in Cargo.toml (no gitops table)".to_owned(),
    }
}

fn choose<'p>(
    packages: &'p [Package],
    package: Option<&str>,
    cwd: &Path,
    root_dir: &Path,
    root_path: &Path,
) -> Result<Option<&'p Package>, Error> {
    if let Some(name) = package {
        return packages
            .iter()
            .find(|p| p.name == name)
            .map(Some)
            .ok_or_else(|| {
                let known: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
                Error::usage(format!(
                    "package `{name}` is not in the workspace at {}; known packages: {}",
                    root_path.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            });
    }
    let shipping: Vec<&Package> = packages.iter().filter(|p| p.in_pipelines()).collect();
    let here = shipping.iter().find(|p| {
        p.manifest
            .parent()
            .is_some_and(|dir| cwd.starts_with(dir) && dir != root_dir)
    });
    match (here, shipping.as_slice()) {
        (Some(found), _) => Ok(Some(*found)),
        (None, [only]) => Ok(Some(*only)),
        (None, []) => Ok(None),
        (None, many) => {
            let names: Vec<&str> = many.iter().map(|p| p.name.as_str()).collect();
            Err(Error::usage(format!(
                "several packages ship images ({}); choose one with -p",
                names.join(", ")
            )))
        }
    }
}

fn gitops_of(metadata: Option<&ManifestMetadata>) -> Option<&RawConfig> {
    metadata.and_then(|m| m.gitops.as_ref())
}

/// `start` itself when it is a workspace root, else the workspace above it, else `start`.
fn workspace_root(start: &Path) -> Result<(PathBuf, Manifest), Error> {
    let manifest: Manifest = raw::read_toml(start)?;
    if manifest.workspace.is_some() {
        return Ok((start.to_path_buf(), manifest));
    }
    let Some(dir) = start.parent().and_then(Path::parent) else {
        return Ok((start.to_path_buf(), manifest));
    };
    for candidate in dir
        .ancestors()
        .map(|d| d.join("Cargo.toml"))
        .filter(|p| p.is_file())
    {
        let root: Manifest = raw::read_toml(&candidate)?;
        if root.workspace.is_some() {
            return Ok((candidate, root));
        }
    }
    Ok((start.to_path_buf(), manifest))
}

fn packages(root_path: &Path, root: &Manifest, root_dir: &Path) -> Result<Vec<Package>, Error> {
    let mut packages = Vec::new();
    if let Some(package) = &root.package {
        packages.push(Package {
            name: package.name.clone(),
            manifest: root_path.to_path_buf(),
            table: gitops_of(package.metadata.as_ref()).cloned(),
            image_table: false,
        });
    }
    if let Some(workspace) = &root.workspace {
        let root_file = std::fs::canonicalize(root_path).ok();
        for member_path in expand_members(root_dir, &workspace.members) {
            // `members = ["."]` names the root package again: it is one package, not two.
            if root.package.is_some() && std::fs::canonicalize(&member_path).ok() == root_file {
                continue;
            }
            let manifest: Manifest = raw::read_toml(&member_path)?;
            if let Some(package) = manifest.package {
                packages.push(Package {
                    name: package.name,
                    table: gitops_of(package.metadata.as_ref()).cloned(),
                    manifest: member_path,
                    image_table: false,
                });
            }
        }
    }
    let images = gitops_of(root.workspace.as_ref().and_then(|w| w.metadata.as_ref()))
        .and_then(|t| t.images.clone())
        .unwrap_or_default();
    for (name, table) in images {
        let key = format!("workspace.metadata.gitops.images.{name}");
        if packages.iter().any(|p| p.name == name) {
            return Err(super::bad_key(
                root_path,
                &key,
                "is also the name of a package of the workspace; give that package a [package.metadata.gitops] table instead, or name the image otherwise",
            ));
        }
        if table.images.is_some() || table.own_workflow.is_some() {
            return Err(super::bad_key(
                root_path,
                &format!(
                    "{key}.{}",
                    if table.images.is_some() {
                        "images"
                    } else {
                        "own-workflow"
                    }
                ),
                "an image table takes the keys of the workspace table, less `images` and `own-workflow`",
            ));
        }
        packages.push(Package {
            name,
            manifest: root_path.to_path_buf(),
            table: Some(table),
            image_table: true,
        });
    }
    Ok(packages)
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

/// `[workspace.metadata.gitop]` and the like would be ignored without a word: say so.
fn misspelled_tables(root: &Manifest, path: &Path) -> Vec<String> {
    let mut tables = Vec::new();
    if let Some(metadata) = root.workspace.as_ref().and_then(|w| w.metadata.as_ref()) {
        tables.push(("workspace.metadata", metadata));
    }
    if let Some(metadata) = root.package.as_ref().and_then(|p| p.metadata.as_ref()) {
        tables.push(("package.metadata", metadata));
    }
    let mut warnings = Vec::new();
    for (prefix, metadata) in tables {
        for name in metadata.other.keys() {
            if looks_like_gitops(name) {
                warnings.push(format!(
                    "{}: [{prefix}.{name}] is not read; did you mean [{prefix}.gitops]?",
                    path.display()
                ));
            }
        }
    }
    warnings
}

/// Within two edits of `gitops`, ignoring case and separators.
fn looks_like_gitops(name: &str) -> bool {
    let folded: Vec<char> = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let target: Vec<char> = "gitops".chars().collect();
    if folded == target {
        return name != "gitops";
    }
    // Levenshtein distance, one row at a time.
    let mut row: Vec<usize> = (0..=target.len()).collect();
    for (i, a) in folded.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, b) in target.iter().enumerate() {
            let substituted = previous + usize::from(a != b);
            previous = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[target.len()] <= 2
}
