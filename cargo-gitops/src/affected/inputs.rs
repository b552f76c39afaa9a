//! What one service's image is made of, as paths of the repository: for a Rust service, its
//! package's files, those of the path dependencies it links (not its dev-dependencies), the
//! workspace's manifest, toolchain file and cargo configuration, and the crates `Cargo.lock`
//! pins for it; for any service, its Dockerfile, the build context's `.dockerignore` and the
//! configured `paths`; for a service that is not Rust and names no `paths`, its whole build
//! context. Reading git or the registry is not this module's job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config::{BuilderKind, Config, SourceKind};
use crate::error::Error;
use crate::process::Command;

/// The files that decide one service's image.
#[derive(Debug, Clone)]
pub struct Inputs {
    matchers: Vec<Matcher>,
    /// For a Rust service: what its lock file entries are.
    pub rust: Option<RustInputs>,
}

/// Which workspace members a Rust service links, and which of their lock file edges are
/// dev-dependencies only (those never reach the image).
#[derive(Debug, Clone)]
pub struct RustInputs {
    /// `Cargo.lock`, relative to the repository's root.
    pub lock_file: String,
    pub members: BTreeSet<String>,
    dev_only: BTreeSet<(String, String)>,
}

impl RustInputs {
    /// Whether the lock file edge from `member` to `dependency` reaches the image.
    pub fn links(&self, member: &str, dependency: &str) -> bool {
        !self
            .dev_only
            .contains(&(member.to_owned(), dependency.to_owned()))
    }
}

#[derive(Debug, Clone)]
enum Matcher {
    /// Every file below a folder (`""` is the whole repository), but for the folders of
    /// other packages and the target folder inside it.
    Folder {
        folder: String,
        except: Vec<String>,
    },
    File(String),
    Glob {
        pattern: String,
        glob: globset::GlobMatcher,
    },
}

impl Inputs {
    /// Why `path` (relative to the repository's root, `/`-separated) is an input, or `None`.
    pub fn explain(&self, path: &str) -> Option<String> {
        self.matchers.iter().find_map(|matcher| match matcher {
            Matcher::Folder { folder, except } => {
                let inside = |dir: &str| dir.is_empty() || path.starts_with(&format!("{dir}/"));
                (inside(folder) && !except.iter().any(|e| inside(e)))
                    .then(|| format!("{path} changed"))
            }
            Matcher::File(file) => (file == path).then(|| format!("{path} changed")),
            Matcher::Glob { pattern, glob } => glob
                .is_match(path)
                .then(|| format!("{path} changed (paths: {pattern})")),
        })
    }
}

/// A Cargo workspace as `cargo metadata --no-deps` describes it: read once for every service.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    target: PathBuf,
    members: BTreeMap<String, Member>,
}

#[derive(Debug, Clone)]
struct Member {
    folder: PathBuf,
    /// Dependencies that reach the image (normal and build), by package name, with their
    /// folder when they are path dependencies.
    linked: Vec<(String, Option<PathBuf>)>,
    /// Package names that are dev-dependencies and nothing else.
    dev_only: BTreeSet<String>,
}

impl Workspace {
    /// Runs `cargo metadata --no-deps` (no network, no resolution) for the workspace of
    /// `manifest`.
    pub fn read(manifest: &Path) -> Result<Workspace, Error> {
        let output = Command::new(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
                "--manifest-path",
            ])
            .arg(manifest.display().to_string())
            .run()?;
        let metadata = cargo_metadata::MetadataCommand::parse(String::from_utf8_lossy(
            &output.stdout,
        ))
        .map_err(|e| Error::Build {
            tool: "`cargo metadata`".to_owned(),
            message: format!(
                "its output is not the workspace's metadata ({e}); check that `cargo` is cargo 1.70 or later"
            ),
        })?;
        let mut members = BTreeMap::new();
        for package in metadata.workspace_packages() {
            let folder = canonical(
                package
                    .manifest_path
                    .parent()
                    .map(|p| p.as_std_path())
                    .unwrap_or(Path::new(".")),
            );
            let mut linked = Vec::new();
            let mut dev = BTreeSet::new();
            for dep in &package.dependencies {
                let path = dep.path.as_ref().map(|p| p.as_std_path().to_path_buf());
                match dep.kind {
                    cargo_metadata::DependencyKind::Development => {
                        dev.insert(dep.name.clone());
                    }
                    _ => linked.push((dep.name.clone(), path)),
                }
            }
            let dev_only = dev
                .into_iter()
                .filter(|name| !linked.iter().any(|(n, _)| n == name))
                .collect();
            members.insert(
                package.name.to_string(),
                Member {
                    folder,
                    linked,
                    dev_only,
                },
            );
        }
        Ok(Workspace {
            root: canonical(metadata.workspace_root.as_std_path()),
            target: canonical(metadata.target_directory.as_std_path()),
            members,
        })
    }

    /// The member whose folder is `folder`, for a configuration that names no package.
    fn member_at(&self, folder: &Path) -> Option<&str> {
        self.members
            .iter()
            .find(|(_, m)| m.folder == folder)
            .map(|(name, _)| name.as_str())
    }
}

