//! The deploy job of an environment's generated GitHub workflow, present only when a `deploy`
//! table is configured: after the pipeline, `cargo gitops deploy` for the same ref, with only
//! what it needs: `contents: write` when the manifests are this repository (its
//! `GITHUB_TOKEN`), a named secret for another one, `pull-requests: write` only in pull-request
//! mode, `packages: read` to read the digest from ghcr.io, and one deploy at a time per
//! environment. The job's text is the `environment.yml` template's; the run is `deploy`'s.

use serde::Serialize;

use super::grammar;
use super::install::Install;
use super::logins::{Logins, Method};
use crate::config::{Config, DeployMode};
use crate::environment::Environment;
use crate::error::Error;

/// The job token of the repository the workflow runs in.
const GITHUB_TOKEN: &str = "GITHUB_TOKEN";

/// What the template needs for one environment's deploy job.
#[derive(Debug, Clone, Serialize)]
pub struct DeployJob {
    pub contents_write: bool,
    pub pull_requests_write: bool,
    pub packages_read: bool,
    /// The variable `deploy.credential` names, set from the secret of the same name.
    pub credential: String,
    /// `GITOPS_REGISTRY_USER` and `_PASSWORD` as workflow expressions, to read the registry.
    pub registry_user: Option<String>,
    pub registry_password: Option<String>,
    pub package: Option<String>,
    pub runs_on: String,
    pub checkout: String,
    pub cache: Option<String>,
    pub install: Install,
}

/// The deploy job of `environment`, or `None` without a `deploy` table.
pub fn plan(
    config: &Config,
    environment: &Environment,
    logins: &Logins,
    install: &Install,
    runs_on: &str,
    checkout: &str,
    cache: Option<&str>,
) -> Result<Option<DeployJob>, Error> {
    let Some(settings) = &config.deploy else {
        return Ok(None);
    };
    let target = settings.target(environment);
    let this_repository = target.repository.is_none();
    let credential = match &target.credential {
        Some(name) => name.clone(),
        None if this_repository => {
            return Err(Error::usage(format!(
                "the generated deploy job of environment `{}` needs `deploy.credential`: set it to \"GITHUB_TOKEN\" to write to this repository",
                environment.name
            )));
        }
        None => {
            return Err(Error::usage(format!(
                "the generated deploy job of environment `{}` needs `deploy.credential`: name the repository secret holding a token for {}",
                environment.name,
                target.repository.as_deref().unwrap_or_default()
            )));
        }
    };
    if credential != GITHUB_TOKEN {
        grammar::secret("deploy.credential", &credential)?;
    } else if !this_repository {
        return Err(Error::usage(
            "`deploy.credential = \"GITHUB_TOKEN\"` can only write to this repository; name a secret holding a token for the manifests repository",
        ));
    }
    let (mut registry_user, mut registry_password, mut packages_read) = (None, None, false);
    let host = config
        .image_for(Some(environment))
        .and_then(|image| image.split('/').next().map(str::to_owned))
        .unwrap_or_default();
    for login in logins.logins.iter().filter(|login| login.registry == host) {
        match &login.method {
            Method::GithubToken => {
                packages_read = true;
                registry_user = Some("${{ github.actor }}".to_owned());
                registry_password = Some("${{ secrets.GITHUB_TOKEN }}".to_owned());
            }
            Method::Secrets { username, password } => {
                registry_user = Some(format!("${{{{ secrets.{username} }}}}"));
                registry_password = Some(format!("${{{{ secrets.{password} }}}}"));
            }
            Method::AwsRole { .. } | Method::GcpWorkloadIdentity { .. } => {
                return Err(Error::usage(format!(
                    "the generated deploy job reads the image's digest with a registry user and password, which {} does not have; run `cargo gitops deploy` in a job of your own after a login",
                    login.registry
                )));
            }
        }
    }
    Ok(Some(DeployJob {
        contents_write: this_repository,
        pull_requests_write: target.mode == DeployMode::PullRequest,
        packages_read,
        credential,
        registry_user,
        registry_password,
        package: config.package.clone(),
        runs_on: runs_on.to_owned(),
        checkout: checkout.to_owned(),
        cache: cache.map(str::to_owned),
        install: install.clone(),
    }))
}
