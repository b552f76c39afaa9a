//! Which services a commit changes: for each image the repository ships, whether a file its
//! image is made of differs between the commit being built and the last commit its environment
//! received (read from the registry's tags, so a skipped or failed run is caught up), so that CI
//! builds only those and retags the rest. What a service's inputs are is `inputs`; how a lock
//! file change reaches a service is `lockfile`; what an environment received is
//! `delivery::history`'s; building and retagging are `build`'s.

mod git;
pub mod inputs;
pub mod lockfile;

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use std::path::Path;

use crate::config::{Config, SourceKind};
use crate::delivery::history::{self, Query};
use crate::deployment::Deployment;
use crate::environment::{Environment, GitRef};
use crate::error::Error;
use crate::registry::client::{RegistryClient, Repository};

pub use git::LocalRepo;
pub use inputs::{Inputs, Workspace};

/// One service whose image this commit changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    pub package: String,
    pub image: String,
    /// Why, in a few words: the first input that changed.
    pub reason: String,
    /// The commit compared with; `None` when there was none to compare with.
    pub since: Option<String>,
}

/// One service whose image this commit leaves as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unchanged {
    pub package: String,
    pub image: String,
    /// The commit compared with.
    pub since: String,
    /// The commit whose image the service keeps (`build --image-of`): the one its environment's
    /// image was built from, which is `since` unless that image was itself kept from earlier.
    pub image_of: String,
}

/// `cargo gitops affected --format json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub services: Vec<Changed>,
    pub unchanged: Vec<Unchanged>,
}

/// A service to compare: its name, image and inputs.
#[derive(Debug, Clone)]
pub struct Service {
    pub package: String,
    pub image: String,
    pub inputs: Inputs,
}

/// What one service is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// A commit (full, or the short sha a tag carries) or a ref, and the commit its image was
    /// built from when the registry says (its revision label).
    Commit {
        rev: String,
        image_of: Option<String>,
    },
    /// Nothing to compare with, and why (`environment staging has no image yet`).
    Nothing(String),
}

/// The commit `environment` last received in `repository`: the commit of its newest tag (for
/// a per-branch environment, of `branch`'s newest), with the commit its image was built from,
/// or why there is none.
pub fn received(
    client: &RegistryClient,
    repository: &Repository,
    environment: &Environment,
    branch: Option<(&str, &str)>,
) -> Result<Since, Error> {
    let newest = history::list(
        client,
        repository,
        &Query {
            environment,
            branch,
            limit: 1,
        },
    )?;
    let whose = match branch {
        Some((branch, _)) => format!("environment `{}` (branch {branch})", environment.name),
        None => format!("environment `{}`", environment.name),
    };
    Ok(match newest.into_iter().next() {
        Some(entry) => match entry.commit {
            Some(commit) => Since::Commit {
                rev: commit,
                image_of: match &entry.digest {
                    Some(digest) => {
                        crate::build::converge::revision_label(client, repository, digest)?
                    }
                    None => None,
                },
            },
            None => Since::Nothing(format!(
                "{whose}'s newest tag {} names no commit",
                entry.tag
            )),
        },
        None => Since::Nothing(format!("{whose} has no image in {repository} yet")),
    })
}

/// What `environment` last received of `config`'s image, asked of `client` (its registry) for
/// the ref `git_ref`: for a per-branch environment, that branch's newest image.
pub fn received_for(
    client: &RegistryClient,
    config: &Config,
    environment: &Environment,
    git_ref: &str,
) -> Result<Since, Error> {
    let branch = match GitRef::from_full(git_ref) {
        GitRef::Branch(branch) if environment.format.is_per_branch() => {
            history::branch_of(environment, Some(&branch))?
        }
        _ => None,
    };
    let repository = history::repository_of(config, environment)?;
    received(
        client,
        &repository,
        environment,
        branch.as_ref().map(|(b, n)| (b.as_str(), n.as_str())),
    )
}

/// Whether the one service `config` configures is unchanged at `deployment`'s commit since
/// what its environment last received: the comparison `build --reuse-unchanged` makes.
/// Failing that, whether another environment gave this commit an earlier commit's image that
/// the service's inputs still match (a release of a commit staging received with a kept
/// image). `None` when it changed, or has nothing to compare with.
pub fn unchanged(
    client: &RegistryClient,
    config: &Config,
    deployment: &Deployment,
    cwd: &Path,
) -> Result<Option<Unchanged>, Error> {
    let Some(environment) = deployment
        .environment
        .as_deref()
        .and_then(|name| config.environments.iter().find(|e| e.name == name))
    else {
        return Ok(None);
    };
    let received = received_for(client, config, environment, &deployment.git_ref)?;
    if let Some(unchanged) = unchanged_since(config, deployment, cwd, received)? {
        return Ok(Some(unchanged));
    }
    match carried(client, config, deployment)? {
        Some(rev) => {
            let since = Since::Commit {
                rev: rev.clone(),
                image_of: Some(rev),
            };
            unchanged_since(config, deployment, cwd, since)
        }
        None => Ok(None),
    }
}

/// Whether the service `config` configures is unchanged at `deployment`'s commit since `since`.
fn unchanged_since(
    config: &Config,
    deployment: &Deployment,
    cwd: &Path,
    since: Since,
) -> Result<Option<Unchanged>, Error> {
    let mut repo = LocalRepo::open(cwd)?;
    let workspace = match (&config.source, &config.manifest) {
        (SourceKind::Cargo, Some(manifest)) => Some(Workspace::read(manifest)?),
        _ => None,
    };
    let service = Service {
        package: config.service_name(),
        image: deployment.image.clone().unwrap_or_default(),
        inputs: inputs::of(config, workspace.as_ref(), &repo.root())?,
    };
    let report = compare(&mut repo, &deployment.sha, &[(service, since)])?;
    Ok(report.unchanged.into_iter().next())
}

