//! `cargo gitops build --all`: every image of the repository promoted as one set (the
//! library's `promotion`), with each service's job set up as `build -p` sets it up.

use std::path::Path;

use cargo_gitops::build::plan::{Plan, Step};
use cargo_gitops::build::retag::{self, Retagger};
use cargo_gitops::ci::{Runner, github};
use cargo_gitops::config::{BuilderKind, Config};
use cargo_gitops::deployment::{self, Deployment, Request};
use cargo_gitops::error::Error;
use cargo_gitops::progress::Progress;
use cargo_gitops::promotion::{self, Member, SetReport};
use cargo_gitops::registry::client::Repository;
use cargo_gitops::supply::sign::SigningKey;

use super::super::output::{Format, write_stdout};
use super::super::{GlobalArgs, unsupported_format};
use super::{
    BuildArgs, action_word, check_environment, human_report, new_job, post_summary, print_dry_run,
    progress_mode, reused, scratch_dir,
};

pub fn run_set(
    global: &GlobalArgs,
    args: &BuildArgs,
    configs: &[Config],
    runner: &Runner,
    cwd: &Path,
) -> Result<(), Error> {
    if global.package.is_some() {
        return Err(Error::usage(
            "--all promotes every image of the repository; drop -p, or drop --all to act for one",
        ));
    }
    if !matches!(global.format, Format::Human | Format::Json) {
        return Err(unsupported_format("build --all"));
    }
    let request = Request {
        ref_arg: global.git_ref.as_deref(),
        sha_arg: global.sha.as_deref(),
        timestamp: global.timestamp,
    };
    let deployments = deployment::plan_each(configs, &request, runner, cwd)?;
    let first = &configs[0];
    for deployment in &deployments {
        check_environment(args, deployment)?;
    }
    // One set goes to one environment: a service whose configuration sends the ref elsewhere
    // (or nowhere) is not promoted silently beside the others.
    if let Some(other) = deployments
        .iter()
        .zip(configs)
        .find(|(d, _)| d.environment != deployments[0].environment)
    {
        let shown = |e: &Option<String>| {
            e.as_deref()
                .map_or("no environment".to_owned(), |e| format!("`{e}`"))
        };
        return Err(Error::usage(format!(
            "{} deploys `{}` to {} and `{}` to {}; a set promotion moves every image to one environment, so give the images the same environments, or promote each with -p",
            deployments[0].git_ref,
            configs[0].package.as_deref().unwrap_or("the first image"),
            shown(&deployments[0].environment),
            other.1.package.as_deref().unwrap_or("another image"),
            shown(&other.0.environment)
        )));
    }
    let Some(environment) = deployments[0].environment.clone() else {
        if !global.quiet {
            eprintln!(
                "no environment tracks {}: nothing to deploy",
                deployments[0].git_ref
            );
        }
        return print(global, &set_of_none(&deployments[0]), runner);
    };
    // The credential of the flags is for the registry of the first image; other registries
    // get only what the docker configuration gives them.
    let target_registry = deployments[0]
        .image
        .as_deref()
        .map(Repository::parse)
        .transpose()?
        .map(|r| r.registry);
    let (options, credential) = args
        .registry
        .client_settings(first, target_registry.as_deref())?;
    let configs: Vec<Config> = configs
        .iter()
        .map(|config| {
            let mut config = config.clone();
            config.build.insecure_registries = options.insecure_registries.clone();
            config
        })
        .collect();
    let retagger_kind = args
        .retag_with
        .or(first.build.retagger)
        .unwrap_or_else(retag::default_retagger);
    let retagger = Retagger::new(retagger_kind, options, credential);
    let progress = Progress::from_env(progress_mode(global, runner))?;
    let scratch = scratch_dir()?;
    let mut keys: Vec<Option<SigningKey>> = Vec::new();
    let mut members = Vec::with_capacity(configs.len());
    for (config, deployment) in configs.iter().zip(&deployments) {
        let builder = args
            .build_with
            .or(config.build.builder)
            .unwrap_or(BuilderKind::Buildx);
        let mut job = new_job(
            args,
            config,
            deployment,
            (builder, &retagger, &progress),
            scratch.path(),
            runner,
            cwd,
        )?;
        let mut plan = job.plan()?;
        if !args.dry_run && !has_own_image(&retagger, &plan)? {
            job.image_of = reused(config, deployment, &retagger, cwd, &progress);
            plan = job.plan()?;
        }
        let package = config.service_name();
        members.push((package, job, plan));
    }
    if args.dry_run {
        for (package, _, plan) in &members {
            if global.format == Format::Human {
                write_stdout(&format!("# {package}\n"))?;
            }
            print_dry_run(plan, &retagger, global.format)?;
        }
        return Ok(());
    }
    // Every key is read before anything runs, so a missing one fails the set at once.
    for (_, _, plan) in &members {
        keys.push(match (&plan.signing, plan.signs()) {
            (Some(from), true) => Some(SigningKey::load(from)?),
            _ => None,
        });
    }
    let members: Vec<Member<'_>> = members
        .into_iter()
        .zip(&keys)
        .map(|((package, mut job, plan), key)| {
            job.key = key.as_ref();
            Member { package, job, plan }
        })
        .collect();
    progress.note(&format!(
        "promoting {} services to `{environment}` as one set",
        members.len()
    ));
    let set = promotion::promote(members, &retagger, &progress)?;
    print(global, &set, runner)
}

