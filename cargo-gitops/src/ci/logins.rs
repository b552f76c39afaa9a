//! Registry logins of the generated GitHub Actions pipeline: one per registry that any
//! environment pushes to, each with that registry's own credential. `GITHUB_TOKEN` goes to
//! ghcr.io and nowhere else; Amazon ECR is reached with an AWS role through OIDC, Google
//! Artifact Registry through workload identity federation; every other registry with two
//! named repository secrets, which `init-workflows` refuses to go without.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::grammar;
use crate::config::{Config, RegistryLogin, WorkflowSettings};
use crate::error::Error;
use crate::registry::client::Repository;

/// How one registry is logged in to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Method {
    /// ghcr.io with the job's `GITHUB_TOKEN` (`packages: write`).
    GithubToken,
    /// docker/login-action with two repository secrets.
    Secrets { username: String, password: String },
    /// aws-actions/configure-aws-credentials (OIDC), then aws-actions/amazon-ecr-login.
    AwsRole {
        role: String,
        region: String,
        account: String,
    },
    /// google-github-actions/auth (workload identity federation) for an access token, then
    /// docker/login-action with it.
    GcpWorkloadIdentity {
        provider: String,
        service_account: String,
    },
}

/// One login step (or pair of steps) of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    /// The registry host, as image references name it (`ghcr.io`, `docker.io`).
    pub registry: String,
    /// An id for the steps of this login, unique in the job.
    pub id: String,
    #[serde(flatten)]
    pub method: Method,
}

/// Every login, with what they need of the job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logins {
    pub logins: Vec<Login>,
    /// `packages: write`: only when ghcr.io is logged in to with `GITHUB_TOKEN`.
    pub packages_write: bool,
    /// `id-token: write`: when a login exchanges the job's OIDC token.
    pub id_token: bool,
    /// The repository secrets the pipeline takes from its callers, sorted.
    pub secrets: Vec<String>,
}

const GHCR: &str = "ghcr.io";

/// The account and region of an Amazon ECR private registry host
/// (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`).
fn ecr(host: &str) -> Option<(&str, &str)> {
    let (account, rest) = host.split_once(".dkr.ecr")?;
    let rest = rest.strip_prefix("-fips").unwrap_or(rest);
    let region = rest.strip_prefix('.')?;
    let region = region
        .strip_suffix(".amazonaws.com")
        .or_else(|| region.strip_suffix(".amazonaws.com.cn"))?;
    let plain = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (plain && !region.is_empty() && !region.contains('.')).then_some((account, region))
}

/// Whether a host is Google Artifact Registry's Docker endpoint (`europe-west1-docker.pkg.dev`).
fn artifact_registry(host: &str) -> bool {
    host.strip_suffix("-docker.pkg.dev")
        .is_some_and(|location| !location.is_empty() && !location.contains('.'))
}

/// The image references the pipeline pushes to, with the configuration key of each.
fn images(config: &Config) -> Result<Vec<(String, String)>, Error> {
    let main = config.image_for(None).ok_or(Error::NoImage)?;
    let mut images = vec![(
        if config.registry.is_some() {
            "registry".to_owned()
        } else {
            "image".to_owned()
        },
        main,
    )];
    for (index, env) in config.environments.iter().enumerate() {
        if env.image.is_some()
            && let Some(image) = config.image_for(Some(env))
        {
            images.push((format!("environments[{index}].image"), image));
        }
    }
    Ok(images)
}

/// The registry hosts any environment pushes to, the main image's first, each once; every
/// image reference checked against the reference grammar on the way.
pub fn registries(config: &Config) -> Result<Vec<String>, Error> {
    let mut hosts: Vec<String> = Vec::new();
    for (key, image) in images(config)? {
        let repository = Repository::parse(&image)
            .map_err(|_| grammar::refuse(&key, &image, "an image repository"))?;
        grammar::image(&key, &repository.to_string())?;
        if !hosts.contains(&repository.registry) {
            hosts.push(repository.registry);
        }
    }
    Ok(hosts)
}

/// The login of each registry the configuration pushes to, or the refusal that names the key
/// to set.
pub fn plan(config: &Config, settings: &WorkflowSettings) -> Result<Logins, Error> {
    let hosts = registries(config)?;
    let main = hosts[0].clone();
    let mut configured: BTreeMap<String, RegistryLogin> = settings.registry_logins.clone();
    for host in configured.keys() {
        let key = format!("registry-logins.\"{}\"", grammar::shown(host));
        grammar::host(&key, host)?;
        if !hosts.contains(host) {
            return Err(Error::usage(format!(
                "configuration key `{key}`: no environment pushes to {host} (they push to {}); remove the table or fix the host",
                hosts.join(", ")
            )));
        }
    }
    if let Some(secrets) = &settings.registry_secrets {
        if configured.contains_key(&main) {
            return Err(Error::usage(format!(
                "configuration key `registry-secrets`: registry-logins.\"{main}\" also sets the login of {main}; keep one of them"
            )));
        }
        configured.insert(
            main.clone(),
            RegistryLogin {
                username_secret: Some(secrets.username.clone()),
                password_secret: Some(secrets.password.clone()),
                ..RegistryLogin::default()
            },
        );
    }

    let mut logins = Logins::default();
    let mut secrets = BTreeSet::new();
    for (index, host) in hosts.iter().enumerate() {
        let from_registry_secrets = settings.registry_secrets.is_some() && *host == main;
        let key = if from_registry_secrets {
            "registry-secrets".to_owned()
        } else {
            format!("registry-logins.\"{host}\"")
        };
        let login = configured.get(host).cloned().unwrap_or_default();
        let method = method(host, &key, &login)?;
        match &method {
            Method::GithubToken => logins.packages_write = true,
            Method::Secrets { username, password } => {
                secrets.insert(username.clone());
                secrets.insert(password.clone());
            }
            Method::AwsRole { .. } | Method::GcpWorkloadIdentity { .. } => logins.id_token = true,
        }
        logins.logins.push(Login {
            registry: host.clone(),
            id: format!("login-{}", index + 1),
            method,
        });
    }
    logins.secrets = secrets.into_iter().collect();
    Ok(logins)
}

