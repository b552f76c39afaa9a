//! Releases, the git side of promoting to a tag-tracked environment: the next SemVer tag,
//! computed from the tags the repository has (or the package's version, for the first), created
//! annotated on HEAD. It only moves refs: the images follow when the pipeline runs for the
//! pushed tag, which is `build`'s job. Moving branches is `promote`'s.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use git2::{ErrorCode, Oid, Repository, StatusOptions};
use semver::{BuildMetadata, Prerelease, Version};
use serde::Serialize;

use crate::config::Config;
use crate::environment::{self, BranchPattern, GitRef, parse_semver_tag};
use crate::error::Error;
use crate::git;
use crate::process::Command;

/// The remote releases and promotions are pushed to.
pub const REMOTE: &str = "origin";

/// Which version to release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bump {
    Patch,
    Minor,
    Major,
    /// A version given outright (`1.4.0`, `v1.4.0`).
    Exact(Version),
}

impl FromStr for Bump {
    type Err = String;

    fn from_str(text: &str) -> Result<Bump, String> {
        match text {
            "patch" => Ok(Bump::Patch),
            "minor" => Ok(Bump::Minor),
            "major" => Ok(Bump::Major),
            _ => parse_semver_tag(text).map(Bump::Exact).ok_or_else(|| {
                format!(
                    "`{text}` is neither patch, minor, major nor a SemVer version such as 1.4.0"
                )
            }),
        }
    }
}

/// What `cargo gitops release` is asked for.
#[derive(Debug, Clone)]
pub struct ReleaseRequest {
    pub bump: Bump,
    /// A production channel (`alpha`): the release is its next pre-release `X.Y.Z-alpha.N`.
    pub channel: Option<String>,
    /// Release from a branch other than the staging branch, or a tag no environment tracks.
    pub force: bool,
    /// The annotated tag's message [default: `Release TAG`].
    pub message: Option<String>,
}

/// A release, worked out and checked, not yet made.
#[derive(Debug, Clone, Serialize)]
pub struct ReleasePlan {
    pub tag: String,
    pub version: String,
    /// The highest earlier release this one follows (the channel's, for a pre-release).
    pub previous: Option<String>,
    /// The commit the tag goes on (HEAD), 40 hex digits.
    pub commit: String,
    /// The environment the tag deploys to.
    pub environment: Option<String>,
    pub message: String,
    #[serde(skip)]
    workdir: PathBuf,
}

/// The repository around `cwd`, with a working tree.
pub(super) fn open(cwd: &Path) -> Result<(Repository, PathBuf), Error> {
    let repo = Repository::discover(cwd).map_err(|err| match err.code() {
        ErrorCode::NotFound => Error::NotARepository {
            path: cwd.to_path_buf(),
        },
        _ => err.into(),
    })?;
    let workdir = repo.workdir().map(Path::to_path_buf).ok_or_else(|| {
        Error::Refused(
            "the repository has no working tree (it is bare); run this in a clone".to_owned(),
        )
    })?;
    Ok((repo, workdir))
}

/// The checked-out branch; `None` on a detached HEAD.
pub(super) fn current_branch(repo: &Repository) -> Result<Option<String>, Error> {
    let head = repo.head()?;
    if !head.is_branch() {
        return Ok(None);
    }
    Ok(head.shorthand().ok().map(str::to_owned))
}

pub(super) fn short(oid: Oid) -> String {
    oid.to_string()[..7].to_owned()
}

/// Refuses when tracked files have changes that are not committed: the tag would name a
/// commit that is not what the working tree holds. Untracked files are not part of any commit
/// and do not count.
fn check_clean(repo: &Repository) -> Result<(), Error> {
    let mut options = StatusOptions::new();
    options
        .include_untracked(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut options))?;
    let changed: Vec<String> = statuses
        .iter()
        .filter(|entry| !entry.status().is_empty())
        .filter_map(|entry| entry.path().ok().map(str::to_owned))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = changed.iter().take(3).map(String::as_str).collect();
    let more = if changed.len() > shown.len() {
        format!(" and {} more", changed.len() - shown.len())
    } else {
        String::new()
    };
    Err(Error::Refused(format!(
        "the working tree has uncommitted changes ({}{more}); commit or stash them first",
        shown.join(", ")
    )))
}

