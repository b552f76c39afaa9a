//! `cargo gitops deploy`: the commit's image written into the environment's manifests, one
//! commit per environment, or with `--dry-run` the exact diff it would commit.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Args;

use cargo_gitops::build::converge::revision_label;
use cargo_gitops::build::retag::Retagger;
use cargo_gitops::ci::Runner;
use cargo_gitops::config::{Config, DeployMode, RetaggerKind, SignMode};
use cargo_gitops::delivery::history;
use cargo_gitops::deploy::edit::Verdict;
use cargo_gitops::deploy::{self, Group, Outcome, plan};
use cargo_gitops::deployment::{self, Request};
use cargo_gitops::error::Error;
use cargo_gitops::gates::{self, Forge, Gate, Promotion, Skips};
use cargo_gitops::registry::client::{Digest, Repository};
use cargo_gitops::supply::sign::{KeySource, SigningKey};

use super::output::{Format, write_stdout};
use super::{GlobalArgs, RegistryArgs};

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Print the exact diff the deploy would commit, from the same plan; commit and push nothing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Do not check this promotion gate of the environment this time (repeatable); needs
    /// --reason, which the write-back commit records
    #[arg(long, value_enum, value_name = "GATE", requires = "reason")]
    pub skip_gate: Vec<Gate>,

    /// Why the gates named by --skip-gate are skipped, recorded in the commit message
    #[arg(long, value_name = "TEXT", requires = "skip_gate")]
    pub reason: Option<String>,
}

pub fn run(
    global: &GlobalArgs,
    args: &DeployArgs,
    configs: &[Config],
    runner: &Runner,
    cwd: &Path,
) -> Result<(), Error> {
    if !matches!(global.format, Format::Human | Format::Json) {
        return Err(super::unsupported_format("deploy"));
    }
    let request = Request {
        ref_arg: global.git_ref.as_deref(),
        sha_arg: global.sha.as_deref(),
        timestamp: global.timestamp,
    };
    let mut groups: BTreeMap<(String, String, Option<String>), Group> = BTreeMap::new();
    for config in configs {
        let deployment = deployment::plan(config, &request, runner, cwd)?;
        let Some(name) = deployment.environment.as_deref() else {
            if !global.quiet {
                eprintln!(
                    "no environment tracks {}: nothing to deploy",
                    deployment.git_ref
                );
            }
            continue;
        };
        let what = config.package.as_deref().unwrap_or("this repository");
        if config.deploy.is_none() {
            return Err(Error::usage(format!(
                "no `deploy` table is configured for {what}: add one (repository, branch, path) to [workspace.metadata.gitops] or gitops.toml; see the README"
            )));
        }
        let environment = config
            .environments
            .iter()
            .find(|env| env.name == name)
            .ok_or_else(|| Error::Internal(format!("environment `{name}` vanished")))?;
        let repository = history::repository_of(config, environment)?;
        let (options, credential) = args
            .registry
            .client_settings(config, Some(&repository.registry))?;
        let retagger = Retagger::new(RetaggerKind::Builtin, options, credential);
        let client = retagger.client(&repository.registry)?;
        let image = deploy::source::image_of(
            &client,
            &repository,
            environment,
            &deployment,
            global.timestamp.is_some(),
        )?;
        let checked = check_gates(
            config,
            name,
            &repository,
            &image,
            &retagger,
            runner,
            cwd,
            args,
        )?;
        let Some((target, request)) = deploy::request_for(config, environment, image) else {
            continue;
        };
        let gates = config.gates_of(name);
        if gates.requires_pull_request()
            && target.mode != DeployMode::PullRequest
            && !args.skip_gate.contains(&Gate::Approval)
        {
            return Err(Error::usage(format!(
                "environment `{name}` has the approval gate, so a person merges its deploy: set its deploy mode = \"pull-request\" (or skip the gate with --skip-gate approval --reason \"…\")"
            )));
        }
        let url = match &target.repository {
            Some(url) => url.clone(),
            None => deploy::repository::origin_of(cwd)?,
        };
        let group_url = url.clone();
        groups
            .entry((name.to_owned(), url.clone(), target.branch.clone()))
            .or_insert_with(|| Group {
                environment: name.to_owned(),
                repository: url,
                branch: target.branch.clone(),
                mode: target.mode,
                credential: target.credential.clone(),
                forge: target.forge,
                forge_api: target.forge_api.clone(),
                forge_project: target.forge_project.clone(),
                source_ref: deployment.git_ref.clone(),
                source_sha: deployment.sha.clone(),
                requests: Vec::new(),
                gates: Vec::new(),
                evidence: Vec::new(),
                source_dir: Some(cwd.to_path_buf()),
            });
        let group = groups
            .get_mut(&(name.to_owned(), group_url.clone(), target.branch.clone()))
            .expect("inserted above");
        if let Some(checked) = checked {
            group
                .gates
                .push(format!("{} {checked}", request.image.name));
        }
        if group.mode == DeployMode::PullRequest {
            let evidence = deploy::Evidence::of(&client, &repository, &request.image.digest)?;
            group.evidence.push((request.image.name.clone(), evidence));
        }
        group.requests.push(request);
    }
    let mut outcomes = Vec::new();
    for group in groups.values() {
        outcomes.push(deploy::run(group, args.dry_run)?);
    }
    if global.format == Format::Json {
        let json = serde_json::to_string_pretty(&outcomes).expect("outcomes always serialise");
        return write_stdout(&format!("{json}\n"));
    }
    for outcome in &outcomes {
        write_stdout(&human(outcome, global.quiet))?;
    }
    Ok(())
}

