//! `cargo gitops promote`: moves a branch-tracked environment's branch to HEAD, or prints the
//! pull request that asks for it.

use std::path::Path;

use clap::Args;

use cargo_gitops::config::Config;
use cargo_gitops::delivery::promote::{self, PromoteMode};
use cargo_gitops::delivery::release;
use cargo_gitops::error::Error;

use super::GlobalArgs;
use super::output::{Format, write_stdout};

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

pub fn run(
    global: &GlobalArgs,
    args: &PromoteArgs,
    config: &Config,
    cwd: &Path,
) -> Result<(), Error> {
    let mode = if args.pr {
        PromoteMode::PullRequest
    } else if args.push {
        PromoteMode::Push
    } else {
        PromoteMode::Move
    };
    let promotion =
        promote::plan_promotion(config, cwd, &args.environment, args.branch.as_deref(), mode)?;
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
        if global.format == Format::Json {
            let mut json = serde_json::to_value(&promotion).expect("a promotion always serialises");
            json["dry_run"] = serde_json::Value::Bool(true);
            json["commands"] = lines[1..].into();
            return write_stdout(&format!("{json:#}\n"));
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
            eprintln!("pushed {} to {}", promotion.branch, release::REMOTE);
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
