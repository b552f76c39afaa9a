//! The command line: clap definitions for `cargo gitops` and its subcommands, and dispatch to
//! the library. Each subcommand's work lives in its own module; this one only wires flags to it
//! and prints results.

mod affected;
mod build;
mod deploy;
mod env;
mod flux;
mod history;
mod init_workflows;
mod output;
mod pins;
mod promote;
mod release;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use cargo_gitops::ci::Runner;
use cargo_gitops::config;
use cargo_gitops::deployment::{self, Deployment, Request};
use cargo_gitops::error::Error;
use cargo_gitops::exit_codes;
use cargo_gitops::registry::client::ClientOptions;
use cargo_gitops::registry::credentials::{self, Credential};

use output::{ColorChoice, Format};

/// GitOps continuous integration: derive the deployment environment from git, build a
/// container image once per commit, and promote it between environments by retagging.
#[derive(Debug, Parser)]
#[command(
    name = "cargo-gitops",
    bin_name = "cargo gitops",
    version,
    propagate_version = true,
    after_help = "Exit codes: 0 success (including \"no environment tracks this ref\"), 1 failure, 2 usage or configuration error.\nConfiguration: gitops.toml, or [workspace.metadata.gitops] / [package.metadata.gitops] in Cargo.toml; see the README."
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

    /// Path to a gitops.toml, for repositories configured outside Cargo.toml [default: the
    /// nearest gitops.toml above the current directory, else Cargo.toml]
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        conflicts_with = "manifest_path"
    )]
    pub config: Option<PathBuf>,

    /// Package (in gitops.toml, image) to act for, when several ship an image
    #[arg(short = 'p', long, global = true, value_name = "NAME")]
    pub package: Option<String>,

    /// Git ref to act for (`main`, `refs/heads/main`, `refs/tags/v1.2.3`); outside CI it must
    /// be a branch or tag of the repository, unless --sha is given too (then a ref that is not
    /// local is taken as is, a short name as a branch: write refs/tags/NAME for a tag)
    /// [default: the CI's variables ($GITHUB_REF, $CI_COMMIT_TAG or $CI_COMMIT_BRANCH, ...; see
    /// the README), else the checked-out branch, or the highest SemVer tag at a detached HEAD]
    #[arg(long = "ref", global = true, value_name = "REF")]
    pub git_ref: Option<String>,

    /// Commit to act for [default: the CI's variables ($GITHUB_SHA, $CI_COMMIT_SHA, ...), else the commit of the ref]
    #[arg(long, global = true, value_name = "SHA")]
    pub sha: Option<String>,

    /// Build time in Unix seconds, used in `{timestamp}` [default: now]
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timestamp: Option<u64>,

    /// Output format: aligned text, one JSON object on stdout, `key=value` lines for $GITHUB_OUTPUT, or a GitLab dotenv report (`GITOPS_KEY=value`)
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// With --format gitlab: write the dotenv report to this file (replaced) instead of stdout, for `artifacts:reports:dotenv`
    #[arg(long, global = true, value_name = "PATH")]
    pub dotenv: Option<PathBuf>,

    /// Print less: only results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: each step and the commands run
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colours and spinners
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Stop the whole run after this long, naming the step it was in: whole seconds, or a
    /// number with s, m or h (90s, 30m, 2h) [default: `timeout` in the configuration, else 1h]
    #[arg(long, global = true, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the environment and image tags of the current commit.
    ///
    /// Resolves the ref and commit (--ref and --sha, else the variables of the CI it runs in, else
    /// the local repository), picks the first configured environment that tracks the ref, and
    /// prints its tags and the CI it detected.
    /// A ref no environment tracks is not an error: it prints `environment: null` and exits 0.
    Env,

    /// Make the commit's image exist with every tag of its environment: retag, or build once.
    ///
    /// Looks up the lookup tag (`commit-<sha40>`) in the registry. When it exists the image is
    /// retagged (same digest, no layer moves); otherwise it is built once and pushed, and every
    /// tag is brought onto the lookup tag's digest. No tag ever names an incomplete image.
    Build(build::BuildArgs),

    /// Write the CI pipelines: GitHub Actions workflows, or with --ci gitlab a GitLab CI file.
    ///
    /// Renders `.github/workflows/gitops-pipeline.yml` and `gitops-<environment>.yml`, and for
    /// GitLab `.gitlab/gitops.gitlab-ci.yml` (one job per environment), from the templates and
    /// the configuration, so triggers and rules always agree with `cargo gitops env`.
    /// With --check, writes nothing and exits 1 with a diff when the files are out of date.
    InitWorkflows(init_workflows::InitWorkflowsArgs),

    /// Write Flux image automation manifests: the policies that select each environment's newest tag.
    ///
    /// One ImageRepository for the image and one ImagePolicy per environment (per branch given
    /// with --branch where tags name the branch), each with an anchored tag pattern derived from
    /// the environment's tag format, so it never selects another environment's image.
    Flux(flux::FluxArgs),

    /// Tag HEAD with the next SemVer release: patch, minor, major, or a version.
    ///
    /// Computes the version from the repository's tags (a channel release is X.Y.Z-CHANNEL.N),
    /// refuses on a dirty working tree, an existing tag, a version not above the current one, or
    /// HEAD off the staging branch, then creates an annotated tag; --push publishes it.
    Release(release::ReleaseArgs),

    /// Promote HEAD to a branch-tracked environment: fast-forward its branch, or open a pull request.
    ///
    /// Moves the environment's branch (e.g. test/uat1) to HEAD, fast-forward only; --push
    /// publishes it, --pr prints the `gh pr create` command for the approval workflow instead.
    /// Tag-tracked environments are promoted with `cargo gitops release`.
    Promote(promote::PromoteArgs),

    /// List what an environment has received, newest first, from the registry's tags.
    ///
    /// Each line: build time or version, tag, commit (from the `commit-<sha40>` lookup tag with
    /// the same digest), digest, and SIGNED: whether a cosign signature is attached (a
    /// `sha256-<hex>.sig` tag or a sigstore bundle referrer). That says a signature is present,
    /// not that it verifies: check it with `cosign verify --key KEY.pub IMAGE@DIGEST`.
    History(history::HistoryArgs),

    /// Write the commit's image into the environment's GitOps manifests: one commit per environment.
    ///
    /// Finds the image `build` made for the commit (its lookup tag's digest and the environment
    /// tag naming it), clones the manifests repository of the `deploy` table, and writes tag and
    /// digest into kustomize `images:`, Flux setter markers and Helm values, keeping every other
    /// byte. Pushes without force, redoing the edit on the new tip when another writer got there
    /// first; a rerun for the same commit changes nothing. Values marked `# gitops:pinned`, or
    /// whose digest this tool did not write, are kept.
    Deploy(deploy::DeployArgs),

    /// Refresh the pins the workflows use: action commits and the install's SHA-256s.
    Pins(pins::PinsArgs),

    /// List the services whose image this commit changes, for a CI matrix.
    ///
    /// Compares the commit with the one each service's environment last received (the commit
    /// of its newest tag in the registry, so a skipped or failed run is caught up), or with
    /// --since: a Rust service changes with its package's files, the path dependencies it
    /// links, the workspace's manifest, toolchain file and cargo configuration, and the crates
    /// Cargo.lock pins for it; any service with its Dockerfile, the context's .dockerignore and
    /// its `paths`; a service that is not Rust and names no `paths`, with its build context.
    /// A shallow clone fetches the commit it compares with. --format github prints
    /// `matrix={"include":[...]}` for a job matrix.
    Affected(affected::AffectedArgs),
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

