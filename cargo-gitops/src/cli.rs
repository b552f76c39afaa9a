//! The command line: clap definitions for `cargo gitops` and its subcommands, and dispatch to
//! the library. Each subcommand's work lives in its own module; this one only wires flags to it
//! and prints results.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::builder::BuilderKind;
use crate::config::{self, Config};
use crate::credentials;
use crate::deployment::{self, Deployment, Request};
use crate::error::Error;
use crate::exit_codes;
use crate::github::{self, Actions};
use crate::pipeline::{Action, Job, Report};
use crate::progress::{Mode, Progress};
use crate::registry::ClientOptions;
use crate::retagger::{Retagger, RetaggerKind};
use crate::workflows;

/// GitOps continuous integration: derive the deployment environment from git, build a
/// container image once per commit, and promote it between environments by retagging.
#[derive(Debug, Parser)]
#[command(
    name = "cargo-gitops",
    bin_name = "cargo gitops",
    version,
    propagate_version = true,
    after_help = "Exit codes: 0 success (including \"no environment tracks this ref\"), 1 failure, 2 usage or configuration error.\nConfiguration: [workspace.metadata.gitops] in Cargo.toml; see the README."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Path to Cargo.toml [default: the nearest one above the current directory]
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,

    /// Package whose image this is, when several packages of the workspace ship one
    #[arg(short = 'p', long, global = true, value_name = "NAME")]
    pub package: Option<String>,

    /// Git ref to act for (`main`, `refs/heads/main`, `refs/tags/v1.2.3`) [default: $GITHUB_REF in GitHub Actions, else the checked-out branch, or the highest SemVer tag at a detached HEAD]
    #[arg(long = "ref", global = true, value_name = "REF")]
    pub git_ref: Option<String>,

    /// Commit to act for [default: $GITHUB_SHA in GitHub Actions, else the commit of the ref]
    #[arg(long, global = true, value_name = "SHA")]
    pub sha: Option<String>,

    /// Build time in Unix seconds, used in `{timestamp}` [default: now]
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timestamp: Option<u64>,

    /// Output format: aligned text, one JSON object on stdout, or `key=value` lines for $GITHUB_OUTPUT
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Print less: only results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: each step and the commands run
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colours and spinners
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the environment and image tags of the current commit.
    ///
    /// Resolves the ref and commit (GitHub Actions variables, the local repository, or --ref and
    /// --sha), picks the first configured environment that tracks the ref, and prints its tags.
    /// A ref no environment tracks is not an error: it prints `environment: null` and exits 0.
    Env,

    /// Make the commit's image exist with every tag of its environment: retag, or build once.
    ///
    /// Looks up the lookup tag (`commit-<sha40>`) in the registry. When it exists the image is
    /// retagged (same digest, no layer moves); otherwise it is built once and pushed with the
    /// lookup tag first, so no environment tag ever points at an incomplete image.
    Build(BuildArgs),

    /// Write the GitHub Actions workflows: one pipeline, one workflow per environment.
    ///
    /// Renders `.github/workflows/gitops-pipeline.yml` and `gitops-<environment>.yml` from the
    /// templates and the configuration, so triggers always agree with `cargo gitops env`.
    /// With --check, writes nothing and exits 1 with a diff when the files are out of date.
    InitWorkflows(InitWorkflowsArgs),
}

#[derive(Debug, Args)]
pub struct InitWorkflowsArgs {
    /// Write nothing; exit 1 and print a unified diff when the committed workflows differ
    #[arg(long)]
    pub check: bool,
}

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

    /// Speak plain HTTP to this registry (loopback registries always are); repeatable
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// User name for the registry (built-in client) [env: GITOPS_REGISTRY_USER]
    #[arg(long, value_name = "USER")]
    pub registry_user: Option<String>,

    /// Read the registry password from standard input [env: GITOPS_REGISTRY_PASSWORD]
    #[arg(long)]
    pub registry_password_stdin: bool,

    /// With --build-with native: write an OCI image layout to DIR instead of pushing
    #[arg(long, value_name = "oci:DIR", value_parser = parse_oci_output)]
    pub output: Option<PathBuf>,
}