/// Whether the commit's own lookup tag names an image of this service in any repository the
/// plan looks in (the environment's, and those of the environments it promotes from).
fn has_own_image(retagger: &Retagger, plan: &Plan) -> Result<bool, Error> {
    for step in &plan.lookup {
        if let Step::Lookup { repository, tag } = step
            && retagger.lookup(repository, tag)?.is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn set_of_none(deployment: &Deployment) -> SetReport {
    SetReport {
        environment: None,
        git_ref: deployment.git_ref.clone(),
        sha: deployment.sha.clone(),
        services: Vec::new(),
    }
}

fn print(global: &GlobalArgs, set: &SetReport, runner: &Runner) -> Result<(), Error> {
    // The step's outputs in Actions, as one build's are, for the steps and jobs after it: no
    // one digest or image stands for the set, so those stay empty and `tags` lists every
    // service's tags in full.
    if let Some(path) = runner.output_file.as_ref().filter(|_| runner.is_actions()) {
        let tags: Vec<String> = set
            .services
            .iter()
            .filter_map(|s| s.report.image.as_ref().map(|image| (image, &s.report.tags)))
            .flat_map(|(image, tags)| tags.iter().map(move |tag| format!("{image}:{tag}")))
            .collect();
        let values = vec![
            (
                "action",
                if set.services.is_empty() {
                    "none"
                } else {
                    "retagged"
                }
                .to_owned(),
            ),
            ("built", "false".to_owned()),
            ("digest", String::new()),
            ("image", String::new()),
            ("tags", tags.join("\n")),
            ("environment", set.environment.clone().unwrap_or_default()),
            ("ref", set.git_ref.clone()),
            ("sha", set.sha.clone()),
        ];
        github::append(path, &github::format_outputs(&values))?;
    }
    for service in &set.services {
        post_summary(
            &service.report,
            action_word(&service.report),
            runner,
            global.format,
        )?;
    }
    match global.format {
        Format::Json => write_stdout(
            &(serde_json::to_string_pretty(set).expect("a set report always serialises") + "\n"),
        ),
        _ => {
            let mut text = String::new();
            for service in &set.services {
                text.push_str(&format!("{:<12} {}\n", "service", service.package));
                text.push_str(&human_report(&service.report, action_word(&service.report)));
            }
            write_stdout(&text)
        }
    }
}
