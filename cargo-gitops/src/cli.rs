//! The command line: clap definitions for `cargo gitops` and its subcommands, and dispatch to
//! the library. Each subcommand's work lives in its own module; this one only wires flags to it
//! and prints results.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config;
use crate::deployment::{self, Deployment, Request};
use crate::error::Error;
use crate::exit_codes;
use crate::github::{self, Actions};

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
    match cli.command {
        Command::Env => {
            let config = config::load(
                cli.global.manifest_path.as_deref(),
                cli.global.package.as_deref(),
                &cwd,
            )?;
            let request = Request {
                ref_arg: cli.global.git_ref.as_deref(),
                sha_arg: cli.global.sha.as_deref(),
                timestamp: cli.global.timestamp,
            };
            let deployment = deployment::plan(&config, &request, &actions, &cwd)?;
            if deployment.environment.is_none() && !cli.global.quiet {
                eprintln!(
                    "no environment tracks {}: nothing to deploy",
                    deployment.git_ref
                );
            }
            print_deployment(&deployment, cli.global.format, &actions)?;
            Ok(exit_codes::SUCCESS)
        }
    }
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