/// The branches releases are cut from: those of the first environment, in configured order,
/// that follows fixed branches (no pattern), as staging does with `main` in the defaults. A
/// release tags what that environment runs, so production gets what it tested.
fn release_branches(config: &Config) -> Option<(&str, &[BranchPattern])> {
    config
        .environments
        .iter()
        .find(|env| {
            !env.branches.is_empty() && !env.branches.iter().any(BranchPattern::has_wildcard)
        })
        .map(|env| (env.name.as_str(), env.branches.as_slice()))
}

fn check_on_release_branch(repo: &Repository, config: &Config) -> Result<(), Error> {
    let Some((environment, patterns)) = release_branches(config) else {
        return Ok(());
    };
    let current = current_branch(repo)?;
    if current
        .as_deref()
        .is_some_and(|branch| patterns.iter().any(|p| p.matches(branch)))
    {
        return Ok(());
    }
    let names: Vec<&str> = patterns.iter().map(BranchPattern::as_str).collect();
    let at = match &current {
        Some(branch) => format!("HEAD is on `{branch}`"),
        None => "HEAD is detached".to_owned(),
    };
    Err(Error::Refused(format!(
        "{at}, not on `{}`, the branch of environment `{environment}`: release what it runs (git switch {}), or pass --force",
        names.join("`, `"),
        names[0]
    )))
}

/// The repository's SemVer tags, with the version each one reads as.
fn semver_tags(repo: &Repository) -> Result<Vec<(String, Version)>, Error> {
    let names = repo.tag_names(None)?;
    Ok(names
        .iter()
        // Tag names that are not UTF-8 cannot be SemVer.
        .filter_map(|name| name.ok().flatten())
        .filter_map(|name| parse_semver_tag(name).map(|v| (name.to_owned(), v)))
        .collect())
}

/// The pre-release channel of a version: its first identifier without trailing digits
/// (`alpha.2` and `alpha2` are both `alpha`).
fn channel_of(version: &Version) -> Option<&str> {
    let first = version.pre.as_str().split('.').next()?;
    let channel = first.trim_end_matches(|c: char| c.is_ascii_digit());
    (!channel.is_empty()).then_some(channel)
}

/// How a repository writes its channel pre-releases: `alpha.2` (the default) or `alpha2`, as
/// its newest tag of that channel does.
fn channel_label(existing: &[(String, Version)], channel: &str, number: u64) -> String {
    let newest = existing
        .iter()
        .filter(|(_, v)| channel_number(v, channel).is_some())
        .max_by(|a, b| a.1.cmp_precedence(&b.1));
    let dotted = newest.is_none_or(|(_, v)| v.pre.as_str().starts_with(&format!("{channel}.")));
    if dotted {
        format!("{channel}.{number}")
    } else {
        format!("{channel}{number}")
    }
}

/// The number of a channel pre-release: `alpha.3` and `alpha3` are both 3.
fn channel_number(version: &Version, channel: &str) -> Option<u64> {
    let pre = version.pre.as_str();
    let rest = pre.strip_prefix(channel)?;
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    rest.parse().ok()
}

fn bumped(base: &Version, bump: &Bump) -> Result<Version, Error> {
    let next = |n: u64| {
        n.checked_add(1).ok_or_else(|| {
            Error::Refused(format!(
                "{base} cannot be bumped: a number would pass {}; give the version to release",
                u64::MAX
            ))
        })
    };
    Ok(match bump {
        Bump::Patch => Version::new(base.major, base.minor, next(base.patch)?),
        Bump::Minor => Version::new(base.major, next(base.minor)?, 0),
        Bump::Major => Version::new(next(base.major)?, 0, 0),
        Bump::Exact(version) => version.clone(),
    })
}