/// The inputs of the service `config` configures, with paths relative to `repo_root` (the
/// repository's working tree, canonical). `workspace` is the Cargo workspace, for Rust
/// services.
pub fn of(
    config: &Config,
    workspace: Option<&Workspace>,
    repo_root: &Path,
) -> Result<Inputs, Error> {
    let relative = |path: &Path| relative_to(repo_root, path);
    let mut matchers = Vec::new();
    let mut rust = None;
    let uses_dockerfile = config.build.builder != Some(BuilderKind::Native);
    match (config.source, workspace) {
        (SourceKind::Cargo, Some(workspace)) => {
            let package = match &config.package {
                Some(package) => package.clone(),
                None => workspace
                    .member_at(&canonical(&config.root_dir))
                    .map(str::to_owned)
                    .ok_or_else(|| Error::Affected {
                        message: "the configuration names no package and no package is at the workspace's root; pass -p".to_owned(),
                    })?,
            };
            let (folders, members) = linked_members(workspace, &package)?;
            let others: Vec<&PathBuf> = workspace
                .members
                .values()
                .map(|m| &m.folder)
                .chain(std::iter::once(&workspace.target))
                .collect();
            for folder in &folders {
                let except = others
                    .iter()
                    .filter(|o| **o != folder && o.starts_with(folder))
                    .filter_map(|o| relative(o))
                    .collect();
                if let Some(folder) = relative(folder) {
                    matchers.push(Matcher::Folder { folder, except });
                }
            }
            for file in workspace_files(&workspace.root, repo_root) {
                matchers.extend(relative(&file).map(Matcher::File));
            }
            let dev_only = members
                .iter()
                .flat_map(|name| {
                    workspace.members[name]
                        .dev_only
                        .iter()
                        .map(move |dep| (name.clone(), dep.clone()))
                })
                .collect();
            rust = Some(RustInputs {
                lock_file: relative(&workspace.root.join("Cargo.lock"))
                    .unwrap_or_else(|| "Cargo.lock".to_owned()),
                members,
                dev_only,
            });
        }
        _ if config.build.paths.is_empty() => {
            // Nothing says which files a Dockerfile reads: all of its context.
            let context = canonical(&config.context());
            matchers.extend(relative(&context).map(|folder| Matcher::Folder {
                folder,
                except: Vec::new(),
            }));
        }
        _ => {}
    }
    if uses_dockerfile {
        matchers.extend(relative(&canonical(&config.dockerfile())).map(Matcher::File));
        matchers.extend(
            relative(&canonical(&config.context()).join(".dockerignore")).map(Matcher::File),
        );
    }
    let base = relative(&canonical(&config.root_dir)).unwrap_or_default();
    for pattern in &config.build.paths {
        let full = if base.is_empty() {
            pattern.clone()
        } else {
            format!("{base}/{pattern}")
        };
        let glob = globset::GlobBuilder::new(&full)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Affected {
                message: format!(
                    "paths: `{pattern}` is not a glob ({e}); fix it in the configuration"
                ),
            })?
            .compile_matcher();
        matchers.push(Matcher::Glob {
            pattern: pattern.clone(),
            glob,
        });
    }
    Ok(Inputs { matchers, rust })
}

