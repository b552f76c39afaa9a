//! `cargo gitops affected`: which services this commit changes, compared with what each
//! service's environment last received (or with --since), for a CI matrix.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::sync::Arc;

use clap::Args;

use cargo_gitops::affected::{self, LocalRepo, Service, Since, Workspace};
use cargo_gitops::build::retag::Retagger;
use cargo_gitops::ci::Runner;
use cargo_gitops::config::{Config, RetaggerKind, SourceKind};
use cargo_gitops::delivery::{history, promote};
use cargo_gitops::deployment::{self, Request};
use cargo_gitops::environment::Environment;
use cargo_gitops::error::Error;
use cargo_gitops::registry::client::RegistryClient;

use super::output::{Format, write_stdout};
use super::{GlobalArgs, RegistryArgs};

#[derive(Debug, Args)]
pub struct AffectedArgs {
    /// Compare with this commit or ref instead of the commit each service's environment last
    /// received (read from the registry's tags)
    #[arg(long, value_name = "REF")]
    pub since: Option<String>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(
    global: &GlobalArgs,
    args: &AffectedArgs,
    configs: &[Config],
    runner: &Runner,
    cwd: &Path,
) -> Result<(), Error> {
    if global.format == Format::Gitlab {
        return Err(super::unsupported_format("affected"));
    }
    let request = Request {
        ref_arg: global.git_ref.as_deref(),
        sha_arg: global.sha.as_deref(),
        timestamp: global.timestamp,
    };
    let mut repo = LocalRepo::open(cwd)?;
    let root = repo.root();
    let manifest = configs
        .iter()
        .find(|c| c.source == SourceKind::Cargo)
        .and_then(|c| c.manifest.clone());
    let mut clients = Clients::default();
    let mut pending = Vec::new();
    let mut head = None;
    let mut untracked = None;
    for config in configs {
        let deployment = deployment::plan(config, &request, runner, cwd)?;
        head.get_or_insert_with(|| deployment.sha.clone());
        let Some(environment) = &deployment.environment else {
            untracked = Some(deployment.git_ref.clone());
            continue;
        };
        let package = config.service_name();
        let image = deployment.image.clone().unwrap_or_else(|| package.clone());
        let since = match &args.since {
            Some(rev) => Compared::Given(Since::Commit {
                rev: rev.clone(),
                image_of: None,
            }),
            None => Compared::Received(query(
                config,
                environment,
                &deployment.git_ref,
                &args.registry,
                &mut clients,
            )?),
        };
        pending.push((config, package, image, since));
    }
    // The workspace's metadata and every registry's answer are awaited at once: each is a
    // round trip of its own.
    let (workspace, received) = std::thread::scope(|scope| {
        let workspace = scope.spawn(|| manifest.as_deref().map(Workspace::read).transpose());
        let received: Vec<_> = pending
            .iter()
            .map(|(_, _, _, since)| {
                scope.spawn(move || match since {
                    Compared::Given(given) => Ok(given.clone()),
                    Compared::Received(query) => query.ask(),
                })
            })
            .collect();
        let received: Vec<Result<Since, Error>> = received
            .into_iter()
            .map(|thread| thread.join().unwrap_or_else(|_| Err(panicked())))
            .collect();
        (
            workspace.join().unwrap_or_else(|_| Err(panicked())),
            received,
        )
    });
    let workspace = workspace?;
    let mut services = Vec::new();
    for ((config, package, image, _), since) in pending.into_iter().zip(received) {
        let inputs = affected::inputs::of(config, workspace.as_ref(), &root)?;
        services.push((
            Service {
                package,
                image,
                inputs,
            },
            since?,
        ));
    }
    if let Some(git_ref) = untracked
        && services.is_empty()
        && !global.quiet
    {
        eprintln!("no environment tracks {git_ref}: nothing to build");
    }
    let report = match head {
        Some(head) if !services.is_empty() => affected::compare(&mut repo, &head, &services)?,
        _ => affected::Report::default(),
    };
    match global.format {
        Format::Json => {
            let json = serde_json::to_string_pretty(&report).expect("reports always serialise");
            write_stdout(&format!("{json}\n"))
        }
        Format::Github => {
            // One line each, for $GITHUB_OUTPUT: a job matrix of what to build, and the rest.
            let matrix = serde_json::json!({ "include": report.services });
            let unchanged = serde_json::to_string(&report.unchanged).expect("always serialises");
            write_stdout(&format!(
                "matrix={matrix}\ncount={}\nunchanged={unchanged}\n",
                report.services.len()
            ))
        }
        _ => write_stdout(&affected::table(&report)),
    }
}

/// What a service is compared with: given on the command line, or what its environment
/// received, to be asked of its registry.
enum Compared<'c> {
    Given(Since),
    Received(Query<'c>),
}

/// One client per registry, made once: `--registry-password-stdin` can be read only once.
#[derive(Default)]
struct Clients(HashMap<String, Arc<RegistryClient>>);

/// What to ask a registry: which commit an environment last received of an image.
struct Query<'c> {
    client: Arc<RegistryClient>,
    config: &'c Config,
    environment: &'c Environment,
    git_ref: String,
}

impl Query<'_> {
    fn ask(&self) -> Result<Since, Error> {
        affected::received_for(&self.client, self.config, self.environment, &self.git_ref)
    }
}

/// The question for what `config`'s image last received in `environment`, with the client
/// of its registry.
fn query<'c>(
    config: &'c Config,
    environment: &str,
    git_ref: &str,
    registry: &RegistryArgs,
    clients: &mut Clients,
) -> Result<Query<'c>, Error> {
    let environment = promote::find_environment(config, environment)?;
    let repository = history::repository_of(config, environment)?;
    let client = match clients.0.entry(repository.registry.clone()) {
        Entry::Occupied(known) => Arc::clone(known.get()),
        Entry::Vacant(slot) => {
            let (options, credential) =
                registry.client_settings(config, Some(&repository.registry))?;
            let client = Retagger::new(RetaggerKind::Builtin, options, credential)
                .client(&repository.registry)?;
            Arc::clone(slot.insert(client))
        }
    };
    Ok(Query {
        client,
        config,
        environment,
        git_ref: git_ref.to_owned(),
    })
}

fn panicked() -> Error {
    Error::Internal("a thread of `affected` panicked; please report this".to_owned())
}