fn parse_oci_output(text: &str) -> Result<PathBuf, String> {
    text.strip_prefix("oci:")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            format!("`{text}` is not oci:DIR; write e.g. --output oci:target/gitops/image")
        })
}

/// The arguments as cargo passes them: `cargo gitops env` runs `cargo-gitops gitops env`.
/// The `gitops` word is dropped so that `cargo-gitops env` works too.
pub fn args_from_cargo(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|a| a == "gitops") {
        args.remove(1);
    }
    args
}

/// Runs a parsed command line; returns the exit code on success.
pub fn run(cli: Cli) -> Result<u8, Error> {
    let cwd = std::env::current_dir().map_err(|source| Error::Write {
        what: "the current directory".to_owned(),
        source,
    })?;
    let actions = Actions::from_env();
    let global = &cli.global;
    let config = config::load(
        global.manifest_path.as_deref(),
        global.package.as_deref(),
        &cwd,
    )?;
    let plan = || -> Result<Deployment, Error> {
        let request = Request {
            ref_arg: global.git_ref.as_deref(),
            sha_arg: global.sha.as_deref(),
            timestamp: global.timestamp,
        };
        let deployment = deployment::plan(&config, &request, &actions, &cwd)?;
        if deployment.environment.is_none() && !global.quiet {
            eprintln!(
                "no environment tracks {}: nothing to deploy",
                deployment.git_ref
            );
        }
        Ok(deployment)
    };
    match &cli.command {
        Command::Env => print_deployment(&plan()?, global.format, &actions)?,
        Command::Build(args) => build(global, args, &config, &plan()?, &actions, &cwd)?,
        Command::InitWorkflows(args) => return init_workflows(args, &config, global.quiet),
    }
    Ok(exit_codes::SUCCESS)
}

