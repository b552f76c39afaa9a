//! `cargo gitops init-workflows`: writes the generated pipelines, or with `--check` shows how the
//! committed ones drifted.

use clap::Args;

use cargo_gitops::ci::workflows;
use cargo_gitops::config::Config;
use cargo_gitops::error::Error;

use super::GlobalArgs;
use super::output::{Format, write_stdout};

#[derive(Debug, Args)]
pub struct InitWorkflowsArgs {
    /// Write nothing; exit 1 and print a unified diff when the committed workflows differ
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &InitWorkflowsArgs, config: &Config, global: &GlobalArgs) -> Result<(), Error> {
    let files = workflows::generate(config, &config.workflows)?;
    let root = &config.root_dir;
    let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    if args.check {
        let drift = workflows::drift(root, &files);
        match global.format {
            Format::Json => {
                let json = serde_json::json!({ "files": paths, "drift": drift });
                write_stdout(&format!("{json:#}\n"))?;
            }
            Format::Human => {
                let diffs: String = drift.iter().map(|d| d.diff.as_str()).collect();
                write_stdout(&diffs)?;
            }
            Format::Github => return Err(super::unsupported_format("init-workflows")),
        }
        if !drift.is_empty() {
            return Err(Error::Drift {
                count: drift.len(),
                fix: "cargo gitops init-workflows".to_owned(),
            });
        }
        if !global.quiet {
            eprintln!("{} workflows are up to date", files.len());
        }
        return Ok(());
    }
    if global.format == Format::Github {
        return Err(super::unsupported_format("init-workflows"));
    }
    workflows::write(root, &files)?;
    if global.format == Format::Json {
        let json = serde_json::json!({ "written": paths });
        write_stdout(&format!("{json:#}\n"))?;
    }
    if !global.quiet {
        for path in &paths {
            eprintln!("wrote {path}");
        }
        eprintln!("next: commit .github/workflows");
    }
    Ok(())
}