/// The method for one registry: the one its table names, else the one its kind implies.
fn method(host: &str, key: &str, login: &RegistryLogin) -> Result<Method, Error> {
    let aws = login.aws_role.is_some() || login.aws_region.is_some();
    let gcp = login.workload_identity_provider.is_some() || login.service_account.is_some();
    let secrets = login.username_secret.is_some() || login.password_secret.is_some();
    if [aws, gcp, secrets].iter().filter(|b| **b).count() > 1 {
        return Err(Error::usage(format!(
            "configuration key `{key}`: give one way to log in to {host}: an AWS role, a workload identity provider, or two secrets"
        )));
    }
    if secrets {
        return secrets_method(host, key, login);
    }
    if let Some((account, region)) = ecr(host) {
        return aws_role_method(host, key, login, account, region);
    }
    if aws {
        return Err(Error::usage(format!(
            "configuration key `{key}.aws-role`: {host} is not an Amazon ECR registry (ACCOUNT.dkr.ecr.REGION.amazonaws.com); use username-secret and password-secret"
        )));
    }
    if artifact_registry(host) {
        return workload_identity_method(host, key, login);
    }
    if gcp {
        return Err(Error::usage(format!(
            "configuration key `{key}.workload-identity-provider`: {host} is not Google Artifact Registry (LOCATION-docker.pkg.dev); use username-secret and password-secret"
        )));
    }
    if host == GHCR {
        return Ok(Method::GithubToken);
    }
    Err(Error::usage(format!(
        "configuration key `{key}.username-secret` and `{key}.password-secret` must be set: GITHUB_TOKEN is only ever sent to {GHCR}, so {host} needs the names of two repository secrets that hold its login"
    )))
}

/// The configuration key of one field of a login table. `registry-secrets` names its fields
/// without the `-secret` ending (`registry-secrets.username`).
fn field_key(key: &str, name: &str) -> String {
    if key == "registry-secrets" {
        format!("registry-secrets.{}", name.trim_end_matches("-secret"))
    } else {
        format!("{key}.{name}")
    }
}

/// Two repository secrets, both required once either is given.
fn secrets_method(host: &str, key: &str, login: &RegistryLogin) -> Result<Method, Error> {
    let (Some(username), Some(password)) = (&login.username_secret, &login.password_secret) else {
        return Err(Error::usage(format!(
            "configuration key `{key}`: set both username-secret and password-secret for {host}"
        )));
    };
    grammar::secret(&field_key(key, "username-secret"), username)?;
    grammar::secret(&field_key(key, "password-secret"), password)?;
    Ok(Method::Secrets {
        username: username.clone(),
        password: password.clone(),
    })
}

/// Amazon ECR: an IAM role, in the region the host names unless one is configured.
fn aws_role_method(
    host: &str,
    key: &str,
    login: &RegistryLogin,
    account: &str,
    region: &str,
) -> Result<Method, Error> {
    let Some(role) = &login.aws_role else {
        return Err(Error::usage(format!(
            "configuration key `{key}.aws-role` is not set: {host} is Amazon ECR, logged in to with an IAM role through OIDC; set it to the role's ARN (arn:aws:iam::{account}:role/NAME)"
        )));
    };
    grammar::aws_role(&field_key(key, "aws-role"), role)?;
    let region = match &login.aws_region {
        Some(region) => {
            grammar::aws_region(&field_key(key, "aws-region"), region)?;
            region.clone()
        }
        None => {
            grammar::aws_region(key, region)?;
            region.to_owned()
        }
    };
    Ok(Method::AwsRole {
        role: role.clone(),
        region,
        account: account.to_owned(),
    })
}

/// Google Artifact Registry: a workload identity provider and the service account it acts as.
fn workload_identity_method(host: &str, key: &str, login: &RegistryLogin) -> Result<Method, Error> {
    let (Some(provider), Some(account)) =
        (&login.workload_identity_provider, &login.service_account)
    else {
        return Err(Error::usage(format!(
            "configuration key `{key}.workload-identity-provider` and `{key}.service-account` must be set: {host} is Google Artifact Registry, logged in to through workload identity federation"
        )));
    };
    grammar::gcp_provider(&field_key(key, "workload-identity-provider"), provider)?;
    grammar::gcp_service_account(&field_key(key, "service-account"), account)?;
    Ok(Method::GcpWorkloadIdentity {
        provider: provider.clone(),
        service_account: account.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_kinds_are_read_from_the_host() {
        assert_eq!(
            ecr("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(("123456789012", "eu-west-1"))
        );
        assert_eq!(
            ecr("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"),
            Some(("123456789012", "us-east-1"))
        );
        assert_eq!(
            ecr("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some(("123456789012", "cn-north-1"))
        );
        assert_eq!(ecr("public.ecr.aws"), None);
        assert_eq!(ecr("12345.dkr.ecr.eu-west-1.amazonaws.com"), None);
        assert_eq!(
            ecr("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io"),
            None
        );
        assert!(artifact_registry("europe-west1-docker.pkg.dev"));
        assert!(!artifact_registry("docker.pkg.dev"));
        assert!(!artifact_registry("evil.io/x-docker.pkg.dev"));
    }
}
