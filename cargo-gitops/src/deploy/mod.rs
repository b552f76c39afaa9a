//! `cargo gitops deploy`: after `build`, the environment's new image is written into the GitOps
//! manifests (kustomize `images:`, Flux setter markers, Helm values), keeping every other byte,
//! as one commit per environment per run, pushed fast-forward only with a bounded
//! fetch-and-redo when another writer got there first. A rerun for the same commit changes
//! nothing. Configuration is `config`'s (`deploy` table); the registry lookups are
//! `registry`'s; building images is `build`'s.

pub mod edit;
pub mod flux_markers;
pub mod forge;
pub mod helm;
pub mod kustomize;
pub mod plan;
pub mod repository;
pub mod source;
pub mod yaml;

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, DeployMode, DeployTarget, ForgeKind};
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
    /// Pull-request mode: the forge, its API and project when configured.
    pub forge: Option<ForgeKind>,
    pub forge_api: Option<String>,
    pub forge_project: Option<String>,
    pub source_ref: String,
    pub source_sha: String,
    pub requests: Vec<Request>,
    /// What the promotion gates said, one line per image, for the commit message.
    pub gates: Vec<String>,
    /// What each image carries, by image name: for the pull request's body.
    pub evidence: Vec<(String, Evidence)>,
    /// The source repository's clone, where the commits between an old and a new image are
    /// read for the pull request's body.
    pub source_dir: Option<std::path::PathBuf>,
}

/// Whether an image carries a signature and a provenance statement (present, not verified:
/// the gates verify).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub signed: bool,
    pub provenance: bool,
}

impl Evidence {
    /// Reads what is attached to `digest` in `repository`.
    pub fn of(
        client: &crate::registry::client::RegistryClient,
        repository: &crate::registry::client::Repository,
        digest: &str,
    ) -> Result<Evidence, Error> {
        let digest = crate::registry::client::Digest::parse(digest)
            .map_err(|e| Error::Internal(format!("the registry gave a bad digest: {e}")))?;
        let tags = client.list_tags(&repository.name)?;
        let signed = crate::supply::sign::Signatures::new(client, &repository.name, &tags)
            .signed(&digest)?;
        let provenance = !crate::registry::referrers::list(
            client,
            &repository.name,
            &digest,
            Some(crate::supply::provenance::MEDIA_TYPE),
        )?
        .is_empty();
        Ok(Evidence { signed, provenance })
    }
}

/// What a deploy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Done {
    /// One commit pushed.
    Committed,
    /// The manifests already name every image: no commit.
    UpToDate,
    /// One commit pushed to the deploy's own branch, and its pull request opened.
    PullRequestOpened,
    /// One commit pushed to the deploy's own branch, and its open pull request updated.
    PullRequestUpdated,
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
    pub result: Done,
    /// The commit pushed.
    pub commit: Option<String>,
    /// Pull-request mode: the branch the commit went to, and the request.
    pub pull_request_branch: Option<String>,
    pub pull_request: Option<forge::PullRequest>,
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

