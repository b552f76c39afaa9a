//! The command line: clap definitions for `cargo gitops` and its subcommands, and dispatch to
//! the library. Each subcommand's work lives in its own module; this one only wires flags to it
//! and prints results.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use cargo_gitops::build::job::{Action, Job, Report};
use cargo_gitops::build::plan::Plan;
use cargo_gitops::build::retag::{self, Retagger};
use cargo_gitops::ci::github::{self, Actions};
use cargo_gitops::ci::workflows;
use cargo_gitops::config::{self, BuilderKind, Config, RetaggerKind};
use cargo_gitops::deployment::{self, Deployment, Request};
use cargo_gitops::error::Error;
use cargo_gitops::exit_codes;
use cargo_gitops::progress::{Mode, Progress};
use cargo_gitops::registry::client::ClientOptions;
use cargo_gitops::registry::credentials;

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
    /// retagged (same digest, no layer moves); otherwise it is built once and pushed, and every
    /// tag is brought onto the lookup tag's digest. No tag ever names an incomplete image.
    Build(BuildArgs),

    /// Write the GitHub Actions workflows: one pipeline, one workflow per environment.
    ///
    /// Renders `.github/workflows/gitops-pipeline.yml` and `gitops-<environment>.yml` from the
    /// templates and the configuration, so triggers always agree with `cargo gitops env`.
    /// With --check, writes nothing and exits 1 with a diff when the files are out of date.
    InitWorkflows(InitWorkflowsArgs),

    /// Write Flux image automation manifests: the policies that select each environment's newest tag.
    ///
    /// One ImageRepository for the image and one ImagePolicy per environment (per branch given
    /// with --branch where tags name the branch), each with an anchored tag pattern derived from
    /// the environment's tag format, so it never selects another environment's image.
    Flux(FluxArgs),

    /// Tag HEAD with the next SemVer release: patch, minor, major, or a version.
    ///
    /// Computes the version from the repository's tags (a channel release is X.Y.Z-CHANNEL.N),
    /// refuses on a dirty working tree, an existing tag, a version not above the current one, or
    /// HEAD off the staging branch, then creates an annotated tag; --push publishes it.
    Release(ReleaseArgs),

    /// Promote HEAD to a branch-tracked environment: fast-forward its branch, or open a pull request.
    ///
    /// Moves the environment's branch (e.g. test/uat1) to HEAD, fast-forward only; --push
    /// publishes it, --pr prints the `gh pr create` command for the approval workflow instead.
    /// Tag-tracked environments are promoted with `cargo gitops release`.
    Promote(PromoteArgs),

    /// List what an environment has received, newest first, from the registry's tags.
    ///
    /// Each line: build time or version, tag, commit (from the `commit-<sha40>` lookup tag with
    /// the same digest) and digest.
    History(HistoryArgs),
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

    /// Refuse (exit 2) unless the ref deploys to this environment; the generated workflows
    /// pass the GitHub Environment they run under, so its protection rules cannot be skipped
    #[arg(long, value_name = "NAME")]
    pub environment: Option<String>,

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
    let cwd = std::env::current_dir().map_err(|source| Error::Read {
        what: "the current directory".to_owned(),
        source,
    })?;
    let actions = Actions::from_env();
    let global = &cli.global;
    cargo_gitops::process::echo_commands(global.verbose > 0);
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
        Command::Flux(args) => flux(args, &config, global.quiet)?,
        Command::Release(args) => release(global, args, &config, &cwd, &actions)?,
        Command::Promote(args) => promote(global, args, &config, &cwd)?,
        Command::History(args) => history(global, args, &config)?,
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
    let password = read_password(args)?;
    check_environment(args, deployment)?;
    // Flags and variables name the credential of the target registry, and only of it.
    let target_registry = deployment
        .image
        .as_deref()
        .map(cargo_gitops::registry::client::Repository::parse)
        .transpose()?
        .map(|r| r.registry);
    let credential = credentials::explicit(args.registry_user.as_deref(), password)?.map(|c| {
        match &target_registry {
            Some(registry) => c.only_for(registry),
            None => c,
        }
    });
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
        .unwrap_or_else(retag::default_retagger);
    let retagger = Retagger::new(retagger_kind, options, credential);
    let progress = Progress::new(progress_mode(global, actions));
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
        source_url: actions
            .source_url()
            .or_else(|| cargo_gitops::git::origin_url(cwd)),
        scratch_dir: scratch.path(),
        output: args.output.clone(),
        epoch: source_date_epoch()?
            .or_else(|| cargo_gitops::git::commit_time(cwd, &deployment.sha))
            .unwrap_or(deployment.timestamp),
    };
    let plan = job.plan()?;
    if args.dry_run {
        return print_dry_run(&plan, &retagger, global.format);
    }
    let report = job.run(&plan)?;
    if global.verbose > 0 && retagger.request_count() > 0 {
        progress.note(&format!(
            "built-in registry client: {} requests",
            retagger.request_count()
        ));
    }
    print_report(&report, global.format, actions)
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

