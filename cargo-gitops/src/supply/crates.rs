//! The crates linked into a native build's binary, for one target: the package and what it
//! reaches through normal dependencies on that target, with the features `cargo build -p`
//! resolves for it. Dev-dependencies, build-dependencies and proc-macros (with what only they
//! pull in) run on the build machine and are left out. Each crate carries its source, its
//! declared licence and the SHA-256 Cargo.lock records for it.
//!
//! Owns asking cargo and reading the lockfile; writing documents from the result is `sbom`'s
//! and `auditable`'s job.
//!
//! The graph comes from `cargo tree`, not from `cargo metadata`'s `resolve`: metadata resolves
//! features for the whole workspace at once, so a crate that another member's features switch
//! on would be listed for a binary that never links it, while `cargo tree -p` resolves exactly
//! as `cargo build -p` does. Metadata still gives each crate's source and licence.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::Error;
use crate::process::Command;

/// Where a crate comes from, as documents name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    CratesIo,
    /// Another registry, by its index URL.
    Registry {
        index: String,
    },
    Git {
        url: String,
        commit: String,
    },
    /// A path dependency or a workspace member: nothing to download.
    Path,
}

/// One crate linked into the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    pub name: String,
    pub version: String,
    pub source: Source,
    /// The `license` field of its manifest, as written (it may use cargo's legacy `/`).
    pub license: Option<String>,
    /// Lowercase hex SHA-256 of its `.crate` archive, from Cargo.lock (registry crates only).
    pub checksum: Option<String>,
    /// Indices into [`LinkedCrates::crates`] of the crates it depends on, ascending.
    pub dependencies: Vec<usize>,
}

/// The crates of one binary; the first is the package itself, the others sorted by name,
/// version and source, so the same lockfile always gives the same list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedCrates {
    pub crates: Vec<Crate>,
}

impl LinkedCrates {
    /// Asks cargo which crates `package` (of the workspace of `manifest`) links for `triple`.
    pub fn resolve(manifest: &Path, package: &str, triple: &str) -> Result<LinkedCrates, Error> {
        let metadata = metadata(manifest, triple)?;
        let root = metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.name.as_str() == package)
            .ok_or_else(|| {
                Error::usage(format!(
                    "package `{package}` is not in the workspace of {}; check -p",
                    manifest.display()
                ))
            })?;
        let spec = format!("{}@{}", root.name, root.version);
        let output = Command::new(&cargo())
            .args(["tree", "--manifest-path"])
            .arg(manifest.display().to_string())
            .args(["-p", spec.as_str(), "--target", triple])
            .args(["-e", "normal,no-proc-macro", "--prefix", "depth"])
            .args(["--format", "{p}", "--charset", "ascii"])
            .run()?;
        let tree = String::from_utf8_lossy(&output.stdout);
        let lock_path = metadata.workspace_root.as_std_path().join("Cargo.lock");
        let lock = std::fs::read_to_string(&lock_path).map_err(|source| Error::Read {
            what: lock_path.display().to_string(),
            source,
        })?;
        from_parts(&metadata, &tree, &lock)
    }

    /// The package the binary belongs to.
    pub fn root(&self) -> &Crate {
        &self.crates[0]
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn metadata(manifest: &Path, triple: &str) -> Result<cargo_metadata::Metadata, Error> {
    let output = Command::new(&cargo())
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(manifest.display().to_string())
        .args(["--filter-platform", triple])
        .run()?;
    cargo_metadata::MetadataCommand::parse(String::from_utf8_lossy(&output.stdout)).map_err(|e| {
        Error::Build {
            tool: "`cargo metadata`".to_owned(),
            message: format!(
                "its output is not the workspace's metadata ({e}); check that `cargo` is cargo 1.70 or later"
            ),
        }
    })
}

fn tree_error(line: &str, why: &str) -> Error {
    Error::Build {
        tool: "`cargo tree`".to_owned(),
        message: format!(
            "cannot read its line `{}`: {why}; check that `cargo` is cargo 1.70 or later",
            crate::error::quote_external(line)
        ),
    }
}

/// One line of `cargo tree --prefix depth --format {p}`: `3name v1.2.3 (source) (*)`.
struct TreeLine<'a> {
    depth: usize,
    name: &'a str,
    version: &'a str,
    /// The parenthesised source cargo prints for crates not from crates.io, if any.
    source: Option<&'a str>,
}