/// Checks the promotion gates of environment `name` for `image` before any manifest moves:
/// a refusal is the error, and nothing is written. What they said, as one line for the commit
/// message, when the environment has gates.
#[allow(clippy::too_many_arguments)]
fn check_gates(
    config: &Config,
    name: &str,
    repository: &Repository,
    image: &deploy::Image,
    retagger: &Retagger,
    runner: &Runner,
    cwd: &Path,
    args: &DeployArgs,
) -> Result<Option<String>, Error> {
    let gates = config.gates_of(name);
    let skips = Skips {
        gates: args.skip_gate.clone(),
        reason: args.reason.clone(),
    };
    gates::check_skips(&gates, name, &skips)?;
    if gates.is_empty() {
        return Ok(None);
    }
    let digest = Digest::parse(&image.digest)
        .map_err(|e| Error::Internal(format!("the registry gave a bad digest: {e}")))?;
    let client = retagger.client(&repository.registry)?;
    // The gates speak of the image: the commit it was built from, which is this one unless
    // `build --reuse-unchanged` kept an earlier commit's image.
    let built_from = revision_label(&client, repository, image.digest.as_str())?;
    let sha = built_from.unwrap_or_default();
    let key = match config.build.sign {
        SignMode::Key => {
            SigningKey::load(&KeySource::Env(config.build.signing_key_env().to_owned())).ok()
        }
        _ => None,
    };
    let source_url = runner
        .source_url
        .clone()
        .or_else(|| cargo_gitops::git::origin_url(cwd));
    let clients = |registry: &str| retagger.client(registry);
    let forge = Forge::from_env();
    let promotion = Promotion {
        config,
        environment: name,
        repository,
        digest: Some(&digest),
        sha: &sha,
        source_url: source_url.as_deref(),
        signing_key: key.as_ref(),
        clients: &clients,
        forge: &forge,
        now: gates::now(),
    };
    let checked = gates::check(&promotion, &gates, &skips)?;
    let said: Vec<String> = checked
        .iter()
        .map(|c| match c.outcome {
            gates::Outcome::Skipped => format!("{} skipped ({})", c.gate, c.detail),
            gates::Outcome::Passed => format!("{} passed", c.gate),
            gates::Outcome::Deferred => format!("{} by this deploy's pull request", c.gate),
            gates::Outcome::Refused => format!("{} refused", c.gate),
        })
        .collect();
    Ok(Some(said.join(", ")))
}

/// An outcome as text: the diff for a dry run, then what happened and why anything was kept.
fn human(outcome: &Outcome, quiet: bool) -> String {
    let mut out = String::new();
    if outcome.result == deploy::Done::DryRun {
        out.push_str(&outcome.diff);
    }
    let written = outcome
        .images
        .iter()
        .filter(|i| {
            i.places
                .iter()
                .any(|p| p.occurrence.verdict == Verdict::Write)
        })
        .count();
    let short = |sha: &str| sha[..sha.len().min(7)].to_owned();
    let headline = match outcome.result {
        deploy::Done::Committed => format!(
            "{}: committed {} to {} {} ({written} image{})",
            outcome.environment,
            short(outcome.commit.as_deref().unwrap_or_default()),
            outcome.repository,
            outcome.branch,
            if written == 1 { "" } else { "s" }
        ),
        deploy::Done::PullRequestOpened | deploy::Done::PullRequestUpdated => format!(
            "{}: committed {} to {} {} and {} pull request {} ({written} image{})",
            outcome.environment,
            short(outcome.commit.as_deref().unwrap_or_default()),
            outcome.repository,
            outcome.pull_request_branch.as_deref().unwrap_or_default(),
            if outcome.result == deploy::Done::PullRequestOpened {
                "opened"
            } else {
                "updated"
            },
            outcome
                .pull_request
                .as_ref()
                .map(|p| if p.url.is_empty() {
                    format!("#{}", p.number)
                } else {
                    p.url.clone()
                })
                .unwrap_or_default(),
            if written == 1 { "" } else { "s" }
        ),
        deploy::Done::UpToDate => format!(
            "{}: the manifests in {} {} already deploy commit {}: nothing to commit",
            outcome.environment,
            outcome.repository,
            outcome.branch,
            short(&outcome.source_commit)
        ),
        deploy::Done::DryRun if written == 0 => format!(
            "{}: dry run: nothing to commit to {} {}",
            outcome.environment, outcome.repository, outcome.branch
        ),
        deploy::Done::DryRun => format!(
            "{}: dry run: would commit {written} image{} to {} {}",
            outcome.environment,
            if written == 1 { "" } else { "s" },
            outcome.repository,
            outcome.branch
        ),
    };
    out.push_str(&headline);
    out.push('\n');
    if quiet {
        return out;
    }
    for image in &outcome.images {
        for place in &image.places {
            let at = format!("{}:{}", place.file, place.occurrence.line);
            let line = match place.occurrence.verdict {
                Verdict::Write => format!(
                    "  {at}: {} {} -> {}@{}",
                    image.image,
                    plan::old_reference(image),
                    image.tag,
                    image.digest
                ),
                Verdict::Unchanged => format!(
                    "  {at}: {} already {}@{}",
                    image.image, image.tag, image.digest
                ),
                Verdict::Pinned => format!(
                    "  {at}: {} kept: it is marked `# gitops:pinned`; remove the marker to let deploys move it",
                    image.image
                ),
                Verdict::NotOurs => format!(
                    "  {at}: {} kept: its digest {} was not written by cargo gitops deploy (set by hand or rolled back); write the new digest yourself or remove it to let deploys move it",
                    image.image,
                    place.occurrence.old_digest.as_deref().unwrap_or_default()
                ),
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}