fn token(credential: Option<&str>) -> Result<Option<Token>, Error> {
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

/// The branch of pull-request mode: stable for an environment and its set of images, so that
/// a later run updates its own request instead of opening another.
pub fn pull_request_branch(group: &Group) -> String {
    let mut names: Vec<&str> = group
        .requests
        .iter()
        .map(|r| r.image.name.rsplit('/').next().unwrap_or(&r.image.name))
        .collect();
    names.sort_unstable();
    names.dedup();
    let services = match names.as_slice() {
        [one] => object_name(&[one]),
        _ => {
            use sha2::Digest as _;
            let hash = sha2::Sha256::digest(names.join(",").as_bytes());
            let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("{}-images-{hex}", names.len())
        }
    };
    format!(
        "cargo-gitops/{}/{services}",
        object_name(&[&group.environment])
    )
}

/// The pull request's title and body: each image's old and new tag and digest, the source
/// commit, and the commit message's trailers left out.
fn pull_request_text(
    plan: &Plan,
    evidence: &[(String, Evidence)],
    commits: &[(String, Option<Vec<String>>)],
) -> (String, String) {
    let title = plan.message().lines().next().unwrap_or_default().to_owned();
    let mut body = format!(
        "Deploys commit `{}` ({}) to environment `{}`.\n\n| image | from | to | signed | provenance |\n|---|---|---|---|---|\n",
        plan.source_sha, plan.source_ref, plan.environment
    );
    let yes_no = |known: Option<bool>| match known {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    for image in &plan.images {
        let carried = evidence
            .iter()
            .find(|(name, _)| *name == image.image)
            .map(|(_, e)| *e);
        body.push_str(&format!(
            "| `{}` | `{}` | `{}@{}` | {} | {} |\n",
            image.image,
            plan::old_reference(image),
            image.tag,
            image.digest,
            yes_no(carried.map(|e| e.signed)),
            yes_no(carried.map(|e| e.provenance)),
        ));
    }
    if !commits.is_empty() {
        body.push_str("\nSource commits since the image each replaces:\n\n");
        for (image, list) in commits {
            let shown = match list {
                Some(list) if list.is_empty() => "none".to_owned(),
                Some(list) => list
                    .iter()
                    .map(|sha| format!("`{}`", &sha[..sha.len().min(7)]))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => "not in this clone's history (fetch it whole to list them)".to_owned(),
            };
            body.push_str(&format!("- `{image}`: {shown}\n"));
        }
    }
    if !plan.gates.is_empty() {
        // Quoted as a block: a skip's reason is free text.
        body.push_str("\nGates:\n\n```text\n");
        for gates in &plan.gates {
            body.push_str(&gates.replace('`', "'"));
            body.push('\n');
        }
        body.push_str("```\n");
    }
    body.push_str("\nOpened by `cargo gitops deploy`; a later deploy of this environment updates this pull request.\n");
    (title, body)
}

/// For each image that replaces one this tool wrote, the source commits after that image's
/// up to this one (oldest first, at most 100; `None` where the source clone lacks them).
fn source_commits(
    group: &Group,
    checkout: &Checkout,
    plan: &Plan,
) -> Vec<(String, Option<Vec<String>>)> {
    let Some(dir) = &group.source_dir else {
        return Vec::new();
    };
    plan.images
        .iter()
        .filter_map(|image| {
            let from = checkout.source_of(image.old_digest.as_deref()?)?;
            let listed = crate::process::Command::new("git")
                .arg("-C")
                .arg(dir.display().to_string())
                .args(["rev-list", "--reverse", "--max-count=100"])
                .arg(format!("{from}..{}", group.source_sha))
                .run()
                .ok()
                .map(|output| {
                    String::from_utf8_lossy(&output.stdout)
                        .lines()
                        .filter(|line| crate::tags::is_sha40(line))
                        .map(str::to_owned)
                        .collect()
                });
            Some((image.image.clone(), listed))
        })
        .collect()
}

/// Deploys one group: clone, plan, and (unless `dry_run`) commit and push, redoing the plan
/// on the new tip when the push is rejected; in pull-request mode the commit goes to the
/// deploy's own branch and its pull request is opened or updated.
pub fn run(group: &Group, dry_run: bool) -> Result<Outcome, Error> {
    let token = token(group.credential.as_deref())?;
    let pull_request = match group.mode {
        DeployMode::Push => None,
        DeployMode::PullRequest => {
            let Some(token) = token.clone() else {
                return Err(Error::usage(format!(
                    "environment `{}` deploys by pull request, which needs a token for the forge's API: name its variable in `deploy.credential`",
                    group.environment
                )));
            };
            let forge = forge::Forge::resolve(
                &group.repository,
                group.forge,
                group.forge_api.as_deref(),
                group.forge_project.as_deref(),
            )?;
            Some((forge, token, pull_request_branch(group)))
        }
    };
    let checkout = Checkout::clone(&group.repository, group.branch.as_deref(), token)?;
    let base = checkout.branch.clone();
    // In pull-request mode, an open request of this deploy is built on; one that is gone
    // leaves a stale branch, which is started afresh from the base.
    let mut existing = None;
    if let Some((forge, token, branch)) = &pull_request {
        existing = forge.find(branch, &base, token)?;
        if checkout.has_remote_branch(branch)? {
            if existing.is_some() {
                checkout.refresh(branch)?;
            } else if !dry_run {
                checkout.delete_remote_branch(branch)?;
            }
        }
    }
    let push_branch = pull_request
        .as_ref()
        .map_or_else(|| base.clone(), |(_, _, branch)| branch.clone());
    let mut attempts = 0;
    loop {
        attempts += 1;
        let ours = |digest: &str| checkout.wrote(digest);
        let mut plan = plan::make(
            checkout.worktree(),
            &group.environment,
            &group.source_ref,
            &group.source_sha,
            &group.requests,
            &ours,
        )?;
        plan.gates = group.gates.clone();
        let outcome = |result, commit, request: Option<forge::PullRequest>| Outcome {
            environment: group.environment.clone(),
            repository: group.repository.clone(),
            branch: base.clone(),
            mode: group.mode,
            result,
            commit,
            pull_request_branch: pull_request.as_ref().map(|(_, _, b)| b.clone()),
            pull_request: request,
            attempts,
            source_commit: group.source_sha.clone(),
            images: plan.images.clone(),
            diff: plan.diff(),
        };
        if dry_run {
            return Ok(outcome(Done::DryRun, None, existing.clone()));
        }
        if !plan.changes() {
            return Ok(outcome(Done::UpToDate, None, existing.clone()));
        }
        for file in &plan.files {
            crate::files::write_whole(
                &checkout.worktree().join(&file.path),
                file.after.as_bytes(),
            )?;
        }
        let paths: Vec<String> = plan.files.iter().map(|f| f.path.clone()).collect();
        let commit = checkout.commit(&paths, &plan.message())?;
        match checkout.push_to(&push_branch)? {
            Pushed::Landed => {
                let Some((forge, token, branch)) = &pull_request else {
                    return Ok(outcome(Done::Committed, Some(commit), None));
                };
                let commits = source_commits(group, &checkout, &plan);
                let (title, body) = pull_request_text(&plan, &group.evidence, &commits);
                let (result, request) = match &existing {
                    Some(open) => (
                        Done::PullRequestUpdated,
                        forge.update(open.number, &title, &body, token)?,
                    ),
                    None => (
                        Done::PullRequestOpened,
                        forge.create(branch, &base, &title, &body, token)?,
                    ),
                };
                return Ok(outcome(result, Some(commit), Some(request)));
            }
            Pushed::Rejected if attempts >= MAX_ATTEMPTS => {
                return Err(Error::Deploy(format!(
                    "the manifests branch {push_branch} of {} kept moving: {attempts} pushes were rejected; run the deploy again",
                    group.repository
                )));
            }
            Pushed::Rejected => {
                std::thread::sleep(backoff(attempts));
                checkout.refresh(&push_branch)?;
            }
        }
    }
}
