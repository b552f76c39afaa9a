//! A deployment: for one commit and ref, the environment it goes to and the exact image tags it
//! gets, including the lookup tag that finds an earlier build of the same commit. The ref and
//! commit come from flags, else the CI's variables (`ci::detect`), else the local repository.
//! A pull or merge request build resolves its source branch, but deploys only where a push of
//! any other branch would (a `**` pattern) and only from this repository: a request from a fork,
//! or from a branch an environment names (`main`, `test/uat1`), deploys nowhere. It does not
//! talk to registries or builders.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::ci::{Ci, PullRequest, Runner};
use crate::config::Config;
use crate::environment::{self, GitRef, version_for_tag};
use crate::error::Error;
use crate::git;
use crate::tags::{self, TagValues};

/// Where the ref, commit and time come from, before any git is read.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub ref_arg: Option<&'a str>,
    pub sha_arg: Option<&'a str>,
    pub timestamp: Option<u64>,
}

/// What a commit deploys to. Serialised as `cargo gitops env --format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    /// `None` when no environment tracks the ref: nothing to deploy.
    pub environment: Option<String>,
    /// The environment's primary tag first, then its `latest` tag when enabled.
    pub tags: Vec<String>,
    /// `commit-<sha40>`, with a hash of the build arguments when the environment has any.
    pub lookup_tag: String,
    /// Image reference without tag; `None` when no registry or image is configured.
    pub image: Option<String>,
    pub timestamp: u64,
    /// The CI the ref and commit were read from; `None` outside CI.
    pub ci: Option<Ci>,
    /// Set when the ref is the source branch of a pull or merge request build.
    pub pull_request: Option<PullRequest>,
    /// The environment's build arguments with `{sha}`, `{ref}` and `{version}` filled in.
    #[serde(skip)]
    pub build_args: BTreeMap<String, String>,
}

/// Timestamps are 10 digits so that numeric and alphabetical order agree.
const TIMESTAMP_RANGE: std::ops::RangeInclusive<u64> = 1_000_000_000..=9_999_999_999;

/// The deployment of every image of a repository for one request, with one time for all of
/// them, so that the tags of a set agree.
pub fn plan_each(
    configs: &[Config],
    request: &Request<'_>,
    runner: &Runner,
    cwd: &Path,
) -> Result<Vec<Deployment>, Error> {
    let mut request = request.clone();
    let mut deployments = Vec::with_capacity(configs.len());
    for config in configs {
        let deployment = plan(config, &request, runner, cwd)?;
        request.timestamp = Some(deployment.timestamp);
        deployments.push(deployment);
    }
    if deployments.is_empty() {
        return Err(Error::Internal("no configuration was loaded".to_owned()));
    }
    Ok(deployments)
}

/// Works out the deployment of the current commit (or the one the request names).
pub fn plan(
    config: &Config,
    request: &Request<'_>,
    runner: &Runner,
    cwd: &Path,
) -> Result<Deployment, Error> {
    let (ref_arg, sha_arg) = match runner.ci {
        Some(_) => {
            let git_ref = request
                .ref_arg
                .or(runner.git_ref.as_deref())
                .ok_or_else(|| runner.missing(false))?;
            let sha = request
                .sha_arg
                .or(runner.sha.as_deref())
                .ok_or_else(|| runner.missing(true))?;
            (Some(git_ref), Some(sha))
        }
        None => (request.ref_arg, request.sha_arg),
    };
    let checkout = git::resolve(cwd, ref_arg, sha_arg)?;
    let timestamp = match request.timestamp {
        Some(ts) if TIMESTAMP_RANGE.contains(&ts) => ts,
        Some(ts) => {
            return Err(Error::usage(format!(
                "--timestamp {ts} is not a 10-digit Unix time in seconds; give a value between 1000000000 and 9999999999"
            )));
        }
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(*TIMESTAMP_RANGE.start()),
    };
    let mut deployment = deployment_for(config, &checkout.git_ref, &checkout.sha, timestamp)?;
    deployment.ci = runner.ci;
    // A --ref chooses the ref itself: the request's source branch no longer says anything.
    if let Some(pull_request) = runner
        .pull_request
        .as_ref()
        .filter(|_| request.ref_arg.is_none())
    {
        deployment = gate_pull_request(config, deployment, pull_request.clone());
    }
    Ok(deployment)
}