/// Works out the next release and checks that it may be made: a clean working tree, HEAD on
/// the staging branch (unless forced), a tag that does not exist yet, and a version above the
/// current one.
pub fn plan_release(
    config: &Config,
    cwd: &Path,
    request: &ReleaseRequest,
) -> Result<ReleasePlan, Error> {
    check_channel_request(request)?;
    let (repo, workdir) = open(cwd)?;
    let head = git::head_commit(&repo)?;
    check_clean(&repo)?;
    if !request.force {
        check_on_release_branch(&repo, config)?;
    }

    let existing = semver_tags(&repo)?;
    let version = next_version(config, &existing, request)?;
    let tag = format!("{}{version}", tag_prefix(&existing));
    check_tag_is_new(&repo, &tag)?;
    let current = current_release(&existing, &version);
    // Precedence, as SemVer defines it: build metadata does not make a version higher.
    if let Some((current_tag, current_version)) = current
        && version.cmp_precedence(current_version).is_le()
    {
        return Err(Error::Refused(format!(
            "{tag} is not above the current release {current_tag}; give a higher version"
        )));
    }

    let environment = environment::resolve(&config.environments, &GitRef::Tag(tag.clone()))
        .map(|m| m.environment.name.clone());
    if environment.is_none() && !request.force {
        return Err(Error::Refused(format!(
            "no environment tracks tag {tag}, so it would deploy nowhere; configure the channel's environment, or pass --force"
        )));
    }

    Ok(ReleasePlan {
        message: request
            .message
            .clone()
            .unwrap_or_else(|| format!("Release {tag}")),
        tag,
        version: version.to_string(),
        previous: current.map(|(name, _)| name.clone()),
        commit: head.to_string(),
        environment,
        workdir,
    })
}

/// A `--channel` must be a plain name, and cannot be added to a version that already has a
/// pre-release or build part.
fn check_channel_request(request: &ReleaseRequest) -> Result<(), Error> {
    let Some(channel) = &request.channel else {
        return Ok(());
    };
    if channel.is_empty() || !channel.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::usage(format!(
            "--channel `{channel}` is not a channel name; use letters and digits, e.g. alpha"
        )));
    }
    if let Bump::Exact(version) = &request.bump
        && (!version.pre.is_empty() || !version.build.is_empty())
    {
        return Err(Error::usage(format!(
            "{version} already has a pre-release or build part; give X.Y.Z with --channel, or drop --channel"
        )));
    }
    Ok(())
}

/// The repository's habit decides the `v`; a first release gets one, as in `v1.2.3`.
fn tag_prefix(existing: &[(String, Version)]) -> &'static str {
    match existing.iter().max_by(|a, b| a.1.cmp_precedence(&b.1)) {
        Some((name, _)) if !name.starts_with('v') => "",
        _ => "v",
    }
}

/// The version to release: the bump from the highest stable release, then, with a channel,
/// that version's next pre-release in the channel.
fn next_version(
    config: &Config,
    existing: &[(String, Version)],
    request: &ReleaseRequest,
) -> Result<Version, Error> {
    let stable = existing
        .iter()
        .filter(|(_, v)| v.pre.is_empty())
        .max_by(|a, b| a.1.cmp_precedence(&b.1));
    let base = stable.map_or(Version::new(0, 0, 0), |(_, v)| {
        Version::new(v.major, v.minor, v.patch)
    });

    // The first release is the package's own version (a crate at 0.3.0 releases v0.3.0), or
    // a bump from 0.0.0 where there is no package version.
    let first = stable
        .is_none()
        .then(|| crate::build::labels::package_version(config))
        .flatten()
        .and_then(|text| Version::parse(&text).ok())
        .filter(|v| *v > Version::new(0, 0, 0));
    let mut version = match (&request.bump, first) {
        (Bump::Exact(_), _) | (_, None) => bumped(&base, &request.bump)?,
        (_, Some(version)) => Version::new(version.major, version.minor, version.patch),
    };
    if let Some(channel) = &request.channel {
        let next = existing
            .iter()
            .filter(|(_, v)| {
                (v.major, v.minor, v.patch) == (version.major, version.minor, version.patch)
            })
            .filter_map(|(_, v)| channel_number(v, channel))
            .max()
            .map_or(1, |n| n.saturating_add(1));
        version.pre = Prerelease::new(&channel_label(existing, channel, next)).map_err(|e| {
            Error::usage(format!(
                "--channel `{channel}` does not make a valid pre-release: {e}"
            ))
        })?;
        version.build = BuildMetadata::EMPTY;
    }
    Ok(version)
}

