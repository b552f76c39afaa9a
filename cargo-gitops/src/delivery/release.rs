//! The git side of promotion. A release is the next SemVer tag, computed from the tags the
//! repository has and created annotated on HEAD; a promotion fast-forwards a branch-tracked
//! environment's branch to HEAD, or names the pull request that does it. Both only move refs:
//! the images follow when the pipeline runs for the pushed ref, which is `pipeline`'s job.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use git2::{ErrorCode, Oid, Repository, StatusOptions};
use semver::{BuildMetadata, Prerelease, Version};
use serde::Serialize;

use crate::config::Config;
use crate::environment::{self, BranchPattern, Environment, GitRef, parse_semver_tag};
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
fn open(cwd: &Path) -> Result<(Repository, PathBuf), Error> {
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
fn current_branch(repo: &Repository) -> Result<Option<String>, Error> {
    let head = repo.head()?;
    if !head.is_branch() {
        return Ok(None);
    }
    Ok(head.shorthand().ok().map(str::to_owned))
}

fn short(oid: Oid) -> String {
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

/// The branches the staging environment tracks: releases are cut from what staging runs.
fn staging_branches(config: &Config) -> Vec<BranchPattern> {
    config
        .environments
        .iter()
        .find(|env| env.name == "staging" && !env.branches.is_empty())
        .map(|env| env.branches.clone())
        .unwrap_or_else(|| vec![BranchPattern::new("main").expect("a valid pattern")])
}

fn check_on_staging(repo: &Repository, config: &Config) -> Result<(), Error> {
    let patterns = staging_branches(config);
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
        "{at}, not on the staging branch `{}`: release what staging runs (git switch {}), or pass --force",
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
    if let Some(channel) = &request.channel {
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
    }
    let (repo, workdir) = open(cwd)?;
    let head = git::head_commit(&repo)?;
    check_clean(&repo)?;
    if !request.force {
        check_on_staging(&repo, config)?;
    }

    let existing = semver_tags(&repo)?;
    let highest = existing.iter().max_by(|a, b| a.1.cmp_precedence(&b.1));
    // The repository's habit decides the `v`; a first release gets one, as in `v1.2.3`.
    let prefix = match highest {
        Some((name, _)) if !name.starts_with('v') => "",
        _ => "v",
    };
    let stable = existing
        .iter()
        .filter(|(_, v)| v.pre.is_empty())
        .max_by(|a, b| a.1.cmp_precedence(&b.1));
    let base = stable.map_or(Version::new(0, 0, 0), |(_, v)| {
        Version::new(v.major, v.minor, v.patch)
    });

    let mut version = bumped(&base, &request.bump)?;
    if let Some(channel) = &request.channel {
        let next = existing
            .iter()
            .filter(|(_, v)| {
                (v.major, v.minor, v.patch) == (version.major, version.minor, version.patch)
            })
            .filter_map(|(_, v)| channel_number(v, channel))
            .max()
            .map_or(1, |n| n.saturating_add(1));
        version.pre = Prerelease::new(&format!("{channel}.{next}")).map_err(|e| {
            Error::usage(format!(
                "--channel `{channel}` does not make a valid pre-release: {e}"
            ))
        })?;
        version.build = BuildMetadata::EMPTY;
    }
    let tag = format!("{prefix}{version}");

    if let Ok(reference) = repo.find_reference(&format!("refs/tags/{tag}")) {
        let at = reference
            .peel_to_commit()
            .map(|c| format!(" (on {})", short(c.id())))
            .unwrap_or_default();
        return Err(Error::Refused(format!(
            "tag {tag} already exists{at}; pick another version"
        )));
    }

    // A stable release follows the highest stable one; a pre-release must also pass its own
    // channel's highest, or the channel's policy would not pick it.
    let current = existing
        .iter()
        .filter(|(_, v)| {
            v.pre.is_empty() || (!version.pre.is_empty() && channel_of(v) == channel_of(&version))
        })
        .max_by(|a, b| a.1.cmp_precedence(&b.1));
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

/// How a promotion reaches the environment's branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromoteMode {
    /// Fast-forward the local branch only.
    Move,
    /// Fast-forward it and push it to `origin`.
    Push,
    /// Print the pull request that asks for it (the methodology's approval workflow).
    PullRequest,
}

/// A promotion, worked out and checked, not yet made.
#[derive(Debug, Clone, Serialize)]
pub struct Promotion {
    pub environment: String,
    pub branch: String,
    /// Where the branch is now (locally, else at `origin`); `None` when it does not exist yet.
    pub from: Option<String>,
    /// HEAD, where it goes.
    pub to: String,
    /// Commits the branch gains.
    pub commits: usize,
    /// The checked-out branch, the pull request's head.
    pub current: Option<String>,
    #[serde(skip)]
    workdir: PathBuf,
}

/// The configured environment called `name`; the error lists the ones there are.
pub fn find_environment<'c>(config: &'c Config, name: &str) -> Result<&'c Environment, Error> {
    config
        .environments
        .iter()
        .find(|env| env.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = config
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            Error::usage(format!(
                "no environment named `{name}`; the configured ones are {}",
                names.join(", ")
            ))
        })
}