/// Whether a request's build may deploy where its source branch resolved: only from this
/// repository (a fork, or a CI that cannot say, may name its branch anything), and only to an
/// environment that takes the branch through a `**` pattern, the one every other branch goes
/// to. Otherwise nothing deploys, and `withheld_from` says what would have.
fn gate_pull_request(
    config: &Config,
    mut deployment: Deployment,
    mut pull_request: PullRequest,
) -> Deployment {
    let catch_all = deployment.environment.as_deref().is_some_and(|name| {
        config
            .environments
            .iter()
            .find(|env| env.name == name)
            .and_then(|env| {
                env.branches
                    .iter()
                    .find(|p| p.matches(&pull_request.source_branch))
            })
            .is_some_and(|pattern| pattern.as_str() == "**")
    });
    if deployment.environment.is_some() && (pull_request.fork != Some(false) || !catch_all) {
        pull_request.withheld_from = deployment.environment.take();
        deployment.tags.clear();
        deployment.lookup_tag = tags::lookup_tag(&deployment.sha, &BTreeMap::new());
        deployment.image = config.image_for(None);
    }
    deployment.pull_request = Some(pull_request);
    deployment
}

/// Why a request's build deploys nowhere, for the message that says so.
pub fn withheld_reason(pull_request: &PullRequest, ci: Option<Ci>) -> String {
    let what = match (ci, &pull_request.number) {
        (Some(Ci::Gitlab), Some(number)) => format!("merge request !{number}"),
        (Some(Ci::Gitlab), None) => "a merge request".to_owned(),
        (_, Some(number)) => format!("pull request #{number}"),
        (_, None) => "a pull request".to_owned(),
    };
    let environment = pull_request.withheld_from.as_deref().unwrap_or("none");
    let why = match pull_request.fork {
        Some(true) => "it comes from a fork".to_owned(),
        None => format!(
            "{} does not say whether it comes from a fork",
            ci.map_or("the CI", Ci::name)
        ),
        Some(false) => {
            "only pushes deploy there (requests deploy only where every other branch goes, `**`)"
                .to_owned()
        }
    };
    format!(
        "{what} from `{}` would deploy to `{environment}`, but {why}: nothing to deploy",
        pull_request.source_branch
    )
}

