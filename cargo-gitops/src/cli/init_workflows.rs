//! `cargo gitops init-workflows`: writes the generated pipelines of each CI (GitHub Actions,
//! GitLab CI), or with `--check` shows how the committed ones drifted.

use clap::Args;

use cargo_gitops::ci::gitlab_pipeline;
use cargo_gitops::ci::workflows::{self, Drift, GeneratedFile};
use cargo_gitops::config::{BuilderKind, Config, PipelineKind};
use cargo_gitops::error::Error;

use super::GlobalArgs;
use super::output::{Format, write_stdout};

#[derive(Debug, Args)]
pub struct InitWorkflowsArgs {
    /// Write nothing; exit 1 and print a unified diff when the committed workflows differ
    #[arg(long)]
    pub check: bool,

    /// The CI to write pipelines for; repeatable [default: config `ci`, else github]
    #[arg(long = "ci", value_enum, value_name = "CI")]
    pub ci: Vec<PipelineKind>,
}

pub fn run(args: &InitWorkflowsArgs, configs: &[Config], global: &GlobalArgs) -> Result<(), Error> {
    if global.format == Format::Github {
        return Err(super::unsupported_format("init-workflows"));
    }
    let mut kinds = if args.ci.is_empty() {
        configs[0].workflows.pipelines.clone()
    } else {
        args.ci.clone()
    };
    kinds.sort();
    kinds.dedup();
    let (files, drift) = generate(args, configs, &kinds)?;
    if !global.quiet {
        warn_dockerfile_gaps(configs);
    }
    if args.check {
        check(args, &configs[0], global, &kinds, &files, &drift)
    } else {
        write(&configs[0], global, &kinds, &files)
    }
}

/// Every pipeline file of `kinds`, for every image, and with `--check` how the files on disk
/// drifted from them.
fn generate(
    args: &InitWorkflowsArgs,
    configs: &[Config],
    kinds: &[PipelineKind],
) -> Result<(Vec<GeneratedFile>, Vec<Drift>), Error> {
    let root = &configs[0].root_dir;
    let mut files: Vec<GeneratedFile> = Vec::new();
    let mut drift: Vec<Drift> = Vec::new();
    for kind in kinds {
        match kind {
            PipelineKind::Github => {
                // Every image's workflows, named after it when there are several.
                let generated = workflows::generate_each(configs)?;
                if args.check {
                    drift.extend(workflows::drift(root, &generated));
                }
                files.extend(generated);
            }
            PipelineKind::Gitlab => {
                // One file for every image: GitLab includes one file, and its jobs run in
                // parallel within the stage.
                let generated = vec![gitlab_pipeline::generate_each(configs)?];
                if args.check {
                    drift.extend(workflows::file_drift(root, &generated));
                }
                files.extend(generated);
            }
        }
    }
    Ok((files, drift))
}

/// `--check`: prints the drift (a diff, or JSON) and fails when there is any.
fn check(
    args: &InitWorkflowsArgs,
    config: &Config,
    global: &GlobalArgs,
    kinds: &[PipelineKind],
    files: &[GeneratedFile],
    drift: &[Drift],
) -> Result<(), Error> {
    let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    match global.format {
        Format::Json => {
            let json = serde_json::json!({ "files": paths, "drift": drift });
            write_stdout(&format!("{json:#}\n"))?;
        }
        _ => {
            let diffs: String = drift.iter().map(|d| d.diff.as_str()).collect();
            write_stdout(&diffs)?;
        }
    }
    if !drift.is_empty() {
        // The same command, with the same --ci flags, writes what is missing.
        let flags: String = args
            .ci
            .iter()
            .map(|k| format!(" --ci {}", kind_name(*k)))
            .collect();
        return Err(Error::Drift {
            count: drift.len(),
            fix: format!("cargo gitops init-workflows{flags}"),
        });
    }
    if !global.quiet {
        eprintln!("{} workflows are up to date", files.len());
        if kinds.contains(&PipelineKind::Gitlab) {
            warn_without_include(config);
        }
    }
    Ok(())
}

/// Writes the files (and, for GitLab, a root `.gitlab-ci.yml` that includes them, once).
fn write(
    config: &Config,
    global: &GlobalArgs,
    kinds: &[PipelineKind],
    files: &[GeneratedFile],
) -> Result<(), Error> {
    let root = &config.root_dir;
    let gitlab = kinds.contains(&PipelineKind::Gitlab);
    workflows::write(root, files)?;
    let removed = if kinds.contains(&PipelineKind::Github) {
        workflows::remove_stale(root, files)?
    } else {
        Vec::new()
    };
    let mut written: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    if gitlab && gitlab_pipeline::root_includes_pipeline(root).is_none() {
        let seed = gitlab_pipeline::root_pipeline();
        workflows::write(root, std::slice::from_ref(&seed))?;
        written.push(seed.path.display().to_string());
    }
    let removed: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
    if global.format == Format::Json {
        let json = serde_json::json!({ "written": written, "removed": removed });
        write_stdout(&format!("{json:#}\n"))?;
    }
    if !global.quiet {
        for path in &written {
            eprintln!("wrote {path}");
        }
        for path in &removed {
            eprintln!("removed {path} (no longer generated)");
        }
        if gitlab {
            warn_without_include(config);
        }
        let dirs: Vec<&str> = kinds
            .iter()
            .map(|k| match k {
                PipelineKind::Github => ".github/workflows",
                PipelineKind::Gitlab => ".gitlab and .gitlab-ci.yml",
            })
            .collect();
        eprintln!("next: commit {}", dirs.join(", "));
    }
    Ok(())
}

fn kind_name(kind: PipelineKind) -> &'static str {
    match kind {
        PipelineKind::Github => "github",
        PipelineKind::Gitlab => "gitlab",
    }
}

/// A native build beside a Dockerfile: what the Dockerfile does that the native build does
/// not carry over, and the key that would.
fn warn_dockerfile_gaps(configs: &[Config]) {
    for config in configs {
        if config.build.builder != Some(BuilderKind::Native) {
            continue;
        }
        let dockerfile = config.dockerfile();
        let Ok(text) = std::fs::read_to_string(&dockerfile) else {
            continue;
        };
        let gaps = cargo_gitops::build::native::dockerfile_gaps(&text);
        if !gaps.is_empty() {
            eprintln!(
                "warning: {} is not used by the native build, which does not carry over: {}",
                dockerfile
                    .strip_prefix(&config.root_dir)
                    .unwrap_or(&dockerfile)
                    .display(),
                gaps.join("; ")
            );
        }
    }
}

/// Says so when `.gitlab-ci.yml` does not include the generated file: its jobs would not run.
fn warn_without_include(config: &Config) {
    if gitlab_pipeline::root_includes_pipeline(&config.root_dir) == Some(false) {
        eprintln!(
            "warning: {} does not mention {}: add `include: [{{local: {}}}]` to it, or its jobs never run",
            gitlab_pipeline::ROOT_PIPELINE,
            gitlab_pipeline::PIPELINE_PATH,
            gitlab_pipeline::PIPELINE_PATH
        );
    }
}
