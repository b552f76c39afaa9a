//! `cargo gitops flux`: the Flux image automation manifests, or one environment's marker line.

use std::path::PathBuf;

use clap::Args;

use cargo_gitops::config::Config;
use cargo_gitops::delivery::flux;
use cargo_gitops::error::Error;

use super::GlobalArgs;
use super::output::{Format, write_stdout};

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

pub fn run(args: &FluxArgs, configs: &[Config], global: &GlobalArgs) -> Result<(), Error> {
    let quiet = global.quiet;
    if global.format != Format::Human {
        return Err(Error::usage(
            "flux writes Kubernetes YAML manifests; drop --format (it has no json or github form)",
        ));
    }
    let options = flux::Options {
        branches: args.branches.clone(),
        namespace: args.namespace.clone(),
        interval: args.interval.clone(),
        secret_ref: args.secret_ref.clone(),
        name_prefix: args.name_prefix.clone(),
    };
    let manifests = flux::plan_each(configs, &options)?;
    if let Some(environment) = &args.marker {
        let lines = flux::markers(&manifests, environment)?;
        return write_stdout(&(lines.join("\n") + "\n"));
    }
    if !quiet {
        for note in &manifests.notes {
            eprintln!("note: {note}");
        }
    }
    let yaml = flux::render(&manifests);
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
