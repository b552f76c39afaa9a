//! The local git repository, read through git2: which ref and commit are checked out, and which
//! tags point at a commit. Where the ref comes from when running in CI is `deployment`'s call.

use std::path::Path;

use git2::{ErrorCode, Oid, Repository};

use crate::environment::{GitRef, parse_semver_tag};
use crate::error::Error;
use crate::tags::is_sha40;

/// A ref and the commit it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub git_ref: GitRef,
    /// 40 lowercase hex digits.
    pub sha: String,
}

/// Resolves the ref and commit to deploy. `ref_arg` and `sha_arg` (from flags or CI variables)
/// win; what they leave open is read from the repository around `cwd`, which is only opened
/// when needed.
pub fn resolve(
    cwd: &Path,
    ref_arg: Option<&str>,
    sha_arg: Option<&str>,
) -> Result<Checkout, Error> {
    if let (Some(full), Some(sha)) = (
        ref_arg.filter(|r| r.starts_with("refs/")),
        sha_arg.filter(|s| is_sha40(s)),
    ) {
        let git_ref = GitRef::from_full(full);
        check_ref_name(&git_ref)?;
        return Ok(Checkout {
            git_ref,
            sha: sha.to_ascii_lowercase(),
        });
    }
    let repo = match Repository::discover(cwd) {
        Ok(repo) => Some(repo),
        // A short `--ref` only needs the repository to tell a tag from a branch.
        Err(err)
            if err.code() == ErrorCode::NotFound
                && sha_arg.is_some_and(is_sha40)
                && ref_arg.is_some() =>
        {
            None
        }
        Err(err) if err.code() == ErrorCode::NotFound => {
            return Err(Error::NotARepository {
                path: cwd.to_path_buf(),
            });
        }
        Err(err) => return Err(err.into()),
    };

    let git_ref = match ref_arg {
        Some(text) => parse_ref_arg(repo.as_ref(), text),
        None => current_ref(repo.as_ref().expect("opened when no ref is given"))?,
    };
    check_ref_name(&git_ref)?;
    let sha = match sha_arg {
        Some(text) if is_sha40(text) => text.to_ascii_lowercase(),
        Some(text) => {
            let repo = repo.as_ref().expect("opened when the sha is not a full id");
            repo.revparse_single(text)
                .and_then(|object| object.peel_to_commit())
                .map_err(|_| Error::usage(format!("--sha `{text}` is not a commit in this repository; give a full 40-hex sha or a revision git knows")))?
                .id()
                .to_string()
        }
        None => {
            let repo = repo.as_ref().expect("opened when no sha is given");
            commit_of(repo, &git_ref)?.to_string()
        }
    };
    Ok(Checkout { git_ref, sha })
}

/// Refuses names git itself would refuse (`refs/heads/`, `a..b`, `x.lock`), which would give
/// tags with nothing of the branch in them.
pub fn check_ref_name(git_ref: &GitRef) -> Result<(), Error> {
    let full = git_ref.full();
    if git2::Reference::is_valid_name(&full) {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "`{}` is not a valid git ref name; give a branch or tag as git names it",
            full.escape_debug()
        )))
    }
}

/// `--ref` may be full (`refs/tags/v1.2.3`) or short; a short name is a tag only when the
/// repository has such a tag and no such branch.
fn parse_ref_arg(repo: Option<&Repository>, text: &str) -> GitRef {
    if text.starts_with("refs/") {
        return GitRef::from_full(text);
    }
    let exists = |full: String| repo.is_some_and(|r| r.find_reference(&full).is_ok());
    if exists(format!("refs/tags/{text}")) && !exists(format!("refs/heads/{text}")) {
        GitRef::Tag(text.to_owned())
    } else {
        GitRef::Branch(text.to_owned())
    }
}

