//! Flux image automation: for each environment, the `image.toolkit.fluxcd.io/v1`
//! `ImageRepository` its image is read from and the `ImagePolicy` objects (one per environment,
//! or per followed branch) that select its newest tag, with their object names and the checks
//! on what `cargo gitops flux` is asked for. It plans only: tag patterns are `filter`'s, YAML
//! is `render`'s; it never talks to a cluster or a registry, and tag text itself is `tags`' job.

mod filter;
mod render;

use crate::config::Config;
use crate::environment::{self, Environment, GitRef, TagSelector};
use crate::error::Error;
use crate::registry::client::{Repository, is_plain_http};
use crate::tags::Placeholder;

pub use filter::{
    BranchChoice, Order, SHA_GROUP, SHA40_GROUP, TIMESTAMP_GROUP, TagFilter, VERSION_GROUP,
    tag_filter,
};
pub use render::{markers, render};

/// The Flux API the manifests are written for.
pub const API_VERSION: &str = "image.toolkit.fluxcd.io/v1";

/// What `cargo gitops flux` is asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Branches to follow in environments whose tags name the branch.
    pub branches: Vec<String>,
    pub namespace: String,
    pub interval: String,
    pub secret_ref: Option<String>,
    /// The start of every object name [default: the image's name].
    pub name_prefix: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            branches: Vec::new(),
            namespace: "flux-system".to_owned(),
            interval: "5m".to_owned(),
            secret_ref: None,
            name_prefix: None,
        }
    }
}

/// One `ImageRepository`: the image that policies read tags from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRepository {
    pub name: String,
    pub image: String,
    /// Plain HTTP, as the tool itself speaks to this registry.
    pub insecure: bool,
}

/// One `ImagePolicy`: the newest tag of one environment (and branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub environment: String,
    pub branch: Option<String>,
    /// The `ImageRepository` it reads.
    pub repository: String,
    pub image: String,
    pub filter: TagFilter,
    /// The environment's moving tag, a sensible first value for a deployment's image.
    pub latest_tag: Option<String>,
    /// The format, for the comment above the policy.
    pub format: String,
}

/// Everything `cargo gitops flux` writes, and what it has to say about what it left out.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub namespace: String,
    pub interval: String,
    pub secret_ref: Option<String>,
    pub repositories: Vec<ImageRepository>,
    pub policies: Vec<Policy>,
    /// Environments without a policy and ambiguities, one sentence each, for stderr.
    pub notes: Vec<String>,
}

/// The manifests of several images in one set: each image's repositories and policies, their
/// object names apart (each image's names start with its own name). Two objects of one name are
/// refused.
pub fn plan_each(configs: &[Config], options: &Options) -> Result<Manifests, Error> {
    if configs.len() > 1 && options.name_prefix.is_some() {
        return Err(Error::usage(
            "--name-prefix would give every image's objects the same names; drop it, or pass -p for one image",
        ));
    }
    let mut all: Option<Manifests> = None;
    for config in configs {
        let manifests = plan(config, options)?;
        match &mut all {
            None => all = Some(manifests),
            Some(all) => {
                all.repositories.extend(manifests.repositories);
                all.policies.extend(manifests.policies);
                all.notes.extend(manifests.notes);
            }
        }
    }
    let all = all.ok_or_else(|| Error::Internal("no configuration to plan".to_owned()))?;
    let mut names = std::collections::HashSet::new();
    for name in all
        .repositories
        .iter()
        .map(|r| &r.name)
        .chain(all.policies.iter().map(|p| &p.name))
    {
        if !names.insert(name) {
            return Err(Error::usage(format!(
                "two images give Flux objects named `{name}`; give one of them another `image` name, or pass -p for one image"
            )));
        }
    }
    Ok(all)
}

