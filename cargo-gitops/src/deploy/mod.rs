//! `cargo gitops deploy`: after `build`, the environment's new image is written into the GitOps
//! manifests (kustomize `images:`, Flux setter markers, Helm values), keeping every other byte,
//! as one commit per environment per run, pushed fast-forward only with a bounded
//! fetch-and-redo when another writer got there first. A rerun for the same commit changes
//! nothing. Configuration is `config`'s (`deploy` table); the registry lookups are
//! `registry`'s; building images is `build`'s.

pub mod edit;
pub mod flux_markers;
pub mod helm;
pub mod kustomize;
pub mod plan;
pub mod repository;
pub mod source;
pub mod yaml;

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, DeployMode, DeployTarget};
use crate::delivery::flux::object_name;
use crate::environment::Environment;
use crate::error::Error;

pub use edit::Image;
pub use plan::{ImagePlan, Plan, Request};
use repository::{Checkout, Pushed, Token};

/// How many times a push is tried before the run gives up on a branch others keep moving.
pub const MAX_ATTEMPTS: u32 = 8;

/// The images of one environment that go to one repository and branch: one commit.
#[derive(Debug, Clone)]
pub struct Group {
    pub environment: String,
    /// The manifests repository's URL.
    pub repository: String,
    pub branch: Option<String>,
    pub mode: DeployMode,
    pub credential: Option<String>,
    pub source_ref: String,
    pub source_sha: String,
    pub requests: Vec<Request>,
}

/// What a deploy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Result {
    /// One commit pushed.
    Committed,
    /// The manifests already name every image: no commit.
    UpToDate,
    /// `--dry-run`: the plan, not acted on.
    DryRun,
}

/// One environment's deploy, as `--format json` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub environment: String,
    pub repository: String,
    pub branch: String,
    pub mode: DeployMode,
    pub result: Result,
    /// The commit pushed.
    pub commit: Option<String>,
    /// Pushes tried (more than one when another writer moved the branch first).
    pub attempts: u32,
    pub source_commit: String,
    pub images: Vec<ImagePlan>,
    /// The exact change, as a unified diff.
    pub diff: String,
}

/// The Flux policy that stands for `image` in `environment`, as `cargo gitops flux` names it
/// for an environment that does not tag per branch.
pub fn default_flux_policy(image_name: &str, environment: &Environment) -> String {
    let last = image_name.rsplit('/').next().unwrap_or(image_name);
    let prefix = object_name(&[last]);
    format!("flux-system:{}", object_name(&[&prefix, &environment.name]))
}

/// The request for one image of `config` in `environment`, and where it goes.
pub fn request_for(
    config: &Config,
    environment: &Environment,
    image: Image,
) -> Option<(DeployTarget, Request)> {
    let settings = config.deploy.as_ref()?;
    let target = settings.target(environment);
    let request = Request {
        flux_policy: target
            .flux_policy
            .clone()
            .unwrap_or_else(|| default_flux_policy(&image.name, environment)),
        image,
        path: target.path.clone(),
        helm: target.helm.clone(),
    };
    Some((target, request))
}

fn token(credential: Option<&str>) -> std::result::Result<Option<Token>, Error> {
    let Some(variable) = credential else {
        return Ok(None);
    };
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Ok(Some(Token {
            variable: variable.to_owned(),
            value,
        })),
        _ => Err(Error::usage(format!(
            "`deploy.credential` names ${variable}, which is not set; set it to a token that may write to the manifests repository"
        ))),
    }
}

/// A pause before the next try that differs between concurrent writers.
fn backoff(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = u64::from((nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % 100);
    Duration::from_millis(20 * u64::from(attempt) + jitter)
}

/// Deploys one group: clone, plan, and (unless `dry_run`) commit and push, redoing the plan
/// on the new tip when the push is rejected.
pub fn run(group: &Group, dry_run: bool) -> std::result::Result<Outcome, Error> {
    if group.mode == DeployMode::PullRequest {
        return Err(Error::usage(format!(
            "environment `{}` deploys by pull request, which cargo gitops cannot open yet; set `mode = \"push\"` in its deploy table",
            group.environment
        )));
    }
    let token = token(group.credential.as_deref())?;
    let checkout = Checkout::clone(&group.repository, group.branch.as_deref(), token)?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let ours = |digest: &str| checkout.wrote(digest);
        let plan = plan::make(
            checkout.worktree(),
            &group.environment,
            &group.source_ref,
            &group.source_sha,
            &group.requests,
            &ours,
        )?;
        let outcome = |result, commit| Outcome {
            environment: group.environment.clone(),
            repository: group.repository.clone(),
            branch: checkout.branch.clone(),
            mode: group.mode,
            result,
            commit,
            attempts,
            source_commit: group.source_sha.clone(),
            images: plan.images.clone(),
            diff: plan.diff(),
        };
        if dry_run {
            return Ok(outcome(Result::DryRun, None));
        }
        if !plan.changes() {
            return Ok(outcome(Result::UpToDate, None));
        }
        for file in &plan.files {
            crate::files::write_whole(
                &checkout.worktree().join(&file.path),
                file.after.as_bytes(),
            )?;
        }
        let paths: Vec<String> = plan.files.iter().map(|f| f.path.clone()).collect();
        let commit = checkout.commit(&paths, &plan.message())?;
        match checkout.push()? {
            Pushed::Landed => return Ok(outcome(Result::Committed, Some(commit))),
            Pushed::Rejected if attempts >= MAX_ATTEMPTS => {
                return Err(Error::Deploy(format!(
                    "the manifests branch {} of {} kept moving: {attempts} pushes were rejected; run the deploy again",
                    checkout.branch, group.repository
                )));
            }
            Pushed::Rejected => {
                std::thread::sleep(backoff(attempts));
                checkout.refresh()?;
            }
        }
    }
}
