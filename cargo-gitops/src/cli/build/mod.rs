//! `cargo gitops build`: wires the flags to a build job, runs it (or prints its plan), and
//! reports the result in each output format and to the CI running it (GitHub's outputs and step
//! summary, a Buildkite annotation, an Azure summary).

use std::path::{Path, PathBuf};

use clap::Args;

use cargo_gitops::build::job::{Action, Job, Report};
use cargo_gitops::build::plan::Plan;
use cargo_gitops::build::retag::{self, Retagger};
use cargo_gitops::ci::{Ci, Runner, azure, buildkite, github};
use cargo_gitops::config::{BuilderKind, Config, RetaggerKind, SignMode, SourceKind};
use cargo_gitops::deployment::Deployment;
use cargo_gitops::error::Error;
use cargo_gitops::gates::{self, Forge, Gate, Outcome, Skips};
use cargo_gitops::progress::{Mode, Progress};
use cargo_gitops::registry::referrers::Artifact;
use cargo_gitops::supply::sign::{KeySource, SigningKey};

mod set;

pub use set::run_set;

use super::output::{Format, is_interactive, write_dotenv, write_stdout};
use super::{GlobalArgs, RegistryArgs};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Program that builds images [default: config `builder`, else buildx]
    #[arg(long, value_enum, value_name = "BUILDER")]
    pub build_with: Option<BuilderKind>,

    /// Program that looks up and retags images [default: config `retagger`, else crane when installed, else builtin]
    #[arg(long, value_enum, value_name = "RETAGGER")]
    pub retag_with: Option<RetaggerKind>,

    /// Print the exact commands for each outcome and run none
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Refuse (exit 2) unless the ref deploys to this environment; the generated workflows
    /// pass the GitHub Environment they run under, so its protection rules cannot be skipped
    #[arg(long, value_name = "NAME")]
    pub environment: Option<String>,

    /// With --build-with native: write an OCI image layout to DIR instead of pushing
    #[arg(long, value_name = "oci:DIR", value_parser = parse_oci_output)]
    pub output: Option<PathBuf>,

    /// Sign the image with this ECDSA P-256 private key (unencrypted PEM, PKCS#8 or SEC1), in
    /// cosign's format, before any environment tag names it [default: with config
    /// `sign = "key"`, the PEM in $GITOPS_SIGNING_KEY, or the variable `signing-key-env` names]
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,

    /// Attach FILE to the image as an OCI referrer of this artifact type (e.g.
    /// application/spdx+json=sbom.json), before any environment tag names it; repeatable
    #[arg(long, value_name = "TYPE=FILE", value_parser = parse_attachment)]
    pub attach: Vec<(String, PathBuf)>,

    /// Do not check this promotion gate of the environment this time (repeatable); needs
    /// --reason, which the report records
    #[arg(long, value_enum, value_name = "GATE", requires = "reason")]
    pub skip_gate: Vec<Gate>,

    /// Why the gates named by --skip-gate are skipped, recorded in the report
    #[arg(long, value_name = "TEXT", requires = "skip_gate")]
    pub reason: Option<String>,

    /// Give this commit's tags to the image of commit SHA (40 hex digits) instead of
    /// building: for a service `cargo gitops affected` lists as unchanged since SHA. Fails
    /// when that image is not in the registry; never builds
    #[arg(long, value_name = "SHA", value_parser = parse_sha40, conflicts_with_all = ["output", "attach"])]
    pub image_of: Option<String>,

    /// Compare this service with what its environment last received first (as `cargo gitops
    /// affected` does): when none of its inputs changed, give this commit's tags to the image
    /// it already has instead of building; otherwise (or when that cannot be told) build as
    /// usual. For repositories that ship several images
    #[arg(long, conflicts_with_all = ["output", "attach", "image_of"])]
    pub reuse_unchanged: bool,

    /// Promote every image of the repository as one set, all or none: each service's image
    /// of this commit (or, for one unchanged since what the environment last received, the
    /// image it kept) is looked up and its gates checked before any tag moves; when a tag
    /// fails to move, the tags already moved are put back. Never builds: a service with no
    /// image is refused before anything moves. For production releases of a monorepo
    #[arg(long, conflicts_with_all = ["output", "attach", "image_of", "reuse_unchanged"])]
    pub all: bool,
}

