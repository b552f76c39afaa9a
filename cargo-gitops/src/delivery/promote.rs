//! Promotions to branch-tracked environments: fast-forward the environment's branch (e.g.
//! `test/uat1`) to HEAD, or name the pull request that asks for it. It only moves refs: the
//! images follow when the pipeline runs for the pushed branch. Tags are `release`'s.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};
use serde::Serialize;

use super::release::{REMOTE, current_branch, open, short};
use crate::config::Config;
use crate::environment::{self, BranchPattern, Environment, GitRef};
use crate::error::Error;
use crate::git;
use crate::process::Command;

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
    for (tip, place) in [(local, "locally"), (remote, "at origin")] {
        let Some(tip) = tip else { continue };
        if tip == head || repo.graph_descendant_of(head, tip)? {
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
    // The commits the move brings, counted from where the branch is shown to move from.
    let commits = match local.or(remote) {
        Some(tip) if tip == head => 0,
        Some(tip) if repo.graph_descendant_of(head, tip)? => commits_missing(&repo, head, tip)?,
        Some(_) => 0,
        None => {
            let mut walk = repo.revwalk()?;
            walk.push(head)?;
            walk.count()
        }
    };
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