/// The deployment of a known ref and commit at a known time.
pub fn deployment_for(
    config: &Config,
    git_ref: &GitRef,
    sha: &str,
    timestamp: u64,
) -> Result<Deployment, Error> {
    let matched = environment::resolve(&config.environments, git_ref);
    let Some(matched) = matched else {
        return Ok(Deployment {
            git_ref: git_ref.full(),
            sha: sha.to_owned(),
            environment: None,
            tags: Vec::new(),
            lookup_tag: tags::lookup_tag(sha, &BTreeMap::new()),
            image: config.image_for(None),
            timestamp,
            ci: None,
            pull_request: None,
            build_args: BTreeMap::new(),
        });
    };
    let env = matched.environment;
    let version = matched.version.as_ref().map(version_for_tag);
    let values = TagValues {
        branch: matched.branch.as_deref(),
        name: matched.name.as_deref(),
        sha40: sha,
        timestamp,
        version: version.as_deref(),
        env: &env.name,
    };
    let tag_error = |source| Error::Tag {
        environment: env.name.clone(),
        source,
    };
    let mut tags = vec![env.format.render(&values).map_err(tag_error)?];
    if let Some(latest) = env.latest_tag(&values) {
        tags.push(latest.map_err(tag_error)?);
    }
    let ref_name = match git_ref {
        GitRef::Branch(name) | GitRef::Tag(name) | GitRef::Other(name) => name.as_str(),
    };
    let build_args = tags::build_args(&env.build_args, sha, ref_name, matched.version.as_ref());
    // The values filled in are part of what is built: a `{ref}` gives each ref its image.
    let lookup_tag = tags::lookup_tag(sha, &build_args);
    Ok(Deployment {
        git_ref: git_ref.full(),
        sha: sha.to_owned(),
        environment: Some(env.name.clone()),
        tags,
        lookup_tag,
        image: config.image_for(Some(env)),
        timestamp,
        ci: None,
        pull_request: None,
        build_args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "b4b9fda0123456789abcdef0123456789abcdef0";
    const TS: u64 = 1_654_880_868;

    fn tags_for(git_ref: GitRef) -> (Option<String>, Vec<String>) {
        let d = deployment_for(&Config::defaults(), &git_ref, SHA, TS).unwrap();
        (d.environment, d.tags)
    }

    #[test]
    fn default_tags() {
        let cases: &[(GitRef, Option<&str>, &[&str])] = &[
            (
                GitRef::Tag("v1.2.3".into()),
                Some("production"),
                &["prd-1.2.3", "prd-latest"],
            ),
            (
                GitRef::Tag("1.2.3".into()),
                Some("production"),
                &["prd-1.2.3", "prd-latest"],
            ),
            (
                GitRef::Tag("v1.2.3+build.5".into()),
                Some("production"),
                &["prd-1.2.3_build.5", "prd-latest"],
            ),
            (
                GitRef::Tag("v1.1.0-alpha1".into()),
                Some("alpha"),
                &["prd-1.1.0-alpha1", "prd-alpha-latest"],
            ),
            (
                GitRef::Tag("v1.0.3-beta2".into()),
                Some("beta"),
                &["prd-1.0.3-beta2", "prd-beta-latest"],
            ),
            (
                GitRef::Branch("test/uat1".into()),
                Some("testing"),
                &["tst-uat1-b4b9fda-1654880868", "tst-uat1-latest"],
            ),
            (
                GitRef::Branch("main".into()),
                Some("staging"),
                &["stg-b4b9fda-1654880868", "stg-latest"],
            ),
            (
                GitRef::Branch("feature/login".into()),
                Some("development"),
                &[
                    "dev-feature--login-b4b9fda-1654880868",
                    "dev-feature--login-latest",
                ],
            ),
            (GitRef::Tag("v01.2.3".into()), None, &[]),
            (GitRef::Tag("release-1".into()), None, &[]),
        ];
        for (git_ref, env, tags) in cases {
            let (got_env, got_tags) = tags_for(git_ref.clone());
            assert_eq!(got_env.as_deref(), *env, "{git_ref}");
            assert_eq!(got_tags, *tags, "{git_ref}");
        }
    }

    #[test]
    fn lookup_tag_carries_a_hash_of_build_args() {
        let mut config = Config::defaults();
        let plain = deployment_for(&config, &GitRef::Branch("main".into()), SHA, TS).unwrap();
        assert_eq!(plain.lookup_tag, format!("commit-{SHA}"));
        config.environments[4]
            .build_args
            .insert("PROFILE".into(), "staging".into());
        let with_args = deployment_for(&config, &GitRef::Branch("main".into()), SHA, TS).unwrap();
        assert!(with_args.lookup_tag.starts_with(&format!("commit-{SHA}-")));
        assert_eq!(with_args.lookup_tag.len(), "commit-".len() + 40 + 1 + 16);
        config.environments[4]
            .build_args
            .insert("PROFILE".into(), "other".into());
        let other = deployment_for(&config, &GitRef::Branch("main".into()), SHA, TS).unwrap();
        assert_ne!(with_args.lookup_tag, other.lookup_tag);
    }
}