fn parse_sha40(text: &str) -> Result<String, String> {
    if cargo_gitops::tags::is_sha40(text) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{}` is not a full commit sha (40 hex digits); give the `since` commit `cargo gitops affected` prints",
            text.escape_debug()
        ))
    }
}

fn parse_attachment(text: &str) -> Result<(String, PathBuf), String> {
    let (kind, path) = text
        .split_once('=')
        .filter(|(kind, path)| !kind.is_empty() && !path.is_empty())
        .ok_or_else(|| {
            format!(
                "`{text}` is not TYPE=FILE; write e.g. --attach application/spdx+json=sbom.json"
            )
        })?;
    let well_formed = kind.split_once('/').is_some_and(|(top, sub)| {
        let part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        part(top) && part(sub)
    });
    if !well_formed {
        return Err(format!(
            "`{}` is not a media type (type/subtype, e.g. application/spdx+json)",
            kind.escape_debug()
        ));
    }
    Ok((kind.to_owned(), PathBuf::from(path)))
}

fn parse_oci_output(text: &str) -> Result<PathBuf, String> {
    text.strip_prefix("oci:")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            format!("`{text}` is not oci:DIR; write e.g. --output oci:target/gitops/image")
        })
}

pub fn run(
    global: &GlobalArgs,
    args: &BuildArgs,
    config: &Config,
    deployment: &Deployment,
    runner: &Runner,
    cwd: &Path,
) -> Result<(), Error> {
    check_environment(args, deployment)?;
    // Flags and variables name the credential of the target registry, and only of it.
    let target_registry = deployment
        .image
        .as_deref()
        .map(cargo_gitops::registry::client::Repository::parse)
        .transpose()?
        .map(|r| r.registry);
    let (options, credential) = args
        .registry
        .client_settings(config, target_registry.as_deref())?;
    let builder = args
        .build_with
        .or(config.build.builder)
        .unwrap_or(BuilderKind::Buildx);
    if builder == BuilderKind::Native && config.source != SourceKind::Cargo {
        return Err(Error::usage(
            "--build-with native compiles a Rust package, and this image is none (its configuration is gitops.toml or an `images` table); build its Dockerfile with --build-with buildx or podman",
        ));
    }
    if args.output.is_some() && builder != BuilderKind::Native {
        return Err(Error::usage(
            "--output writes an image the tool packs itself; add --build-with native",
        ));
    }
    let mut config = config.clone();
    config.build.insecure_registries = options.insecure_registries.clone();
    let retagger_kind = args
        .retag_with
        .or(config.build.retagger)
        .unwrap_or_else(retag::default_retagger);
    let retagger = Retagger::new(retagger_kind, options, credential);
    let progress = Progress::from_env(progress_mode(global, runner))?;
    let scratch = scratch_dir()?;
    let attachments = args
        .attach
        .iter()
        .map(|(kind, path)| {
            let bytes = std::fs::read(path).map_err(|source| Error::Read {
                what: path.display().to_string(),
                source,
            })?;
            Ok(Artifact {
                artifact_type: kind.clone(),
                media_type: kind.clone(),
                bytes,
                annotations: Default::default(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let key;
    let mut job = new_job(
        args,
        &config,
        deployment,
        (builder, &retagger, &progress),
        scratch.path(),
        runner,
        cwd,
    )?;
    job.attachments = attachments;
    if args.reuse_unchanged && args.dry_run {
        progress.note(
            "--reuse-unchanged compares with the registry when it runs; the plan below is this commit's own",
        );
    } else if args.reuse_unchanged {
        job.image_of = reused(&config, deployment, &retagger, cwd, &progress);
    }
    let mut plan = job.plan()?;
    if args.dry_run {
        return print_dry_run(&plan, &retagger, global.format);
    }
    // Read before anything is built, so a missing key fails the run at once; only when the
    // run signs (not for a ref no environment tracks, nor for an image layout), and never
    // for a dry run.
    if let (Some(from), true) = (&plan.signing, plan.signs()) {
        key = SigningKey::load(from)?;
        job.key = Some(&key);
    }
    let report = match job.run(&plan) {
        // The image it kept is gone (a registry's clean-up): this commit's is built instead.
        Err(Error::ImageOfMissing { commit, .. }) if args.reuse_unchanged => {
            progress.note(&format!(
                "the image of {} is no longer in the registry; building this commit's",
                short(&commit)
            ));
            job.image_of = None;
            plan = job.plan()?;
            job.run(&plan)?
        }
        outcome => outcome?,
    };
    if global.verbose > 0 && retagger.request_count() > 0 {
        progress.note(&format!(
            "built-in registry client: {} requests",
            retagger.request_count()
        ));
    }
    print_report(&report, global, runner)
}

/// A temporary folder for the builders' files, removed when the run ends.
fn scratch_dir() -> Result<tempfile::TempDir, Error> {
    tempfile::tempdir().map_err(|source| Error::Write {
        what: "a temporary folder".to_owned(),
        source,
    })
}

/// The job of one image: the settings the flags and the CI give it, with no attachments and
/// no key yet (read once the plan says the run signs).
fn new_job<'a>(
    args: &BuildArgs,
    config: &'a Config,
    deployment: &'a Deployment,
    (builder, retagger, progress): (BuilderKind, &'a Retagger, &'a Progress),
    scratch_dir: &'a Path,
    runner: &Runner,
    cwd: &Path,
) -> Result<Job<'a>, Error> {
    let signing = match (&args.signing_key, config.build.sign) {
        (Some(path), _) => Some(KeySource::File(path.clone())),
        (None, SignMode::Key) => Some(KeySource::Env(config.build.signing_key_env().to_owned())),
        (None, SignMode::None | SignMode::Keyless) => None,
    };
    let job = Job {
        config,
        deployment,
        builder,
        retagger,
        progress,
        // The CI's word first; either way only an https address, never a local path.
        source_url: runner
            .source_url
            .as_deref()
            .and_then(cargo_gitops::git::web_url)
            .or_else(|| cargo_gitops::git::origin_url(cwd)),
        scratch_dir,
        output: args.output.clone(),
        epoch: source_date_epoch()?
            .or_else(|| cargo_gitops::git::commit_time(cwd, &deployment.sha))
            .unwrap_or(deployment.timestamp),
        signing,
        key: None,
        attachments: Vec::new(),
        image_of: args.image_of.clone(),
        skips: Skips {
            gates: args.skip_gate.clone(),
            reason: args.reason.clone(),
        },
        forge: Forge::from_env(),
    };
    if let Some(environment) = &deployment.environment {
        gates::check_skips(&config.gates_of(environment), environment, &job.skips)?;
    }
    Ok(job)
}

/// `--reuse-unchanged`: the commit whose image this service keeps, when it is unchanged since
/// what its environment received; `None` (build as usual) when it changed, has nothing to
/// compare with, or the comparison fails, which is said.
fn reused(
    config: &Config,
    deployment: &Deployment,
    retagger: &Retagger,
    cwd: &Path,
    progress: &Progress,
) -> Option<String> {
    let image = deployment.image.as_deref()?;
    deployment.environment.as_ref()?;
    let compared = cargo_gitops::registry::client::Repository::parse(image)
        .and_then(|repository| retagger.client(&repository.registry))
        .and_then(|client| cargo_gitops::affected::unchanged(&client, config, deployment, cwd));
    match compared {
        Ok(Some(unchanged)) => {
            progress.note(&format!(
                "{} is unchanged since {}: its image, of {}, gets this commit's tags",
                unchanged.package,
                short(&unchanged.since),
                short(&unchanged.image_of)
            ));
            Some(unchanged.image_of)
        }
        Ok(None) => None,
        Err(err) => {
            progress.note(&format!(
                "cannot tell whether this service changed ({err}); building it"
            ));
            None
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// `--environment NAME`: refuses a ref that deploys elsewhere, before anything runs.
fn check_environment(args: &BuildArgs, deployment: &Deployment) -> Result<(), Error> {
    if let Some(expected) = &args.environment
        && deployment.environment.as_deref() != Some(expected.as_str())
    {
        return Err(Error::usage(format!(
            "{} deploys to {}, not to `{expected}`; run the workflow of that environment instead",
            deployment.git_ref,
            deployment
                .environment
                .as_deref()
                .map_or("no environment".to_owned(), |e| format!("`{e}`"))
        )));
    }
    Ok(())
}

/// How progress is shown: nothing, GitHub Actions groups, spinners, or plain lines.
fn progress_mode(global: &GlobalArgs, runner: &Runner) -> Mode {
    if global.quiet {
        Mode::Quiet
    } else if runner.is_actions() {
        Mode::Actions
    } else if is_interactive(global.color) {
        Mode::Spinner
    } else {
        Mode::Plain
    }
}

/// `build --dry-run`: the plan, every branch, as shell lines or as JSON.
fn print_dry_run(plan: &Plan, retagger: &Retagger, format: Format) -> Result<(), Error> {
    let description = cargo_gitops::build::describe::describe(plan, retagger);
    match format {
        Format::Json => write_stdout(
            &(serde_json::to_string_pretty(&description).expect("a plan always serialises") + "\n"),
        ),
        Format::Github | Format::Gitlab => Err(super::unsupported_format("build --dry-run")),
        Format::Human => write_stdout(&description.text()),
    }
}

/// `SOURCE_DATE_EPOCH`, the reproducible-builds convention for "the time of the source".
fn source_date_epoch() -> Result<Option<u64>, Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.trim().is_empty() => text.trim().parse().map(Some).map_err(|_| {
            Error::usage(format!(
                "SOURCE_DATE_EPOCH `{text}` is not a Unix time in seconds; unset it or fix it"
            ))
        }),
        _ => Ok(None),
    }
}

fn print_report(report: &Report, global: &GlobalArgs, runner: &Runner) -> Result<(), Error> {
    let format = global.format;
    let action = action_word(report);
    let outputs = github::format_outputs(&report_values(report, action, "\n"));
    // In Actions the outputs always go to $GITHUB_OUTPUT; elsewhere, as `env` does, only
    // with --format github, and to stdout when there is no such file.
    let output_file = runner
        .output_file
        .as_ref()
        .filter(|_| runner.is_actions() || format == Format::Github);
    if let Some(path) = output_file {
        github::append(path, &outputs)?;
    }
    post_summary(report, action, runner, format)?;
    match format {
        Format::Json => write_stdout(
            &(serde_json::to_string_pretty(report).expect("a report always serialises") + "\n"),
        ),
        Format::Github if output_file.is_none() => write_stdout(&outputs),
        Format::Github => Ok(()),
        Format::Gitlab => write_dotenv(
            &report_values(report, action, ","),
            global.dotenv.as_deref(),
        ),
        Format::Human => write_stdout(&human_report(report, action)),
    }
}

fn action_word(report: &Report) -> &'static str {
    match report.action {
        Action::Built => "built",
        Action::Retagged => "retagged",
        Action::None => "none",
    }
}

/// The report as step outputs or dotenv values, with the tags joined by `tag_separator`.
fn report_values(
    report: &Report,
    action: &str,
    tag_separator: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("action", action.to_owned()),
        ("built", (report.action == Action::Built).to_string()),
        ("digest", report.digest.clone().unwrap_or_default()),
        ("image", report.image.clone().unwrap_or_default()),
        ("tags", report.tags.join(tag_separator)),
        (
            "environment",
            report.environment.clone().unwrap_or_default(),
        ),
        ("ref", report.git_ref.clone()),
        ("sha", report.sha.clone()),
    ]
}

/// The summary table, where the CI shows one: the Actions step summary, a Buildkite
/// annotation, or an Azure Pipelines uploaded summary.
fn post_summary(
    report: &Report,
    action: &str,
    runner: &Runner,
    format: Format,
) -> Result<(), Error> {
    let summary = || {
        github::summary_table(&[
            (
                "environment",
                report
                    .environment
                    .clone()
                    .unwrap_or_else(|| "none".to_owned()),
            ),
            ("action", action.to_owned()),
            ("image", report.image.clone().unwrap_or_default()),
            ("digest", report.digest.clone().unwrap_or_default()),
            ("tags", report.tags.join(", ")),
            ("ref", report.git_ref.clone()),
            ("sha", report.sha.clone()),
        ])
    };
    match runner.ci {
        Some(ci) if ci.is_actions() => {
            if let Some(path) = &runner.summary_file {
                github::append(path, &summary())?;
            }
        }
        // The images are pushed by now: an annotation that fails is worth a warning, not a
        // failed job.
        Some(Ci::Buildkite) => {
            if let Err(err) = buildkite::annotate(&summary()) {
                eprintln!("warning: cannot annotate the build: {err}");
            }
        }
        // The logging command goes to stdout, where it would break one JSON document.
        Some(Ci::Azure) if format != Format::Json => {
            if let Some(dir) = &runner.temp_dir {
                println!("{}", azure::upload_summary(dir, &summary())?);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The report for people: the action, digest, layout and every tag in full.
fn human_report(report: &Report, action: &str) -> String {
    let mut text = format!("{:<12} {action}\n", "action");
    if let Some(digest) = &report.digest {
        text.push_str(&format!("{:<12} {digest}\n", "digest"));
    }
    if let Some(layout) = &report.layout {
        text.push_str(&format!("{:<12} {}\n", "layout", layout.display()));
    }
    if let Some(image) = &report.image {
        for (i, tag) in report.tags.iter().enumerate() {
            let key = if i == 0 { "tags" } else { "" };
            text.push_str(&format!("{key:<12} {image}:{tag}\n"));
        }
    }
    for (i, checked) in report.gates.iter().enumerate() {
        let key = if i == 0 { "gates" } else { "" };
        let outcome = match checked.outcome {
            Outcome::Passed => "passed",
            Outcome::Skipped => "skipped",
            Outcome::Deferred => "deferred",
            Outcome::Refused => "refused",
        };
        let detail = match checked.outcome {
            Outcome::Skipped => format!("reason: {}", checked.detail),
            _ => checked.detail.clone(),
        };
        text.push_str(&format!("{key:<12} {} {outcome}: {detail}\n", checked.gate));
    }
    for (i, evidence) in report.evidence.iter().enumerate() {
        let key = if i == 0 { "evidence" } else { "" };
        let kind = evidence.artifact_type.as_deref().unwrap_or("cosign tag");
        let already = if evidence.already {
            ", there already"
        } else {
            ""
        };
        text.push_str(&format!(
            "{key:<12} {} {} ({kind}{already})\n",
            evidence.action, evidence.reference
        ));
    }
    text
}