/// The branch of a branch-tracked environment: the one given, checked against the
/// environment's patterns, or its only branch when it names exactly one.
fn environment_branch(
    config: &Config,
    env: &Environment,
    given: Option<&str>,
) -> Result<String, Error> {
    if env.branches.is_empty() {
        return Err(Error::usage(format!(
            "environment `{}` follows tags, not a branch: promote to it with `cargo gitops release`",
            env.name
        )));
    }
    let patterns: Vec<&str> = env.branches.iter().map(BranchPattern::as_str).collect();
    let branch = match given {
        Some(branch) => branch.to_owned(),
        None => match env.branches.as_slice() {
            [only] if !only.has_wildcard() => only.as_str().to_owned(),
            _ => {
                return Err(Error::usage(format!(
                    "environment `{}` follows `{}`: name its branch with --branch",
                    env.name,
                    patterns.join("`, `")
                )));
            }
        },
    };
    match environment::resolve(&config.environments, &GitRef::Branch(branch.clone())) {
        Some(found) if found.environment.name == env.name => Ok(branch),
        Some(found) if env.branches.iter().any(|p| p.matches(&branch)) => {
            Err(Error::usage(format!(
                "branch `{branch}` belongs to environment `{}`, which comes first; promote to that one",
                found.environment.name
            )))
        }
        _ => Err(Error::usage(format!(
            "branch `{branch}` is not one of environment `{}`'s (`{}`)",
            env.name,
            patterns.join("`, `")
        ))),
    }
}

/// How many commits `tip` has that `head` does not.
fn commits_missing(repo: &Repository, tip: Oid, head: Oid) -> Result<usize, Error> {
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    walk.hide(head)?;
    Ok(walk.count())
}