/// Works out the repositories and policies for the configured environments.
pub fn plan(config: &Config, options: &Options) -> Result<Manifests, Error> {
    check_options(options)?;
    let main_image = config.image_for(None).ok_or(Error::NoImage)?;
    let prefix = name_prefix(options, &main_image)?;
    let requested = requested_branches(config, options)?;
    let mut manifests = Manifests {
        namespace: options.namespace.clone(),
        interval: options.interval.clone(),
        secret_ref: options.secret_ref.clone(),
        repositories: Vec::new(),
        policies: Vec::new(),
        notes: Vec::new(),
    };
    for env in &config.environments {
        let image = config
            .image_for(Some(env))
            .expect("the main image is configured, so every environment has one");
        let repository = repository_for(
            &mut manifests.repositories,
            config,
            env,
            &image,
            &main_image,
            &prefix,
        )?;
        let source = PolicySource {
            env,
            repository,
            image,
        };
        if !env.format.is_per_branch() {
            let name = object_name(&[&prefix, &env.name]);
            manifests.policies.push(source.policy(name, None)?);
            continue;
        }
        let branches = branches_to_follow(config, env, &requested);
        if branches.is_empty() {
            manifests.notes.push(format!(
                "environment `{}` tags per branch (`{}`), so it has no policy without --branch; add --branch NAME for each branch to follow",
                env.name, env.format
            ));
        }
        for (branch, name) in &branches {
            manifests
                .policies
                .push(source.branch_policy(&prefix, branch, name)?);
        }
    }
    check_policy_names(&manifests.policies)?;
    note_channel_prefixes(config, &mut manifests.notes);
    Ok(manifests)
}

/// The start of every object name: `--name-prefix`, or the last segment of the image's name.
fn name_prefix(options: &Options, main_image: &str) -> Result<String, Error> {
    if let Some(prefix) = &options.name_prefix {
        return Ok(prefix.clone());
    }
    let repository = Repository::parse(main_image)?;
    let last = repository.name.rsplit('/').next().unwrap_or_default();
    let prefix = object_name(&[last]);
    if prefix.is_empty() {
        return Err(Error::usage(format!(
            "image `{main_image}` gives no usable object name; pass --name-prefix"
        )));
    }
    Ok(prefix)
}

/// A `--branch`, with the environment that tracks it and its `{name}` there.
struct RequestedBranch<'a> {
    branch: String,
    environment: &'a Environment,
    name: String,
}

/// Every `--branch`, resolved to its environment; a branch no environment tracks is refused.
fn requested_branches<'a>(
    config: &'a Config,
    options: &Options,
) -> Result<Vec<RequestedBranch<'a>>, Error> {
    let mut requested = Vec::new();
    for branch in &options.branches {
        if branch.is_empty() {
            return Err(Error::usage("--branch needs a branch name"));
        }
        let found = environment::resolve(&config.environments, &GitRef::Branch(branch.clone()))
            .ok_or_else(|| {
                Error::usage(format!(
                    "no environment tracks branch `{branch}`; check the name, or the `branches` of the configured environments"
                ))
            })?;
        let name = found.name.clone().unwrap_or_else(|| branch.clone());
        requested.push(RequestedBranch {
            branch: branch.clone(),
            environment: found.environment,
            name,
        });
    }
    Ok(requested)
}

/// The name of the `ImageRepository` for `env`'s image, added to `repositories` the first
/// time an image is seen so that environments sharing an image share one repository.
fn repository_for(
    repositories: &mut Vec<ImageRepository>,
    config: &Config,
    env: &Environment,
    image: &str,
    main_image: &str,
    prefix: &str,
) -> Result<String, Error> {
    if let Some(existing) = repositories.iter().find(|r| r.image == image) {
        return Ok(existing.name.clone());
    }
    let name = if image == main_image {
        prefix.to_owned()
    } else {
        object_name(&[prefix, &env.name])
    };
    let registry = Repository::parse(image)?.registry;
    repositories.push(ImageRepository {
        name: name.clone(),
        image: image.to_owned(),
        insecure: is_plain_http(&registry, &config.build.insecure_registries),
    });
    Ok(name)
}