/// Runs a parsed command line; returns the exit code on success. `expire` reports the error
/// of a run stopped at its deadline, and exits.
pub fn run(cli: Cli, expire: fn(Error)) -> Result<u8, Error> {
    let global = &cli.global;
    let timeout = match &global.timeout {
        Some(text) => Some(
            cargo_gitops::deadline::parse(text)
                .map_err(|message| Error::usage(format!("--timeout: {message}")))?,
        ),
        None => None,
    };
    cargo_gitops::deadline::arm(timeout.unwrap_or(cargo_gitops::deadline::DEFAULT), expire);
    let cwd = std::env::current_dir().map_err(|source| Error::Read {
        what: "the current directory".to_owned(),
        source,
    })?;
    let runner = Runner::from_env();
    check_format(&cli.command, global)?;
    cargo_gitops::process::echo_commands(global.verbose > 0);
    let source = config::Source {
        config_path: global.config.as_deref(),
        manifest_path: global.manifest_path.as_deref(),
        package: global.package.as_deref(),
        cwd: &cwd,
    };
    // Flux and the pipelines cover every image of the repository: they read each one's
    // configuration.
    let mut configs = match &cli.command {
        Command::Flux(_)
        | Command::InitWorkflows(_)
        | Command::Affected(_)
        | Command::Deploy(_)
        | Command::History(_) => config::load_each(&source)?,
        Command::Build(args) if args.all => config::load_each(&source)?,
        // `env` of a repository that ships several images, without -p and outside any of
        // its packages' folders, shows each one's tags.
        Command::Env => match config::load(&source) {
            Ok(config) => vec![config],
            Err(err) => match config::load_each(&source) {
                Ok(each) if each.len() > 1 => each,
                _ => return Err(err),
            },
        },
        _ => vec![config::load(&source)?],
    };
    for config in &mut configs {
        config.follow_default_branch(runner.default_branch.as_deref(), &cwd);
    }
    let config = &configs[0];
    if let (None, Some(configured)) = (timeout, config.timeout) {
        cargo_gitops::deadline::arm(configured, expire);
    }
    if !global.quiet {
        for warning in &config.warnings {
            eprintln!("warning: {warning}");
        }
    }
    let plan = || -> Result<Deployment, Error> {
        let request = Request {
            ref_arg: global.git_ref.as_deref(),
            sha_arg: global.sha.as_deref(),
            timestamp: global.timestamp,
        };
        let deployment = deployment::plan(config, &request, &runner, &cwd)?;
        if deployment.environment.is_none() && !global.quiet {
            match &deployment.pull_request {
                Some(pull_request) if pull_request.withheld_from.is_some() => eprintln!(
                    "{}",
                    deployment::withheld_reason(pull_request, deployment.ci)
                ),
                _ => eprintln!(
                    "no environment tracks {}: nothing to deploy",
                    deployment.git_ref
                ),
            }
        }
        Ok(deployment)
    };
    match &cli.command {
        Command::Env if configs.len() > 1 => env::run_set(&configs, global, &runner, &cwd)?,
        Command::Env => env::run(&plan()?, global, &runner)?,
        Command::Build(args) if args.all => build::run_set(global, args, &configs, &runner, &cwd)?,
        Command::Build(args) => build::run(global, args, config, &plan()?, &runner, &cwd)?,
        Command::InitWorkflows(args) => init_workflows::run(args, &configs, global)?,
        Command::Flux(args) => flux::run(args, &configs, global)?,
        Command::Release(args) => release::run(global, args, config, &cwd, &runner)?,
        Command::Promote(args) => promote::run(global, args, config, &cwd)?,
        Command::History(args) => history::run(global, args, &configs)?,
        Command::Pins(args) => pins::run(args, config, global)?,
        Command::Affected(args) => affected::run(global, args, &configs, &runner, &cwd)?,
        Command::Deploy(args) => deploy::run(global, args, &configs, &runner, &cwd)?,
    }
    Ok(exit_codes::SUCCESS)
}

