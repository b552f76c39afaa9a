//! `cargo gitops release`: tags HEAD with the next SemVer release, or prints the git commands.

use std::path::Path;

use clap::Args;

use cargo_gitops::ci::{Runner, github};
use cargo_gitops::config::Config;
use cargo_gitops::delivery::release;
use cargo_gitops::error::Error;

use super::GlobalArgs;
use super::output::{Format, write_dotenv, write_stdout};

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// patch, minor, major, or a version such as 1.4.0
    #[arg(value_name = "BUMP")]
    pub bump: release::Bump,

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

pub fn run(
    global: &GlobalArgs,
    args: &ReleaseArgs,
    config: &Config,
    cwd: &Path,
    runner: &Runner,
) -> Result<(), Error> {
    let request = release::ReleaseRequest {
        bump: args.bump.clone(),
        channel: args.channel.clone(),
        force: args.force,
        message: args.message.clone(),
    };
    let plan = release::plan_release(config, cwd, &request)?;
    if args.push {
        release::check_remote(cwd)?;
    }
    let after = plan
        .previous
        .as_deref()
        .map_or_else(|| "first release".to_owned(), |p| format!("after {p}"));
    if args.dry_run {
        return print_dry_run(global, args, &plan, &after);
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
            eprintln!("pushed {} to {}", plan.tag, release::REMOTE);
        }
    } else if !global.quiet {
        eprintln!("next: {}", plan.push_command().display());
    }
    write_result(global, args, &plan, runner)
}

/// The git commands a release would run, and the release itself in JSON.
fn print_dry_run(
    global: &GlobalArgs,
    args: &ReleaseArgs,
    plan: &release::ReleasePlan,
    after: &str,
) -> Result<(), Error> {
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
    if global.format == Format::Json {
        let mut json = serde_json::to_value(plan).expect("a release always serialises");
        json["dry_run"] = serde_json::Value::Bool(true);
        json["commands"] = lines[1..].into();
        return write_stdout(&format!("{json:#}\n"));
    }
    write_stdout(&(lines.join("\n") + "\n"))
}

/// The created release on stdout, in the requested format.
fn write_result(
    global: &GlobalArgs,
    args: &ReleaseArgs,
    plan: &release::ReleasePlan,
    runner: &Runner,
) -> Result<(), Error> {
    match global.format {
        Format::Human => write_stdout(&format!("{}\n", plan.tag)),
        Format::Json => {
            let mut json = serde_json::to_value(plan).expect("a release always serialises");
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
            match &runner.output_file {
                Some(path) => github::append(path, &text),
                None => write_stdout(&text),
            }
        }
        Format::Gitlab => write_dotenv(
            &[
                ("tag", plan.tag.clone()),
                ("version", plan.version.clone()),
                ("commit", plan.commit.clone()),
                ("pushed", args.push.to_string()),
            ],
            global.dotenv.as_deref(),
        ),
    }
}