fn check_tag_is_new(repo: &Repository, tag: &str) -> Result<(), Error> {
    let Ok(reference) = repo.find_reference(&format!("refs/tags/{tag}")) else {
        return Ok(());
    };
    let at = reference
        .peel_to_commit()
        .map(|c| format!(" (on {})", short(c.id())))
        .unwrap_or_default();
    Err(Error::Refused(format!(
        "tag {tag} already exists{at}; pick another version"
    )))
}

/// The release `version` must pass. A stable release follows the highest stable one; a
/// pre-release must also pass its own channel's highest, or the channel's policy would not
/// pick it.
fn current_release<'a>(
    existing: &'a [(String, Version)],
    version: &Version,
) -> Option<&'a (String, Version)> {
    existing
        .iter()
        .filter(|(_, v)| {
            v.pre.is_empty() || (!version.pre.is_empty() && channel_of(v) == channel_of(version))
        })
        .max_by(|a, b| a.1.cmp_precedence(&b.1))
}

impl ReleasePlan {
    /// The git command that makes the same tag, for `--dry-run`.
    pub fn tag_command(&self) -> Command {
        Command::new("git")
            .args(["tag", "-a", &self.tag, "-m", &self.message, &self.commit])
            .current_dir(&self.workdir)
    }

    /// `git push origin TAG`.
    pub fn push_command(&self) -> Command {
        Command::new("git")
            .args(["push", REMOTE, &self.tag])
            .current_dir(&self.workdir)
    }

    /// Creates the annotated tag, signed by git's committer identity (configuration, then
    /// `GIT_COMMITTER_*`, as `git tag` does).
    pub fn create(&self) -> Result<(), Error> {
        let (repo, _) = open(&self.workdir)?;
        let tagger = repo.committer_from_env().map_err(|err| match err.code() {
            ErrorCode::NotFound => Error::MissingIdentity,
            _ => err.into(),
        })?;
        let target = repo.find_object(Oid::from_str(&self.commit)?, None)?;
        repo.tag(&self.tag, &target, &tagger, &self.message, false)?;
        Ok(())
    }
}

/// Refuses early, before anything changes, when there is no remote to push to.
pub fn check_remote(cwd: &Path) -> Result<(), Error> {
    let (repo, _) = open(cwd)?;
    match repo.find_remote(REMOTE) {
        Ok(_) => Ok(()),
        Err(err) if err.code() == ErrorCode::NotFound => Err(Error::Refused(format!(
            "the repository has no remote `{REMOTE}` to push to; add it (git remote add {REMOTE} URL), or drop --push"
        ))),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn bumps() {
        let base = v("1.2.3");
        assert_eq!(bumped(&base, &Bump::Patch).unwrap(), v("1.2.4"));
        assert_eq!(bumped(&base, &Bump::Minor).unwrap(), v("1.3.0"));
        assert_eq!(bumped(&base, &Bump::Major).unwrap(), v("2.0.0"));
        let huge = v("18446744073709551615.0.0");
        assert!(matches!(
            bumped(&huge, &Bump::Major),
            Err(Error::Refused(_))
        ));
        assert_eq!("v2.0.0".parse::<Bump>().unwrap(), Bump::Exact(v("2.0.0")));
        assert!("2.0".parse::<Bump>().is_err());
    }

    #[test]
    fn channels() {
        assert_eq!(channel_of(&v("1.1.0-alpha.2")), Some("alpha"));
        assert_eq!(channel_of(&v("1.1.0-alpha2")), Some("alpha"));
        assert_eq!(channel_of(&v("1.1.0")), None);
        assert_eq!(channel_number(&v("1.1.0-alpha.2"), "alpha"), Some(2));
        assert_eq!(channel_number(&v("1.1.0-alpha7"), "alpha"), Some(7));
        assert_eq!(channel_number(&v("1.1.0-beta.1"), "alpha"), None);
        assert_eq!(channel_number(&v("1.1.0-alpha.x"), "alpha"), None);
    }
}