/// How to reach a registry, for the commands that talk to one (`build`, `history`).
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP to this registry (loopback registries always are); repeatable
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// User name for the registry (built-in client) [env: GITOPS_REGISTRY_USER]
    #[arg(long, value_name = "USER")]
    pub registry_user: Option<String>,

    /// Read the registry password from standard input [env: GITOPS_REGISTRY_PASSWORD]
    #[arg(long)]
    pub registry_password_stdin: bool,
}

impl RegistryArgs {
    /// The client options and the credential the flags and variables give, scoped to
    /// `registry` (the target): a credential given here is never sent to another registry.
    pub fn client_settings(
        &self,
        config: &config::Config,
        registry: Option<&str>,
    ) -> Result<(ClientOptions, Option<Credential>), Error> {
        let password = if self.registry_password_stdin {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
                Error::Read {
                    what: "the password from standard input".to_owned(),
                    source,
                }
            })?;
            Some(text.trim_end_matches(['\n', '\r']).to_owned())
        } else {
            None
        };
        let credential =
            credentials::explicit(self.registry_user.as_deref(), password)?.map(|credential| {
                match registry {
                    Some(registry) => credential.only_for(registry),
                    None => credential,
                }
            });
        let mut insecure_registries = config.build.insecure_registries.clone();
        insecure_registries.extend(self.insecure_registries.iter().cloned());
        let options = ClientOptions {
            insecure_registries,
            ..ClientOptions::default()
        };
        Ok((options, credential))
    }
}

/// Refuses `--format gitlab` for the commands that have no dotenv report, and `--dotenv`
/// without it.
fn check_format(command: &Command, global: &GlobalArgs) -> Result<(), Error> {
    let name = match command {
        Command::Env | Command::Build(_) | Command::Release(_) => None,
        Command::InitWorkflows(_) => Some("init-workflows"),
        Command::Flux(_) => Some("flux"),
        Command::Promote(_) => Some("promote"),
        Command::History(_) => Some("history"),
        Command::Pins(_) => Some("pins"),
        Command::Affected(_) => Some("affected"),
        Command::Deploy(_) => Some("deploy"),
    };
    match (global.format, name) {
        (Format::Gitlab, Some(name)) => Err(Error::usage(format!(
            "{name} has no dotenv report; drop --format gitlab"
        ))),
        (format, _) if format != Format::Gitlab && global.dotenv.is_some() => Err(Error::usage(
            "--dotenv writes the report of --format gitlab; add --format gitlab or drop --dotenv",
        )),
        _ => Ok(()),
    }
}

/// The refusal for a format a command has nothing to write in.
fn unsupported_format(command: &str) -> Error {
    Error::usage(format!(
        "{command} prints --format human or json only; drop the --format"
    ))
}