/// The commit whose image a tag of some environment gives `deployment`'s commit (by the short
/// sha the tag carries; a versioned tag carries none), read from that image's revision label:
/// where a commit that has no image of its own went with an earlier one.
fn carried(
    client: &RegistryClient,
    config: &Config,
    deployment: &Deployment,
) -> Result<Option<String>, Error> {
    let mut listed: HashMap<String, Vec<String>> = HashMap::new();
    for environment in &config.environments {
        let repository = history::repository_of(config, environment)?;
        if repository.registry != client.registry() {
            continue;
        }
        let tags = match listed.entry(repository.name.clone()) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(client.list_tags(&repository.name)?),
        };
        for found in history::tags_in(environment, tags)? {
            let carries = found
                .sha
                .as_deref()
                .is_some_and(|sha| deployment.sha.starts_with(sha));
            if !carries {
                continue;
            }
            let scope = crate::registry::client::Scope::pull(&repository.name);
            let Some(digest) = client.manifest_digest(&repository.name, &found.tag, &scope)? else {
                continue;
            };
            if let Some(rev) = crate::build::converge::revision_label(client, &repository, &digest)?
                .filter(|rev| crate::tags::is_sha40(rev) && *rev != deployment.sha)
            {
                return Ok(Some(rev));
            }
        }
    }
    Ok(None)
}

/// Compares each service with what it is compared with, in `repo` at commit `head`
/// (40 hex digits): the changed paths of each distinct starting commit are read once.
pub fn compare(
    repo: &mut LocalRepo,
    head: &str,
    services: &[(Service, Since)],
) -> Result<Report, Error> {
    let head_id = repo.commit(head)?;
    let mut diffs: HashMap<git2::Oid, Diff> = HashMap::new();
    let mut report = Report::default();
    for (service, since) in services {
        let (base, image_of) = match since {
            Since::Nothing(why) => {
                report.services.push(Changed {
                    package: service.package.clone(),
                    image: service.image.clone(),
                    reason: format!("nothing to compare with: {why}"),
                    since: None,
                });
                continue;
            }
            Since::Commit { rev, image_of } => (repo.commit(rev)?, image_of.clone()),
        };
        let diff = match diffs.entry(base) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(Diff {
                paths: repo.changed_paths(base, head_id)?,
            }),
        };
        let reason = match diff.paths.iter().find_map(|p| service.inputs.explain(p)) {
            Some(reason) => Some(reason),
            None => lock_change(repo, &service.inputs, diff, base, head_id)?,
        };
        let since = base.to_string();
        match reason {
            Some(reason) => report.services.push(Changed {
                package: service.package.clone(),
                image: service.image.clone(),
                reason,
                since: Some(since),
            }),
            None => report.unchanged.push(Unchanged {
                package: service.package.clone(),
                image: service.image.clone(),
                image_of: image_of.unwrap_or_else(|| since.clone()),
                since,
            }),
        }
    }
    Ok(report)
}

/// The paths that differ between two commits.
struct Diff {
    paths: BTreeSet<String>,
}

/// Why a Rust service's locked crates differ between `base` and `head`, if they do.
fn lock_change(
    repo: &LocalRepo,
    inputs: &Inputs,
    diff: &Diff,
    base: git2::Oid,
    head: git2::Oid,
) -> Result<Option<String>, Error> {
    let Some(rust) = &inputs.rust else {
        return Ok(None);
    };
    if !diff.paths.contains(&rust.lock_file) {
        return Ok(None);
    }
    let read = |commit| -> Result<Option<lockfile::LockFile>, Error> {
        Ok(repo
            .file_at(commit, &rust.lock_file)?
            .and_then(|text| lockfile::LockFile::parse(&text)))
    };
    let (Some(before), Some(after)) = (read(base)?, read(head)?) else {
        return Ok(Some(format!(
            "{} was added, removed or cannot be read",
            rust.lock_file
        )));
    };
    let keep = |member: &str, dependency: &str| rust.links(member, dependency);
    Ok(lockfile::difference(
        &before.linked(&rust.members, &keep),
        &after.linked(&rust.members, &keep),
    ))
}

/// The report as an aligned table, changed services first.
pub fn table(report: &Report) -> String {
    let mut rows = vec![[
        "SERVICE".to_owned(),
        "IMAGE".to_owned(),
        "SINCE".to_owned(),
        "RESULT".to_owned(),
    ]];
    let short = |sha: Option<&str>| {
        sha.map_or_else(|| "-".to_owned(), |s| s.get(..7).unwrap_or(s).to_owned())
    };
    for changed in &report.services {
        rows.push([
            changed.package.clone(),
            changed.image.clone(),
            short(changed.since.as_deref()),
            format!("build: {}", changed.reason),
        ]);
    }
    for unchanged in &report.unchanged {
        rows.push([
            unchanged.package.clone(),
            unchanged.image.clone(),
            short(Some(&unchanged.since)),
            "unchanged: retag the image of its commit".to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            format!(
                "{:<a$}  {:<b$}  {:<c$}  {}\n",
                r[0],
                r[1],
                r[2],
                r[3],
                a = widths[0],
                b = widths[1],
                c = widths[2]
            )
        })
        .collect()
}