/// `--registry-password-stdin`: the password, without the line's end.
fn read_password(args: &BuildArgs) -> Result<Option<String>, Error> {
    if !args.registry_password_stdin {
        return Ok(None);
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
        Error::Read {
            what: "the password from standard input".to_owned(),
            source,
        }
    })?;
    Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
}

/// How progress is shown: nothing, GitHub Actions groups, spinners, or plain lines.
fn progress_mode(global: &GlobalArgs, actions: &Actions) -> Mode {
    if global.quiet {
        Mode::Quiet
    } else if actions.active {
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
        _ => write_stdout(&description.text()),
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
    // In Actions the outputs always go to $GITHUB_OUTPUT; elsewhere, as `env` does, only
    // with --format github, and to stdout when there is no such file.
    let output_file = actions
        .output
        .as_ref()
        .filter(|_| actions.active || format == Format::Github);
    if let Some(path) = output_file {
        github::append(path, &outputs)?;
    }
    if actions.active
        && let Some(path) = &actions.step_summary
    {
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
    match format {
        Format::Json => write_stdout(
            &(serde_json::to_string_pretty(report).expect("a report always serialises") + "\n"),
        ),
        Format::Github if output_file.is_none() => write_stdout(&outputs),
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

#[derive(Debug, Args)]
pub struct FluxArgs {
    /// A branch to follow in environments whose tags name the branch (development, testing); repeatable
    #[arg(long = "branch", value_name = "NAME")]
    pub branches: Vec<String>,

    /// Namespace of the Flux objects
    #[arg(long, value_name = "NAMESPACE", default_value = "flux-system")]
    pub namespace: String,

    /// How often Flux scans the registry (a Go duration)
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub interval: String,

    /// Secret with the registry login (`kubectl create secret docker-registry`)
    #[arg(long, value_name = "NAME")]
    pub secret_ref: Option<String>,

    /// Start of the object names [default: the image's name]
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,

    /// Print only the `image:` line with the policy marker for a deployment of this environment
    #[arg(long, value_name = "ENVIRONMENT")]
    pub marker: Option<String>,

    /// Write the manifests to this file instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// patch, minor, major, or a version such as 1.4.0
    #[arg(value_name = "BUMP")]
    pub bump: cargo_gitops::delivery::release::Bump,

    /// Release the next pre-release of this production channel (X.Y.Z-CHANNEL.N)
    #[arg(long, value_name = "CHANNEL")]
    pub channel: Option<String>,

    /// Push the tag to origin once created
    #[arg(long)]
    pub push: bool,

    /// Print the git commands and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Release from a branch other than the staging branch, or a tag no environment tracks
    #[arg(long)]
    pub force: bool,

    /// The tag's message [default: "Release TAG"]
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The environment to promote HEAD to (one that follows a branch, such as testing)
    #[arg(value_name = "ENVIRONMENT")]
    pub environment: String,

    /// The environment's branch, when it follows a pattern such as test/*
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,

    /// Push the branch to origin once moved
    #[arg(long, conflicts_with = "pr")]
    pub push: bool,

    /// Move nothing; print the `gh pr create` command that asks for the promotion
    #[arg(long)]
    pub pr: bool,

    /// Print the git commands and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The environment to list
    #[arg(value_name = "ENVIRONMENT")]
    pub environment: String,

    /// Only this branch's images, where tags name the branch
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,

    /// Show at most this many images (one registry request each)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,

    /// Speak plain HTTP to this registry (loopback registries always are); repeatable
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

fn flux(args: &FluxArgs, config: &Config, quiet: bool) -> Result<(), Error> {
    let options = cargo_gitops::delivery::flux::Options {
        branches: args.branches.clone(),
        namespace: args.namespace.clone(),
        interval: args.interval.clone(),
        secret_ref: args.secret_ref.clone(),
        name_prefix: args.name_prefix.clone(),
    };
    let manifests = cargo_gitops::delivery::flux::plan(config, &options)?;
    if let Some(environment) = &args.marker {
        let lines = cargo_gitops::delivery::flux::markers(&manifests, environment)?;
        return write_stdout(&(lines.join("\n") + "\n"));
    }
    if !quiet {
        for note in &manifests.notes {
            eprintln!("note: {note}");
        }
    }
    let yaml = cargo_gitops::delivery::flux::render(&manifests);
    let Some(path) = &args.output else {
        return write_stdout(&yaml);
    };
    cargo_gitops::files::write_whole(path, yaml.as_bytes())?;
    if !quiet {
        eprintln!(
            "wrote {} ({} image repositories, {} image policies)",
            path.display(),
            manifests.repositories.len(),
            manifests.policies.len()
        );
    }
    Ok(())
}

fn release(
    global: &GlobalArgs,
    args: &ReleaseArgs,
    config: &Config,
    cwd: &std::path::Path,
    actions: &Actions,
) -> Result<(), Error> {
    let request = cargo_gitops::delivery::release::ReleaseRequest {
        bump: args.bump.clone(),
        channel: args.channel.clone(),
        force: args.force,
        message: args.message.clone(),
    };
    let plan = cargo_gitops::delivery::release::plan_release(config, cwd, &request)?;
    if args.push {
        cargo_gitops::delivery::release::check_remote(cwd)?;
    }
    let after = plan
        .previous
        .as_deref()
        .map_or_else(|| "first release".to_owned(), |p| format!("after {p}"));
    if args.dry_run {
        let mut lines = vec![
            format!(
                "# release {} ({after}) on {}, for environment {}",
                plan.tag,
                &plan.commit[..7],
                plan.environment.as_deref().unwrap_or("none")
            ),
            plan.tag_command().display(),
        ];
        if args.push {
            lines.push(plan.push_command().display());
        }
        return write_stdout(&(lines.join("\n") + "\n"));
    }
    plan.create()?;
    if !global.quiet {
        eprintln!(
            "created tag {} on {} ({after})",
            plan.tag,
            &plan.commit[..7]
        );
    }
    if args.push {
        plan.push_command().run()?;
        if !global.quiet {
            eprintln!(
                "pushed {} to {}",
                plan.tag,
                cargo_gitops::delivery::release::REMOTE
            );
        }
    } else if !global.quiet {
        eprintln!("next: {}", plan.push_command().display());
    }
    match global.format {
        Format::Human => write_stdout(&format!("{}\n", plan.tag)),
        Format::Json => {
            let mut json = serde_json::to_value(&plan).expect("a release always serialises");
            json["pushed"] = serde_json::Value::Bool(args.push);
            write_stdout(&format!("{json:#}\n"))
        }
        Format::Github => {
            let text = github::format_outputs(&[
                ("tag", plan.tag.clone()),
                ("version", plan.version.clone()),
                ("commit", plan.commit.clone()),
                ("pushed", args.push.to_string()),
            ]);
            match &actions.output {
                Some(path) => github::append(path, &text),
                None => write_stdout(&text),
            }
        }
    }
}

fn promote(
    global: &GlobalArgs,
    args: &PromoteArgs,
    config: &Config,
    cwd: &std::path::Path,
) -> Result<(), Error> {
    use cargo_gitops::delivery::release::PromoteMode;
    let mode = if args.pr {
        PromoteMode::PullRequest
    } else if args.push {
        PromoteMode::Push
    } else {
        PromoteMode::Move
    };
    let promotion = cargo_gitops::delivery::release::plan_promotion(
        config,
        cwd,
        &args.environment,
        args.branch.as_deref(),
        mode,
    )?;
    if mode == PromoteMode::PullRequest {
        return write_stdout(&(promotion.pull_request_command().display() + "\n"));
    }
    let short = |sha: &str| sha[..7].to_owned();
    let movement = match &promotion.from {
        _ if promotion.is_noop() => format!(
            "{} is already at {}",
            promotion.branch,
            short(&promotion.to)
        ),
        Some(from) => format!(
            "move {} from {} to {} (fast-forward, {} commit{})",
            promotion.branch,
            short(from),
            short(&promotion.to),
            promotion.commits,
            if promotion.commits == 1 { "" } else { "s" }
        ),
        None => format!("create {} at {}", promotion.branch, short(&promotion.to)),
    };
    if args.dry_run {
        let mut lines = vec![format!(
            "# promote to {}: {movement}",
            promotion.environment
        )];
        if !promotion.is_noop() {
            lines.push(promotion.move_command().display());
        }
        if mode == PromoteMode::Push {
            lines.push(promotion.push_command().display());
        }
        return write_stdout(&(lines.join("\n") + "\n"));
    }
    if !promotion.is_noop() {
        promotion.move_branch()?;
    }
    if !global.quiet {
        eprintln!("{movement}");
    }
    if mode == PromoteMode::Push {
        promotion.push_command().run()?;
        if !global.quiet {
            eprintln!(
                "pushed {} to {}",
                promotion.branch,
                cargo_gitops::delivery::release::REMOTE
            );
        }
    } else if !global.quiet {
        eprintln!("next: {}", promotion.push_command().display());
    }
    if global.format == Format::Json {
        let mut json = serde_json::to_value(&promotion).expect("a promotion always serialises");
        json["pushed"] = serde_json::Value::Bool(mode == PromoteMode::Push);
        return write_stdout(&format!("{json:#}\n"));
    }
    Ok(())
}

fn history(global: &GlobalArgs, args: &HistoryArgs, config: &Config) -> Result<(), Error> {
    if global.format == Format::Github {
        return Err(Error::usage(
            "history prints --format human or json; drop --format github",
        ));
    }
    if args.limit == 0 {
        return Err(Error::usage("--limit must be at least 1"));
    }
    let environment = cargo_gitops::delivery::release::find_environment(config, &args.environment)?;
    let branch = cargo_gitops::delivery::history::branch_of(environment, args.branch.as_deref())?;
    let repository = cargo_gitops::delivery::history::repository_of(config, environment)?;
    let mut insecure_registries = config.build.insecure_registries.clone();
    insecure_registries.extend(args.insecure_registries.iter().cloned());
    let options = ClientOptions {
        insecure_registries,
        ..ClientOptions::default()
    };
    // The one place that makes registry clients, with the same credential rules as `build`.
    let explicit = credentials::explicit(None, None)?.map(|c| c.only_for(&repository.registry));
    let client =
        Retagger::new(RetaggerKind::Builtin, options, explicit).client(&repository.registry)?;
    let query = cargo_gitops::delivery::history::Query {
        environment,
        branch: branch.as_ref().map(|(b, n)| (b.as_str(), n.as_str())),
        limit: args.limit,
    };
    let entries = cargo_gitops::delivery::history::list(&client, &repository, &query)?;
    if global.format == Format::Json {
        let json = serde_json::to_string_pretty(&entries).expect("entries always serialise");
        return write_stdout(&format!("{json}\n"));
    }
    if entries.is_empty() {
        if !global.quiet {
            eprintln!(
                "no images of environment `{}` in {repository}",
                environment.name
            );
        }
        return Ok(());
    }
    write_stdout(&cargo_gitops::delivery::history::table(&entries))
}