fn print_deployment(d: &Deployment, format: Format, actions: &Actions) -> Result<(), Error> {
    match format {
        Format::Human => {
            let mut lines = vec![
                ("ref", d.git_ref.clone()),
                ("sha", d.sha.clone()),
                (
                    "environment",
                    d.environment.clone().unwrap_or_else(|| "none".to_owned()),
                ),
                (
                    "image",
                    d.image.clone().unwrap_or_else(|| {
                        "none (set registry and image in the config)".to_owned()
                    }),
                ),
            ];
            for (i, tag) in d.tags.iter().enumerate() {
                lines.push((if i == 0 { "tags" } else { "" }, tag.clone()));
            }
            lines.push(("lookup tag", d.lookup_tag.clone()));
            let text: String = lines
                .iter()
                .map(|(k, v)| format!("{k:<12} {v}\n"))
                .collect();
            write_stdout(&text)
        }
        Format::Json => {
            let json = serde_json::to_string_pretty(d).expect("a deployment always serialises");
            write_stdout(&format!("{json}\n"))
        }
        Format::Github => {
            let text = github::format_outputs(&[
                ("ref", d.git_ref.clone()),
                ("sha", d.sha.clone()),
                ("environment", d.environment.clone().unwrap_or_default()),
                ("tag", d.tags.first().cloned().unwrap_or_default()),
                ("tags", d.tags.join("\n")),
                ("lookup_tag", d.lookup_tag.clone()),
                ("image", d.image.clone().unwrap_or_default()),
                ("timestamp", d.timestamp.to_string()),
            ]);
            match &actions.output {
                Some(path) => github::append(path, &text),
                None => write_stdout(&text),
            }
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> Result<(), Error> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Write {
            what: "standard output".to_owned(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// Whether stderr is a terminal that should get spinners.
fn is_interactive(color: ColorChoice) -> bool {
    match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

fn build(
    global: &GlobalArgs,
    args: &BuildArgs,
    config: &Config,
    deployment: &Deployment,
    actions: &Actions,
    cwd: &std::path::Path,
) -> Result<(), Error> {
    let password = if args.registry_password_stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
            Error::Write {
                what: "the password from standard input".to_owned(),
                source,
            }
        })?;
        Some(text.trim_end_matches(['\n', '\r']).to_owned())
    } else {
        None
    };
    let credential = credentials::explicit(args.registry_user.as_deref(), password)?;
    let builder = args
        .build_with
        .or(config.build.builder)
        .unwrap_or(BuilderKind::Buildx);
    if args.output.is_some() && builder != BuilderKind::Native {
        return Err(Error::usage(
            "--output writes an image the tool packs itself; add --build-with native",
        ));
    }
    let mut config = config.clone();
    config
        .build
        .insecure_registries
        .extend(args.insecure_registries.iter().cloned());
    let options = ClientOptions {
        insecure_registries: config.build.insecure_registries.clone(),
        ..ClientOptions::default()
    };
    let retagger_kind = args
        .retag_with
        .or(config.build.retagger)
        .unwrap_or_else(RetaggerKind::default_here);
    let retagger = Retagger::new(retagger_kind, options, credential);
    let mode = if global.quiet {
        Mode::Quiet
    } else if actions.active {
        Mode::Actions
    } else if is_interactive(global.color) {
        Mode::Spinner
    } else {
        Mode::Plain
    };
    let progress = Progress::new(mode);
    let scratch = tempfile::tempdir().map_err(|source| Error::Write {
        what: "a temporary folder".to_owned(),
        source,
    })?;
    let job = Job {
        config: &config,
        deployment,
        builder,
        retagger: &retagger,
        progress: &progress,
        source_url: actions.source_url().or_else(|| crate::git::origin_url(cwd)),
        scratch_dir: scratch.path(),
        output: args.output.clone(),
        epoch: source_date_epoch()?
            .or_else(|| crate::git::commit_time(cwd, &deployment.sha))
            .unwrap_or(deployment.timestamp),
    };
    if args.dry_run {
        let lines = job.describe()?;
        return write_stdout(&(lines.join("\n") + "\n"));
    }
    let report = job.run()?;
    if global.verbose > 0 && retagger.request_count() > 0 {
        progress.note(&format!(
            "built-in registry client: {} requests",
            retagger.request_count()
        ));
    }
    print_report(&report, global.format, actions)
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

fn print_report(report: &Report, format: Format, actions: &Actions) -> Result<(), Error> {
    let action = match report.action {
        Action::Built => "built",
        Action::Retagged => "retagged",
        Action::None => "none",
    };
    let outputs = github::format_outputs(&[
        ("action", action.to_owned()),
        ("built", (report.action == Action::Built).to_string()),
        ("digest", report.digest.clone().unwrap_or_default()),
        ("image", report.image.clone().unwrap_or_default()),
        ("tags", report.tags.join("\n")),
        (
            "environment",
            report.environment.clone().unwrap_or_default(),
        ),
        ("ref", report.git_ref.clone()),
        ("sha", report.sha.clone()),
    ]);
    if actions.active {
        if let Some(path) = &actions.output {
            github::append(path, &outputs)?;
        }
        if let Some(path) = &actions.step_summary {
            let summary = github::summary_table(&[
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
            ]);
            github::append(path, &summary)?;
        }
    }
    match format {
        Format::Json => write_stdout(
            &(serde_json::to_string_pretty(report).expect("a report always serialises") + "\n"),
        ),
        Format::Github if actions.output.is_none() => write_stdout(&outputs),
        Format::Github => Ok(()),
        Format::Human => {
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
            write_stdout(&text)
        }
    }
}

fn init_workflows(args: &InitWorkflowsArgs, config: &Config, quiet: bool) -> Result<u8, Error> {
    let files = workflows::generate(config, &config.workflows)?;
    let root = &config.root_dir;
    if args.check {
        let drift = workflows::drift(root, &files);
        if drift.is_empty() {
            if !quiet {
                eprintln!("{} workflows are up to date", files.len());
            }
            return Ok(exit_codes::SUCCESS);
        }
        write_stdout(&drift.concat())?;
        eprintln!(
            "error: {} workflow file(s) differ from what the configuration generates; run `cargo gitops init-workflows` and commit the result",
            drift.len()
        );
        return Ok(exit_codes::FAILURE);
    }
    workflows::write(root, &files)?;
    if !quiet {
        for file in &files {
            eprintln!("wrote {}", file.path.display());
        }
        eprintln!("next: commit .github/workflows");
    }
    Ok(exit_codes::SUCCESS)
}
