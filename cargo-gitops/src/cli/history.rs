//! `cargo gitops history`: what an environment received, newest first, read from the registry.

use std::collections::HashMap;
use std::sync::Arc;

use clap::Args;

use cargo_gitops::build::retag::Retagger;
use cargo_gitops::config::{Config, RetaggerKind};
use cargo_gitops::delivery::{history, promote};
use cargo_gitops::error::Error;
use cargo_gitops::registry::client::RegistryClient;

use super::output::{Format, write_stdout};
use super::{GlobalArgs, RegistryArgs};

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

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(global: &GlobalArgs, args: &HistoryArgs, configs: &[Config]) -> Result<(), Error> {
    if global.format == Format::Github {
        return Err(Error::usage(
            "history prints --format human or json; drop --format github",
        ));
    }
    if args.limit == 0 {
        return Err(Error::usage("--limit must be at least 1"));
    }
    let config = match configs {
        [config] => config,
        several => return service_set(global, args, several),
    };
    let environment = promote::find_environment(config, &args.environment)?;
    let branch = history::branch_of(environment, args.branch.as_deref())?;
    let repository = history::repository_of(config, environment)?;
    let (options, credential) = args
        .registry
        .client_settings(config, Some(&repository.registry))?;
    let client =
        Retagger::new(RetaggerKind::Builtin, options, credential).client(&repository.registry)?;
    let query = history::Query {
        environment,
        branch: branch.as_ref().map(|(b, n)| (b.as_str(), n.as_str())),
        limit: args.limit,
    };
    let entries = history::list(&client, &repository, &query)?;
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
    write_stdout(&history::table(&entries))
}

/// A repository that ships several images, without -p: where each service stands in the
/// environment (its newest image), one row each.
fn service_set(global: &GlobalArgs, args: &HistoryArgs, configs: &[Config]) -> Result<(), Error> {
    let mut clients: HashMap<String, Arc<RegistryClient>> = HashMap::new();
    let mut credential_read = None;
    let mut placed = Vec::new();
    for config in configs {
        let environment = promote::find_environment(config, &args.environment)?;
        let branch = history::branch_of(environment, args.branch.as_deref())?;
        let repository = history::repository_of(config, environment)?;
        let client = match clients.get(&repository.registry) {
            Some(client) => Arc::clone(client),
            None => {
                // The flags' credential is read once (standard input can be read only once)
                // and stays scoped to the registry it was given for.
                let (options, credential) = match &credential_read {
                    Some(read) => Clone::clone(read),
                    None => {
                        let read = args
                            .registry
                            .client_settings(config, Some(&repository.registry))?;
                        credential_read = Some(read.clone());
                        read
                    }
                };
                let client = Retagger::new(RetaggerKind::Builtin, options, credential)
                    .client(&repository.registry)?;
                clients.insert(repository.registry.clone(), Arc::clone(&client));
                client
            }
        };
        let query = history::Query {
            environment,
            branch: branch.as_ref().map(|(b, n)| (b.as_str(), n.as_str())),
            limit: 1,
        };
        let package = config.package.clone().unwrap_or_default();
        placed.push(history::Placed::read(
            &client,
            &repository,
            &query,
            &package,
        )?);
    }
    if global.format == Format::Json {
        let json = serde_json::to_string_pretty(&placed).expect("the set always serialises");
        return write_stdout(&format!("{json}\n"));
    }
    write_stdout(&history::service_table(&placed))
}