/// The folders of `package` and of every path dependency it links, transitively, and the
/// workspace members among them.
fn linked_members(
    workspace: &Workspace,
    package: &str,
) -> Result<(BTreeSet<PathBuf>, BTreeSet<String>), Error> {
    if !workspace.members.contains_key(package) {
        return Err(Error::Affected {
            message: format!(
                "package `{package}` is not a member of the workspace at {}; check -p",
                workspace.root.display()
            ),
        });
    }
    let mut folders = BTreeSet::new();
    let mut members = BTreeSet::new();
    let mut stack = vec![package.to_owned()];
    while let Some(name) = stack.pop() {
        if !members.insert(name.clone()) {
            continue;
        }
        let member = &workspace.members[&name];
        folders.insert(member.folder.clone());
        for (dep, path) in &member.linked {
            match path {
                Some(_) if workspace.members.contains_key(dep) => stack.push(dep.clone()),
                // A path dependency outside the workspace: its files count all the same.
                Some(path) => {
                    folders.insert(canonical(path));
                }
                None => {}
            }
        }
    }
    Ok((folders, members))
}

/// The workspace-wide files every Rust service's build reads: the root manifest, the
/// toolchain file, and cargo's configuration from the workspace's root up to the repository's.
fn workspace_files(root: &Path, repo_root: &Path) -> Vec<PathBuf> {
    let mut files = vec![
        root.join("Cargo.toml"),
        root.join("rust-toolchain.toml"),
        root.join("rust-toolchain"),
    ];
    for dir in root.ancestors() {
        files.push(dir.join(".cargo/config.toml"));
        files.push(dir.join(".cargo/config"));
        if dir == repo_root {
            break;
        }
    }
    files
}

/// `path` relative to `root`, `/`-separated; `None` outside it (such a file is not the
/// repository's, so no commit changes it).
fn relative_to(root: &Path, path: &Path) -> Option<String> {
    let rest = path.strip_prefix(root).ok()?;
    Some(
        rest.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// The path with symbolic links resolved where it exists (a temp dir under a linked `/tmp`),
/// else as given.
pub fn canonical(path: &Path) -> PathBuf {
    match std::fs::canonicalize(path) {
        Ok(path) => path,
        Err(_) => match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
                canonical(parent).join(name)
            }
            _ => path.to_path_buf(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(folder: &str, except: &[&str]) -> Matcher {
        Matcher::Folder {
            folder: folder.to_owned(),
            except: except.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_folder_matches_below_it_but_not_its_nested_packages_nor_lookalike_names() {
        let inputs = Inputs {
            matchers: vec![folder("services/api", &["services/api/vendor-tool"])],
            rust: None,
        };
        assert!(inputs.explain("services/api/src/main.rs").is_some());
        assert!(inputs.explain("services/api-v2/src/main.rs").is_none());
        assert!(
            inputs
                .explain("services/api/vendor-tool/src/lib.rs")
                .is_none()
        );
        let root = Inputs {
            matchers: vec![folder("", &["target"])],
            rust: None,
        };
        assert!(root.explain("README.md").is_some());
        assert!(root.explain("target/debug/x").is_none());
    }

    #[test]
    fn a_glob_does_not_cross_folders_with_a_single_star() {
        let glob = globset::GlobBuilder::new("web/*.js")
            .literal_separator(true)
            .build()
            .unwrap()
            .compile_matcher();
        let inputs = Inputs {
            matchers: vec![Matcher::Glob {
                pattern: "web/*.js".to_owned(),
                glob,
            }],
            rust: None,
        };
        assert_eq!(
            inputs.explain("web/app.js").as_deref(),
            Some("web/app.js changed (paths: web/*.js)")
        );
        assert!(inputs.explain("web/lib/app.js").is_none());
    }

    #[test]
    fn relative_paths_are_slash_separated_and_outside_ones_none() {
        let root = Path::new("/r");
        assert_eq!(
            relative_to(root, Path::new("/r/a/b.rs")).as_deref(),
            Some("a/b.rs")
        );
        assert_eq!(relative_to(root, Path::new("/r")).as_deref(), Some(""));
        assert_eq!(relative_to(root, Path::new("/elsewhere/x")), None);
    }
}