fn parse_line(line: &str) -> Result<TreeLine<'_>, Error> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let depth = line[..digits]
        .parse()
        .map_err(|_| tree_error(line, "it has no depth"))?;
    let rest = &line[digits..];
    let (name, rest) = rest
        .split_once(' ')
        .ok_or_else(|| tree_error(line, "it has no version"))?;
    let (version, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let version = version
        .strip_prefix('v')
        .ok_or_else(|| tree_error(line, "its version does not start with `v`"))?;
    // What follows is groups like `(/path)`, `(proc-macro)`, `(*)`; only a source matters.
    let source = rest
        .split(") (")
        .map(|group| group.trim().trim_start_matches('(').trim_end_matches(')'))
        .find(|group| !group.is_empty() && *group != "*" && *group != "proc-macro");
    Ok(TreeLine {
        depth,
        name,
        version,
        source,
    })
}

/// Builds the list from cargo's answers and the lockfile's text.
fn from_parts(
    metadata: &cargo_metadata::Metadata,
    tree: &str,
    lock: &str,
) -> Result<LinkedCrates, Error> {
    let checksums = lock_checksums(lock)?;
    // Metadata packages by (name, version); more than one only when sources differ.
    let mut by_name: HashMap<(&str, String), Vec<&cargo_metadata::Package>> = HashMap::new();
    for package in &metadata.packages {
        by_name
            .entry((package.name.as_str(), package.version.to_string()))
            .or_default()
            .push(package);
    }
    // Graph over metadata package ids, in the order lines appear.
    let mut ids: Vec<&cargo_metadata::PackageId> = Vec::new();
    let mut edges: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut stack: Vec<usize> = Vec::new();
    for line in tree.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = parse_line(line)?;
        let candidates = by_name
            .get(&(parsed.name, parsed.version.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let package = match candidates {
            [only] => *only,
            [] => return Err(tree_error(line, "cargo metadata does not list this crate")),
            many => many
                .iter()
                .copied()
                .find(|p| same_source(p, parsed.source))
                .ok_or_else(|| tree_error(line, "several crates have this name and version"))?,
        };
        let index = match ids.iter().position(|id| **id == package.id) {
            Some(index) => index,
            None => {
                ids.push(&package.id);
                ids.len() - 1
            }
        };
        if parsed.depth > stack.len() {
            return Err(tree_error(line, "it is deeper than the line above allows"));
        }
        stack.truncate(parsed.depth);
        if let Some(parent) = stack.last() {
            let children = edges.entry(*parent).or_default();
            if !children.contains(&index) {
                children.push(index);
            }
        }
        stack.push(index);
    }
    if ids.is_empty() {
        return Err(Error::Build {
            tool: "`cargo tree`".to_owned(),
            message: "it printed no crate; check that the package builds for this target"
                .to_owned(),
        });
    }

    let packages: HashMap<&cargo_metadata::PackageId, &cargo_metadata::Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let mut crates: Vec<(usize, Crate)> = ids
        .iter()
        .enumerate()
        .map(|(index, id)| {
            let package = packages[id];
            let source = source_of(package);
            let source_repr = package.source.as_ref().map(|s| s.repr.clone());
            let checksum = checksums
                .get(&(
                    package.name.to_string(),
                    package.version.to_string(),
                    source_repr,
                ))
                .cloned();
            (
                index,
                Crate {
                    name: package.name.to_string(),
                    version: package.version.to_string(),
                    source,
                    license: package.license.clone(),
                    checksum,
                    dependencies: Vec::new(),
                },
            )
        })
        .collect();
    // The root (the first line) stays first; the rest sort so the order is the lockfile's,
    // not the order cargo happened to walk.
    crates[1..].sort_by(|(_, a), (_, b)| {
        (&a.name, semver_key(&a.version), &a.source).cmp(&(
            &b.name,
            semver_key(&b.version),
            &b.source,
        ))
    });
    let new_index: HashMap<usize, usize> = crates
        .iter()
        .enumerate()
        .map(|(new, (old, _))| (*old, new))
        .collect();
    let crates: Vec<Crate> = crates
        .into_iter()
        .map(|(old, mut krate)| {
            let mut dependencies: Vec<usize> = edges
                .get(&old)
                .map(|children| children.iter().map(|c| new_index[c]).collect())
                .unwrap_or_default();
            dependencies.sort_unstable();
            krate.dependencies = dependencies;
            krate
        })
        .collect();
    Ok(LinkedCrates { crates })
}

/// Versions compare as SemVer where they parse, so `1.10.0` sorts after `1.9.0`.
fn semver_key(version: &str) -> (Option<semver::Version>, &str) {
    (semver::Version::parse(version).ok(), version)
}

/// Whether `package` is the one `cargo tree` printed with `printed` as its source.
fn same_source(package: &cargo_metadata::Package, printed: Option<&str>) -> bool {
    match (&package.source, printed) {
        (None, Some(dir)) => package
            .manifest_path
            .parent()
            .is_some_and(|parent| parent.as_str() == dir),
        (Some(source), None) => source.is_crates_io(),
        (Some(source), Some(printed)) => {
            // Git sources print as their URL (with the revision), registries by their name.
            source
                .repr
                .contains(printed.split('#').next().unwrap_or(printed))
                || printed.starts_with("registry")
        }
        (None, None) => false,
    }
}

fn source_of(package: &cargo_metadata::Package) -> Source {
    let Some(source) = &package.source else {
        return Source::Path;
    };
    if source.is_crates_io() {
        return Source::CratesIo;
    }
    let repr = source.repr.as_str();
    if let Some(git) = repr.strip_prefix("git+") {
        let (location, commit) = git.split_once('#').unwrap_or((git, ""));
        // The query (`?branch=…`, `?rev=…`) says how the commit was chosen, not where it is.
        let url = location.split('?').next().unwrap_or(location);
        return Source::Git {
            url: url.to_owned(),
            commit: commit.to_owned(),
        };
    }
    let index = repr
        .strip_prefix("registry+")
        .or_else(|| repr.strip_prefix("sparse+"))
        .unwrap_or(repr);
    Source::Registry {
        index: index.to_owned(),
    }
}

#[derive(serde::Deserialize)]
struct Lockfile {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(serde::Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
}

type LockKey = (String, String, Option<String>);

/// The checksums Cargo.lock records, by name, version and source.
fn lock_checksums(lock: &str) -> Result<HashMap<LockKey, String>, Error> {
    let lockfile: Lockfile = toml::from_str(lock).map_err(|e| Error::Build {
        tool: "cargo".to_owned(),
        message: format!(
            "Cargo.lock is not a lockfile it can read ({}); run `cargo generate-lockfile`",
            crate::error::quote_external(e.message())
        ),
    })?;
    Ok(lockfile
        .package
        .into_iter()
        .filter_map(|p| {
            let checksum = p.checksum?;
            Some(((p.name, p.version, p.source), checksum))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_lines_give_depth_name_version_and_source() {
        let line = parse_line("0fx v0.1.0 (/tmp/fx)").unwrap();
        assert_eq!(
            (line.depth, line.name, line.version, line.source),
            (0, "fx", "0.1.0", Some("/tmp/fx"))
        );
        let line = parse_line("12serde_core v1.0.229 (*)").unwrap();
        assert_eq!(
            (line.depth, line.name, line.version, line.source),
            (12, "serde_core", "1.0.229", None)
        );
        let line = parse_line("2g v0.2.0 (https://example.com/g.git#0123abc) (*)").unwrap();
        assert_eq!(line.source, Some("https://example.com/g.git#0123abc"));
        assert!(parse_line("fx v0.1.0").is_err());
        assert!(parse_line("1fx 0.1.0").is_err());
    }

    #[test]
    fn lockfile_checksums_are_keyed_by_source() {
        let lock = r#"
version = 4

[[package]]
name = "fx"
version = "0.1.0"

[[package]]
name = "memchr"
version = "2.8.3"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aaaa"
"#;
        let sums = lock_checksums(lock).unwrap();
        assert_eq!(sums.len(), 1);
        assert_eq!(
            sums[&(
                "memchr".to_owned(),
                "2.8.3".to_owned(),
                Some("registry+https://github.com/rust-lang/crates.io-index".to_owned())
            )],
            "aaaa"
        );
        assert!(lock_checksums("package = 3").is_err());
    }
}