/// The commit a ref names locally. A ref the repository does not have is refused, with what
/// it has: acting for a ref that is not local needs `--sha` too (as CI passes both).
fn commit_of(repo: &Repository, git_ref: &GitRef) -> Result<Oid, Error> {
    if let Ok(reference) = repo.find_reference(&git_ref.full()) {
        return Ok(reference.peel_to_commit()?.id());
    }
    let names = |prefix: &str| -> Vec<String> {
        let mut found: Vec<String> = repo
            .references_glob(&format!("{prefix}*"))
            .map(|mut refs| {
                refs.names()
                    .flatten()
                    .filter_map(|n| n.strip_prefix(prefix).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        if found.len() > 8 {
            let more = found.len() - 8;
            found.truncate(8);
            found.push(format!("and {more} more"));
        }
        found
    };
    let (branches, tags) = (names("refs/heads/"), names("refs/tags/"));
    let list = |kind: &str, found: &[String]| {
        if found.is_empty() {
            format!("no {kind}")
        } else {
            format!("{kind} {}", found.join(", "))
        }
    };
    Err(Error::usage(format!(
        "`{}` is not in this repository (it has {}; {}); name one of those, or pass --sha too to act for a ref that is not local",
        git_ref.full().escape_debug(),
        list("branches", &branches),
        list("tags", &tags)
    )))
}

/// The commit HEAD names; a repository without one is `Error::NoCommit`.
pub fn head_commit(repo: &Repository) -> Result<Oid, Error> {
    match repo.head() {
        Ok(head) => Ok(head.peel_to_commit()?.id()),
        Err(err) if err.code() == ErrorCode::UnbornBranch || err.code() == ErrorCode::NotFound => {
            Err(Error::NoCommit)
        }
        Err(err) => Err(err.into()),
    }
}

/// The checked-out branch, or on a detached HEAD the tag at HEAD that matters most: SemVer
/// tags highest first, then other tags by name.
fn current_ref(repo: &Repository) -> Result<GitRef, Error> {
    let head = match repo.head() {
        Ok(head) => head,
        Err(err) if err.code() == ErrorCode::UnbornBranch || err.code() == ErrorCode::NotFound => {
            return Err(Error::NoCommit);
        }
        Err(err) => return Err(err.into()),
    };
    if head.is_branch() {
        let name = head
            .shorthand()
            .map_err(|_| Error::usage("the current branch name is not UTF-8; pass --ref"))?;
        return Ok(GitRef::Branch(name.to_owned()));
    }
    let commit = head.peel_to_commit()?.id();
    tags_at(repo, commit)?
        .into_iter()
        .next()
        .map(GitRef::Tag)
        .ok_or(Error::DetachedWithoutTag)
}

/// Tags that point at `commit`, SemVer tags first (highest first), then the others by name.
pub fn tags_at(repo: &Repository, commit: Oid) -> Result<Vec<String>, Error> {
    let mut found = Vec::new();
    for reference in repo.references_glob("refs/tags/*")? {
        let reference = reference?;
        let Some(target) = reference.target() else {
            continue;
        };
        // Packed refs carry the peeled commit of annotated tags, which saves reading the tag
        // object; loose annotated tags still have to be read.
        let points_here = target == commit
            || reference.target_peel() == Some(commit)
            // Loose annotated tags (and tags of tags) are peeled object by object.
            || (reference.target_peel().is_none()
                && repo.find_tag(target).is_ok()
                && reference.peel_to_commit().is_ok_and(|c| c.id() == commit));
        if points_here && let Ok(name) = reference.shorthand() {
            found.push(name.to_owned());
        }
    }
    found.sort_by(|a, b| match (parse_semver_tag(a), parse_semver_tag(b)) {
        (Some(va), Some(vb)) => vb.cmp(&va).then_with(|| a.cmp(b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
    Ok(found)
}

/// The branch `origin/HEAD` names (`master` for `refs/remotes/origin/master`): the remote's
/// default branch as a clone records it. `None` outside a repository or without it.
pub fn default_branch(cwd: &Path) -> Option<String> {
    let repo = Repository::discover(cwd).ok()?;
    let head = repo.find_reference("refs/remotes/origin/HEAD").ok()?;
    let target = head.symbolic_target().ok()??;
    target
        .strip_prefix("refs/remotes/origin/")
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
}

/// Whether the repository around `cwd` has `branch`, locally or as `origin`'s; `None`
/// outside a repository, or in one without any branch yet (nothing committed).
pub fn has_branch(cwd: &Path, branch: &str) -> Option<bool> {
    let repo = Repository::discover(cwd).ok()?;
    repo.branches(Some(git2::BranchType::Local))
        .ok()?
        .next()?
        .ok()?;
    Some(
        [
            format!("refs/heads/{branch}"),
            format!("refs/remotes/origin/{branch}"),
        ]
        .iter()
        .any(|name| repo.find_reference(name).is_ok()),
    )
}

/// The `origin` remote's web address, for the image's `source` label: its https URL, or the
/// https form of an SSH remote (`git@github.com:o/r.git` → `https://github.com/o/r.git`);
/// `None` when there is no origin or it is anything else (a local path, a file:// or plain
/// http URL).
pub fn origin_url(cwd: &Path) -> Option<String> {
    let repo = Repository::discover(cwd).ok()?;
    let remote = repo.find_remote("origin").ok()?;
    web_url(remote.url().ok()?)
}

/// `url` as an https address without credentials, when it is one or an SSH remote's.
pub fn web_url(url: &str) -> Option<String> {
    let https = if let Some(rest) = url.strip_prefix("ssh://") {
        let rest = rest
            .split_once('@')
            .map_or(rest, |(_, host_path)| host_path);
        let (host, path) = rest.split_once('/')?;
        // An SSH port is not the web server's.
        let host = host.split(':').next()?;
        format!("https://{host}/{path}")
    } else if url.starts_with("https://") {
        url.to_owned()
    } else if let Some((user_host, path)) = url.split_once(':')
        && let Some((_, host)) = user_host.split_once('@')
        && !path.starts_with('/')
        && !user_host.contains('/')
    {
        format!("https://{host}/{path}")
    } else {
        return None;
    };
    let rest = https.strip_prefix("https://")?;
    let host = rest.split('/').next()?;
    // A URL with credentials in it must not end up in an image label.
    let plain = !host.is_empty()
        && !host.contains('@')
        && https
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '<' | '>'));
    plain.then_some(https)
}

/// The committer time of `sha`, for reproducible timestamps; `None` outside a repository.
pub fn commit_time(cwd: &Path, sha: &str) -> Option<u64> {
    let repo = Repository::discover(cwd).ok()?;
    let commit = repo.find_commit(Oid::from_str(sha).ok()?).ok()?;
    u64::try_from(commit.time().seconds()).ok()
}

#[cfg(test)]
mod web_url_tests {
    use super::web_url;

    #[test]
    fn only_https_addresses_become_the_source() {
        for (remote, expected) in [
            (
                "https://github.com/o/r.git",
                Some("https://github.com/o/r.git"),
            ),
            ("git@github.com:o/r.git", Some("https://github.com/o/r.git")),
            (
                "ssh://git@gitlab.com:2222/g/r.git",
                Some("https://gitlab.com/g/r.git"),
            ),
            ("https://user:token@github.com/o/r", None),
            ("/home/me/src/r", None),
            ("../r", None),
            ("file:///srv/r.git", None),
            ("http://git.lan/r", None),
            ("C:/src/r", None),
        ] {
            assert_eq!(web_url(remote).as_deref(), expected, "{remote}");
        }
    }
}