/// The branches of a per-branch environment that get a policy, with their `{name}`: those
/// named outright in the configuration, then those asked for, once each.
fn branches_to_follow(
    config: &Config,
    env: &Environment,
    requested: &[RequestedBranch<'_>],
) -> Vec<(String, String)> {
    let mut branches: Vec<(String, String)> = Vec::new();
    for pattern in env.branches.iter().filter(|p| !p.has_wildcard()) {
        let branch = pattern.as_str().to_owned();
        if let Some(found) =
            environment::resolve(&config.environments, &GitRef::Branch(branch.clone()))
            && found.environment.name == env.name
        {
            branches.push((branch.clone(), found.name.unwrap_or(branch)));
        }
    }
    for asked in requested.iter().filter(|r| r.environment.name == env.name) {
        if !branches.iter().any(|(b, _)| *b == asked.branch) {
            branches.push((asked.branch.clone(), asked.name.clone()));
        }
    }
    branches
}

/// What every policy of one environment shares: the environment, and the repository and
/// image it reads.
struct PolicySource<'a> {
    env: &'a Environment,
    repository: String,
    image: String,
}

impl PolicySource<'_> {
    /// The policy named `name` for the environment, or for one `(branch, name)` of it.
    fn policy(&self, name: String, branch: Option<(&str, &str)>) -> Result<Policy, Error> {
        let env = self.env;
        let choice = match branch {
            Some((branch, name)) => BranchChoice::Exact { branch, name },
            None => BranchChoice::Any,
        };
        let values = filter::example_values(env, branch.map(|b| b.0), branch.map(|b| b.1), None);
        let latest_tag = env.latest_tag(&values).and_then(Result::ok);
        Ok(Policy {
            name,
            environment: env.name.clone(),
            branch: branch.map(|b| b.0.to_owned()),
            repository: self.repository.clone(),
            image: self.image.clone(),
            filter: tag_filter(env, choice)?,
            latest_tag,
            format: env.format.to_string(),
        })
    }

    /// The policy of one followed branch. The object is named after the branch as its tags
    /// show it, so names that sanitising would merge (`feature/a`, `feature-a`) get objects of
    /// their own.
    fn branch_policy(&self, prefix: &str, branch: &str, name: &str) -> Result<Policy, Error> {
        let env = self.env;
        let (branch_piece, name_piece) =
            filter::shortened_branch(env, env.format.parts(), branch, name)?;
        let piece = if env.format.uses(Placeholder::Name) {
            name_piece
        } else {
            branch_piece
        };
        self.policy(
            object_name(&[prefix, &env.name, &piece]),
            Some((branch, name)),
        )
    }
}

/// Two policies of one name are refused, saying whether their branches give the same tags
/// (nothing could tell them apart) or only the same name.
fn check_policy_names(policies: &[Policy]) -> Result<(), Error> {
    for (i, policy) in policies.iter().enumerate() {
        if let Some(other) = policies[..i].iter().find(|p| p.name == policy.name) {
            if other.filter == policy.filter {
                return Err(Error::usage(format!(
                    "branches `{}` and `{}` give the same tags in environment `{}`, so no policy can tell them apart; pass only one of them",
                    other.branch.as_deref().unwrap_or_default(),
                    policy.branch.as_deref().unwrap_or_default(),
                    policy.environment
                )));
            }
            return Err(Error::usage(format!(
                "two policies would be named `{}` ({} and {}); pass only one of those branches, or a different --name-prefix",
                policy.name,
                describe(other),
                describe(policy)
            )));
        }
    }
    Ok(())
}

fn describe(policy: &Policy) -> String {
    match &policy.branch {
        Some(branch) => format!("environment {}, branch {branch}", policy.environment),
        None => format!("environment {}", policy.environment),
    }
}

