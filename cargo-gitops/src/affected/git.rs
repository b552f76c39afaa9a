//! The clone `affected` compares in: finding a commit, fetching it when a shallow clone lacks
//! it (the commit by its sha where the server gives it, else deepening the history as far as
//! needed), the paths two commits' trees differ in, and a file as a commit has it. Which
//! commits to compare is the caller's choice.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use crate::error::Error;
use crate::process::Command;

/// How far each deepening goes: doubling from here until the commit is found or the history
/// is whole.
const FIRST_DEEPEN: u32 = 64;

/// A local clone, opened once and reopened after each fetch (which git2 does not see).
pub struct LocalRepo {
    repo: Repository,
    /// The folder `git` runs in.
    dir: PathBuf,
}

impl LocalRepo {
    /// Opens the repository around `cwd`.
    pub fn open(cwd: &Path) -> Result<LocalRepo, Error> {
        let repo = Repository::discover(cwd).map_err(|_| Error::NotARepository {
            path: cwd.to_path_buf(),
        })?;
        let dir = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
        Ok(LocalRepo { repo, dir })
    }

    /// The working tree's root, canonical: where the paths of a diff start.
    pub fn root(&self) -> PathBuf {
        super::inputs::canonical(&self.dir)
    }

    /// The commit `rev` names (a full or short sha, or a ref), fetched from `origin` first
    /// when this clone does not have it and is shallow.
    pub fn commit(&mut self, rev: &str) -> Result<Oid, Error> {
        if let Some(id) = self.find(rev) {
            return Ok(id);
        }
        if !self.repo.is_shallow() {
            return Err(missing(rev, "this clone has its whole history"));
        }
        if crate::tags::is_sha40(rev) {
            // One request for that commit alone: comparing two trees needs nothing between.
            let fetched = self
                .git(["fetch", "--quiet", "--no-tags", "--depth=1", "origin", rev])
                .run();
            if fetched.is_ok()
                && let Some(id) = self.reopened()?.find(rev)
            {
                return Ok(id);
            }
        }
        let mut depth = FIRST_DEEPEN;
        while self.repo.is_shallow() {
            self.git([
                "fetch",
                "--quiet",
                "--no-tags",
                &format!("--deepen={depth}"),
                "origin",
            ])
            .run()
            .map_err(|_| {
                missing(
                    rev,
                    &format!("`git fetch --deepen={depth} origin` failed (run it to see why)"),
                )
            })?;
            if let Some(id) = self.reopened()?.find(rev) {
                return Ok(id);
            }
            depth = depth.saturating_mul(4);
        }
        Err(missing(
            rev,
            "it is not in the history of `origin` either, even fetched whole",
        ))
    }

    fn find(&self, rev: &str) -> Option<Oid> {
        let object = self.repo.revparse_single(rev).ok()?;
        object.peel_to_commit().ok().map(|c| c.id())
    }

    fn reopened(&mut self) -> Result<&Self, Error> {
        self.repo = Repository::open(self.repo.path())?;
        Ok(self)
    }

    fn git<const N: usize>(&self, args: [&str; N]) -> Command {
        Command::new("git")
            .arg("-C")
            .arg(self.dir.display().to_string())
            .args(args)
    }

    /// The paths (old and new, `/`-separated, from the root) whose content or mode differs
    /// between the trees of `base` and `head`.
    pub fn changed_paths(&self, base: Oid, head: Oid) -> Result<BTreeSet<String>, Error> {
        let tree =
            |id: Oid| -> Result<git2::Tree<'_>, Error> { Ok(self.repo.find_commit(id)?.tree()?) };
        let (old, new) = (tree(base)?, tree(head)?);
        let diff = self.repo.diff_tree_to_tree(Some(&old), Some(&new), None)?;
        let mut paths = BTreeSet::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(path) = file.path() {
                    paths.insert(path.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        Ok(paths)
    }

    /// The text of `path` at `commit`, or `None` where the commit has no such file.
    pub fn file_at(&self, commit: Oid, path: &str) -> Result<Option<String>, Error> {
        let tree = self.repo.find_commit(commit)?.tree()?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(err) if err.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let blob = self.repo.find_blob(entry.id())?;
        Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
    }
}

fn missing(rev: &str, why: &str) -> Error {
    Error::Affected {
        message: format!(
            "commit `{rev}` is not in this clone and {why}; fetch it (`git fetch origin {rev}`), or compare with another commit with --since"
        ),
    }
}
