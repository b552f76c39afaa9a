//! `Cargo.lock` as `affected` reads it: the packages it pins and the edges between them, and
//! the crates one service links, so that a lock file change rebuilds only the services that
//! link the crate that moved. Which services exist and which of their edges count (no
//! dev-dependencies) is `inputs`' knowledge; this module only walks the graph it is given.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// One `[[package]]` of a lock file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub checksum: Option<String>,
    /// `name`, `name version` or `name version (source)`: as short as cargo could write it.
    #[serde(default)]
    pub dependencies: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawLock {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

/// A parsed lock file.
#[derive(Debug, Clone, Default)]
pub struct LockFile {
    packages: Vec<LockedPackage>,
}

/// One pinned crate, as it decides the bytes that are compiled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pinned {
    pub name: String,
    pub version: String,
    pub source: Option<String>,
    pub checksum: Option<String>,
}

impl LockFile {
    /// Reads a lock file's text; `None` when it is not one (the caller then treats every Rust
    /// service as changed rather than guess).
    pub fn parse(text: &str) -> Option<LockFile> {
        let raw: RawLock = toml::from_str(text).ok()?;
        Some(LockFile {
            packages: raw.package,
        })
    }

    /// Every crate reachable from the workspace members `roots`, following each member's edges
    /// only to the names `keep` allows for it (its normal and build dependencies) and every
    /// other package's edges in full. The members themselves are left out: their files are
    /// compared as files.
    pub fn linked(
        &self,
        roots: &BTreeSet<String>,
        keep: &dyn Fn(&str, &str) -> bool,
    ) -> BTreeSet<Pinned> {
        let mut seen: BTreeSet<usize> = BTreeSet::new();
        let mut stack: Vec<usize> = self
            .packages
            .iter()
            .enumerate()
            .filter(|(_, p)| p.source.is_none() && roots.contains(&p.name))
            .map(|(i, _)| i)
            .collect();
        let mut linked = BTreeSet::new();
        while let Some(index) = stack.pop() {
            if !seen.insert(index) {
                continue;
            }
            let package = &self.packages[index];
            let is_root = package.source.is_none() && roots.contains(&package.name);
            if !is_root {
                linked.insert(Pinned {
                    name: package.name.clone(),
                    version: package.version.clone(),
                    source: package.source.clone(),
                    checksum: package.checksum.clone(),
                });
            }
            for edge in &package.dependencies {
                let name = edge.split(' ').next().unwrap_or(edge);
                if is_root && !keep(&package.name, name) {
                    continue;
                }
                if let Some(target) = self.resolve(edge) {
                    stack.push(target);
                }
            }
        }
        linked
    }

    /// The package an edge names: by name alone when only one has it, else by name and
    /// version, else by name, version and source.
    fn resolve(&self, edge: &str) -> Option<usize> {
        let mut parts = edge.splitn(3, ' ');
        let name = parts.next()?;
        let version = parts.next();
        let source = parts
            .next()
            .map(|s| s.trim_start_matches('(').trim_end_matches(')'));
        self.packages.iter().position(|p| {
            p.name == name
                && version.is_none_or(|v| p.version == v)
                && source.is_none_or(|s| p.source.as_deref() == Some(s))
        })
    }
}

/// What differs between the crates a service linked before and links now, as one phrase for
/// the report (`serde 1.0.1 → 1.0.2`), or `None` when they are the same.
pub fn difference(before: &BTreeSet<Pinned>, after: &BTreeSet<Pinned>) -> Option<String> {
    let by_name = |set: &BTreeSet<Pinned>| {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in set {
            map.entry(p.name.clone())
                .or_default()
                .push(p.version.clone());
        }
        map
    };
    let changed: BTreeSet<&str> = after
        .symmetric_difference(before)
        .map(|p| p.name.as_str())
        .collect();
    let first = *changed.first()?;
    let (old, new) = (by_name(before), by_name(after));
    let versions = |map: &BTreeMap<String, Vec<String>>| {
        map.get(first)
            .map_or_else(|| "none".to_owned(), |v| v.join(", "))
    };
    let (was, now) = (versions(&old), versions(&new));
    let more = match changed.len() {
        1 => String::new(),
        n => format!(
            " (and {} other crate{})",
            n - 1,
            if n == 2 { "" } else { "s" }
        ),
    };
    Some(if was == now {
        // Same version, another source or checksum: a registry or git revision moved.
        format!("Cargo.lock: {first} {now} is pinned to other bytes{more}")
    } else {
        format!("Cargo.lock: {first} {was} → {now}{more}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "api"
version = "0.1.0"
dependencies = ["serde", "shared", "proptest"]

[[package]]
name = "worker"
version = "0.1.0"
dependencies = ["itoa 1.0.0", "shared"]

[[package]]
name = "shared"
version = "0.1.0"
dependencies = ["itoa 1.0.1"]

[[package]]
name = "serde"
version = "1.0.1"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aa"

[[package]]
name = "proptest"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "pp"

[[package]]
name = "itoa"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "i0"

[[package]]
name = "itoa"
version = "1.0.1"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "i1"
"#;

    fn names(set: &BTreeSet<Pinned>) -> Vec<String> {
        set.iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect()
    }

    #[test]
    fn a_member_links_its_normal_dependencies_and_theirs_but_not_its_dev_dependencies() {
        let lock = LockFile::parse(LOCK).unwrap();
        let roots: BTreeSet<String> = ["api".to_owned(), "shared".to_owned()].into();
        let linked = lock.linked(&roots, &|member, dep| {
            !(member == "api" && dep == "proptest")
        });
        assert_eq!(names(&linked), ["itoa 1.0.1", "serde 1.0.1"]);
    }

    #[test]
    fn an_edge_with_a_version_picks_that_version() {
        let lock = LockFile::parse(LOCK).unwrap();
        let roots: BTreeSet<String> = ["worker".to_owned(), "shared".to_owned()].into();
        let linked = lock.linked(&roots, &|_, _| true);
        assert_eq!(names(&linked), ["itoa 1.0.0", "itoa 1.0.1"]);
    }

    #[test]
    fn a_bump_is_reported_with_both_versions_and_the_same_set_with_none() {
        let lock = LockFile::parse(LOCK).unwrap();
        let roots: BTreeSet<String> = ["api".to_owned()].into();
        let before = lock.linked(&roots, &|_, _| true);
        let bumped = LockFile::parse(&LOCK.replace(
            "name = \"serde\"\nversion = \"1.0.1\"",
            "name = \"serde\"\nversion = \"1.0.2\"",
        ))
        .unwrap();
        let after = bumped.linked(&roots, &|_, _| true);
        assert_eq!(
            difference(&before, &after).as_deref(),
            Some("Cargo.lock: serde 1.0.1 → 1.0.2")
        );
        assert_eq!(difference(&before, &before), None);
        let moved = LockFile::parse(&LOCK.replace("checksum = \"aa\"", "checksum = \"bb\""))
            .unwrap()
            .linked(&roots, &|_, _| true);
        assert_eq!(
            difference(&before, &moved).as_deref(),
            Some("Cargo.lock: serde 1.0.1 is pinned to other bytes")
        );
    }

    #[test]
    fn text_that_is_not_a_lock_file_is_none() {
        assert!(LockFile::parse("[[package]]\nname = 1").is_none());
    }
}