/// Works out a promotion of HEAD to `environment` and checks it: the environment follows a
/// branch, and (unless it is a pull request, which may merge) the branch can fast-forward to
/// HEAD both locally and at `origin` as last fetched.
pub fn plan_promotion(
    config: &Config,
    cwd: &Path,
    environment: &str,
    branch: Option<&str>,
    mode: PromoteMode,
) -> Result<Promotion, Error> {
    let env = find_environment(config, environment)?;
    let branch = environment_branch(config, env, branch)?;
    let (repo, workdir) = open(cwd)?;
    let head = git::head_commit(&repo)?;
    let current = current_branch(&repo)?;

    if mode == PromoteMode::PullRequest {
        match current.as_deref() {
            None => {
                return Err(Error::Refused(
                    "HEAD is detached, and a pull request needs a branch: switch to the branch to promote".to_owned(),
                ));
            }
            Some(name) if name == branch => {
                return Err(Error::Refused(format!(
                    "HEAD is on `{branch}` itself; switch to the branch to promote into it"
                )));
            }
            Some(_) => {}
        }
    }

    let local = repo
        .find_reference(&format!("refs/heads/{branch}"))
        .ok()
        .and_then(|r| r.peel_to_commit().ok())
        .map(|c| c.id());
    let remote = repo
        .find_reference(&format!("refs/remotes/{REMOTE}/{branch}"))
        .ok()
        .and_then(|r| r.peel_to_commit().ok())
        .map(|c| c.id());
    let mut commits = 0;
    for (tip, place) in [(local, "locally"), (remote, "at origin")] {
        let Some(tip) = tip else { continue };
        if tip == head {
            continue;
        }
        if repo.graph_descendant_of(head, tip)? {
            commits = commits.max(commits_missing(&repo, head, tip)?);
            continue;
        }
        if mode == PromoteMode::PullRequest {
            continue;
        }
        let missing = commits_missing(&repo, tip, head)?;
        return Err(Error::Refused(format!(
            "`{branch}` cannot fast-forward to HEAD ({}): {place} it is at {}, with {missing} commit{} HEAD does not have; merge `{branch}` into your branch first, or open a pull request with --pr",
            short(head),
            short(tip),
            if missing == 1 { "" } else { "s" }
        )));
    }
    if local.is_none() && remote.is_none() {
        let mut walk = repo.revwalk()?;
        walk.push(head)?;
        commits = walk.count();
    }
    Ok(Promotion {
        environment: env.name.clone(),
        branch,
        from: local.or(remote).map(|oid| oid.to_string()),
        to: head.to_string(),
        commits,
        current,
        workdir,
    })
}

impl Promotion {
    /// Whether the branch is already at HEAD (locally, or at `origin` when it is not local).
    pub fn is_noop(&self) -> bool {
        self.from.as_deref() == Some(self.to.as_str())
    }

    /// The git command that moves the branch the same way, for `--dry-run`.
    pub fn move_command(&self) -> Command {
        Command::new("git")
            .args(["branch", "--force", &self.branch, &self.to])
            .current_dir(&self.workdir)
    }

    /// `git push origin HEAD:refs/heads/BRANCH`.
    pub fn push_command(&self) -> Command {
        Command::new("git")
            .args([
                "push".to_owned(),
                REMOTE.to_owned(),
                format!("HEAD:refs/heads/{}", self.branch),
            ])
            .current_dir(&self.workdir)
    }

    /// The `gh` command that opens the pull request from the current branch.
    pub fn pull_request_command(&self) -> Command {
        let head = self.current.clone().unwrap_or_default();
        let sha = &self.to[..7];
        Command::new("gh").args([
            "pr".to_owned(),
            "create".to_owned(),
            "--base".to_owned(),
            self.branch.clone(),
            "--head".to_owned(),
            head.clone(),
            "--title".to_owned(),
            format!("Promote {head} ({sha}) to {}", self.environment),
            "--body".to_owned(),
            format!(
                "Promotes `{head}` at {sha} to environment `{}` (branch `{}`). Merging deploys it.",
                self.environment, self.branch
            ),
        ])
    }

    /// Moves the local branch to HEAD. The plan checked that this is a fast-forward.
    pub fn move_branch(&self) -> Result<(), Error> {
        let (repo, _) = open(&self.workdir)?;
        let to = Oid::from_str(&self.to)?;
        let name = format!("refs/heads/{}", self.branch);
        let message = format!("cargo gitops promote: fast-forward to {}", short(to));
        match repo.find_reference(&name) {
            // Only from the commit the plan saw, so a concurrent change is not overwritten.
            Ok(reference) => {
                let from = reference.target().unwrap_or(to);
                repo.reference_matching(&name, to, true, from, &message)?;
            }
            Err(_) => {
                repo.reference(&name, to, false, &message)?;
            }
        }
        Ok(())
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