/// A channel whose name starts another's (`b` and `beta`) also admits that channel's tags:
/// RE2 has no look-ahead to exclude them, so the user is told.
fn note_channel_prefixes(config: &Config, notes: &mut Vec<String>) {
    let channels: Vec<&str> = config
        .environments
        .iter()
        .filter_map(|env| match &env.tags {
            Some(TagSelector::SemverChannel(channel)) => Some(channel.as_str()),
            _ => None,
        })
        .collect();
    for short in &channels {
        for long in &channels {
            if long != short && long.starts_with(short) {
                notes.push(format!(
                    "channel `{short}` is the start of channel `{long}`, so its policy also selects `{long}` pre-releases; rename one of them"
                ));
            }
        }
    }
}

/// A Kubernetes object name from parts: lowercase, `-` between parts and for any run of other
/// characters, at most 253 characters (a DNS subdomain name).
pub fn object_name(parts: &[&str]) -> String {
    let mut name = String::new();
    for part in parts {
        let mut last_dash = name.is_empty() || name.ends_with('-');
        if !name.is_empty() && !last_dash {
            name.push('-');
            last_dash = true;
        }
        for c in part.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                name.push(c);
                last_dash = false;
            } else if c == '-' && !name.is_empty() {
                // Kept as written, so `feature--a` and `feature-a` name different objects.
                name.push('-');
                last_dash = true;
            } else if !last_dash {
                name.push('-');
                last_dash = true;
            }
        }
    }
    let mut name = name.trim_matches('-').to_owned();
    name.truncate(253);
    name.trim_end_matches('-').to_owned()
}

/// Whether `name` is a DNS label (`max` ≤ 63) or subdomain-style name made of such labels.
fn is_dns_name(name: &str, max: usize, dots: bool) -> bool {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    !name.is_empty()
        && name.len() <= max
        && if dots {
            name.split('.').all(label_ok)
        } else {
            label_ok(name)
        }
}

fn check_options(options: &Options) -> Result<(), Error> {
    // Branch names go into YAML (quoted) and object names: only names git accepts are taken.
    for branch in &options.branches {
        crate::git::check_ref_name(&GitRef::Branch(branch.clone())).map_err(|_| {
            Error::usage(format!(
                "--branch `{}` is not a branch name git accepts; give the branch as git names it",
                branch.escape_debug()
            ))
        })?;
    }
    if !is_dns_name(&options.namespace, 63, false) {
        return Err(Error::usage(format!(
            "--namespace `{}` is not a Kubernetes namespace name; use lowercase letters, digits and `-` (at most 63)",
            options.namespace.escape_debug()
        )));
    }
    let duration = regex::Regex::new(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$")
        .expect("the duration pattern is valid");
    if !duration.is_match(&options.interval) {
        return Err(Error::usage(format!(
            "--interval `{}` is not a Go duration; write it like 5m, 1h or 1m30s",
            options.interval.escape_debug()
        )));
    }
    if let Some(secret) = &options.secret_ref
        && !is_dns_name(secret, 253, true)
    {
        return Err(Error::usage(format!(
            "--secret-ref `{}` is not a Kubernetes secret name; use lowercase letters, digits, `-` and `.`",
            secret.escape_debug()
        )));
    }
    if let Some(prefix) = &options.name_prefix
        && (!is_dns_name(prefix, 200, false))
    {
        return Err(Error::usage(format!(
            "--name-prefix `{}` cannot start Kubernetes object names; use lowercase letters, digits and `-`, such as `{}`",
            prefix.escape_debug(),
            object_name(&[prefix])
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        assert_eq!(
            object_name(&["gitops-demo-app", "testing", "uat1"]),
            "gitops-demo-app-testing-uat1"
        );
        assert_eq!(
            object_name(&["App", "development", "Feature/Login_x"]),
            "app-development-feature-login-x"
        );
        assert_eq!(object_name(&["--a", "", "b--"]), "a-b");
    }
}
