//! The GitLab CI pipeline generated from the configuration: one file,
//! `.gitlab/gitops.gitlab-ci.yml`, that the repository's `.gitlab-ci.yml` includes, with one job
//! per environment. Each job's `rules:` are derived from the same environment definitions
//! `environment` matches: branch globs become anchored RE2 patterns on `$CI_COMMIT_BRANCH`,
//! SemVer tag selectors patterns on `$CI_COMMIT_TAG`, and an environment first excludes (with
//! `when: never`) the refs an earlier environment takes, so that a ref runs exactly the job of
//! the environment `cargo gitops env` picks, or none; those conditions are `rules`'. This
//! module owns the jobs, their tiers and the install, rendered from `templates/gitlab-ci.yml`
//! with the syntax the GitHub templates use; drift is checked like theirs.

mod rules;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::workflows::{self, GeneratedFile};
use super::{install, toolchain};
use crate::config::{
    BuilderKind, Config, DEFAULT_DIND, RegistrySecrets, RetaggerKind, WorkflowSettings,
    is_variable_name,
};
use crate::environment::{BranchPattern, Environment};
use crate::error::Error;
use crate::registry::client::Repository;

pub use rules::{Rule, branch_condition, branch_regex, rules, tag_condition, tag_regex};

const TEMPLATE: (&str, &str) = (
    "gitlab-ci.yml",
    include_str!("../../../templates/gitlab-ci.yml"),
);

/// The generated file, relative to the repository root.
pub const PIPELINE_PATH: &str = ".gitlab/gitops.gitlab-ci.yml";
/// The repository's own pipeline, which includes the generated one.
pub const ROOT_PIPELINE: &str = ".gitlab-ci.yml";
/// The dotenv report each job leaves for later jobs (`artifacts:reports:dotenv`).
pub const DOTENV_FILE: &str = "gitops.env";
/// Where a job puts the prebuilt binary: on the PATH of every job image (they run as root).
const INSTALL_DIR: &str = "/usr/local/bin";

/// What the template needs of one environment's job.
#[derive(Debug, Clone, Serialize)]
struct Job {
    name: String,
    environment: String,
    description: String,
    tier: &'static str,
    resource_group: String,
    interruptible: bool,
    rules: Vec<Rule>,
    /// With a `deploy` table: the deploy job's resource group (one deploy at a time).
    deploy: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Service {
    name: String,
    alias: Option<&'static str>,
}

/// The GitLab deployment tier of an environment, so that tier-wide protection applies:
/// tag-tracked environments are production, others go by their name (`staging`, `uat1` →
/// testing), else `other`.
pub fn deployment_tier(env: &Environment) -> &'static str {
    let name = env.name.to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    if env.branches.is_empty() && env.tags.is_some() || starts(&["prod", "prd", "live"]) {
        "production"
    } else if starts(&["stag", "stg", "preprod", "pre-prod"]) {
        "staging"
    } else if starts(&["test", "tst", "uat", "sit", "qa"]) {
        "testing"
    } else if starts(&["dev", "review", "feature"]) {
        "development"
    } else {
        "other"
    }
}

/// Quotes a string as a YAML single-quoted scalar: nothing in it is syntax but `'`, doubled.
fn yaml_single(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Renders the GitLab pipeline for the configuration.
pub fn generate(config: &Config) -> Result<GeneratedFile, Error> {
    let settings = &config.workflows;
    let gitlab = &settings.gitlab;
    let mut templates = workflows::new_templates();
    templates.add_filter("yaml", |value: String| yaml_single(&value));
    workflows::add_template(
        &mut templates,
        settings,
        &config.root_dir,
        TEMPLATE.0,
        TEMPLATE.1,
    )?;
    let image = config.image_for(None).ok_or(Error::NoImage)?;
    let registry = Repository::parse(&image)?.registry;
    let buildx = matches!(config.build.builder, None | Some(BuilderKind::Buildx));
    let login = login(config);
    let services = services(gitlab.services.as_deref(), buildx);
    let native = toolchain::plan(config)?;
    if native.is_some() && gitlab.image == crate::config::DEFAULT_IMAGE {
        return Err(Error::usage(
            "configuration key `gitlab.image`: a native build compiles with cargo, and the default job image (Docker's CLI) has no Rust toolchain; set gitlab.image to a Rust image pinned by digest, e.g. \"rust:1.95-slim@sha256:…\"",
        ));
    }
    // Keyless signing is a step of the generated GitHub workflow (the job's OIDC token and
    // cosign); a GitLab pipeline that silently left images unsigned would mislead.
    if config.build.sign == crate::config::SignMode::Keyless {
        return Err(Error::usage(
            "configuration key `sign`: \"keyless\" signs in the generated GitHub workflow only; for GitLab use sign = \"key\" with the key's PEM in a masked CI/CD variable named by signing-key-env",
        ));
    }
    if workflows::needs_emulation(config) {
        return Err(Error::usage(format!(
            "configuration key `platforms`: a Dockerfile build for {} runs instructions under QEMU, which the generated GitLab job does not set up; build linux/amd64 only, use builder = \"native\", or set up binfmt in your own template (templates)",
            config.build.platforms.join(", ")
        )));
    }
    let cache = native
        .as_ref()
        .map(|native| toolchain::gitlab_cache(native, &gitlab.image));
    let registry_variables = registry_variables(settings)?;
    let install = install(settings)?;
    let package = config.package.clone().filter(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    let jobs = jobs(config)?;
    let contents = templates
        .get_template(TEMPLATE.0)
        .and_then(|t| {
            t.render(minijinja::context! {
                header => workflows::header(config, "cargo gitops init-workflows --ci gitlab"),
                path => PIPELINE_PATH,
                stage => &gitlab.stage,
                image => &gitlab.image,
                services => minijinja::value::Serde(&services),
                buildx => buildx,
                native => minijinja::value::Serde(&native),
                cache => minijinja::value::Serde(&cache),
                login => login,
                registry => registry,
                registry_variables => minijinja::value::Serde(registry_variables),
                install => minijinja::value::Serde(&install),
                package => package,
                reuse_unchanged => config.images.len() > 1,
                dotenv => DOTENV_FILE,
                jobs => minijinja::value::Serde(&jobs),
            })
        })
        .map_err(|e| workflows::template_error(TEMPLATE.0, &e))?;
    Ok(GeneratedFile {
        path: PathBuf::from(PIPELINE_PATH),
        contents,
    })
}

/// How a job logs in, where the builder reads the login: podman's auth file; for a native
/// build with the built-in client, the variables the tool reads itself (a Rust job image has
/// no docker CLI); else Docker's config (which crane and skopeo read too).
fn login(config: &Config) -> &'static str {
    match (config.build.builder, config.build.retagger) {
        (Some(BuilderKind::Podman), _) => "podman",
        (Some(BuilderKind::Native), None | Some(RetaggerKind::Builtin)) => "variables",
        _ => "docker",
    }
}

/// The job's services: those configured, else the Docker daemon Buildx needs.
fn services(configured: Option<&[String]>, buildx: bool) -> Vec<Service> {
    match configured {
        Some(services) => services
            .iter()
            .map(|name| Service {
                name: name.clone(),
                alias: None,
            })
            .collect(),
        None if buildx => vec![Service {
            name: DEFAULT_DIND.to_owned(),
            alias: Some("docker"),
        }],
        None => Vec::new(),
    }
}

/// The CI/CD variables that hold the registry login, each name checked. The GitHub workflows'
/// secret names stand for CI/CD variables of the same names.
fn registry_variables(settings: &WorkflowSettings) -> Result<Option<&RegistrySecrets>, Error> {
    let registry_variables = settings
        .gitlab
        .registry_variables
        .as_ref()
        .or(settings.registry_secrets.as_ref());
    if let Some(names) = registry_variables {
        for name in [&names.username, &names.password] {
            if !is_variable_name(name) {
                return Err(Error::usage(format!(
                    "registry-secrets: `{}` is not a GitLab CI/CD variable name; use letters, digits and `_`, or set gitlab.registry-variables",
                    name.escape_debug()
                )));
            }
        }
    }
    Ok(registry_variables)
}

/// How the jobs install cargo-gitops: the `install` table's plan, the GitHub workflows' own,
/// with the prebuilt binary copied into a folder on the job image's PATH.
fn install(settings: &WorkflowSettings) -> Result<install::Install, Error> {
    let mut plan = install::plan(settings)?;
    if plan.mode == "prebuilt" {
        // A job runs on Linux: the macOS pins would only be noise in its variables.
        plan.env.retain(|name, _| !name.ends_with("_APPLE_DARWIN"));
        plan.env
            .insert("GITOPS_INSTALL_DIR".to_owned(), INSTALL_DIR.to_owned());
    }
    Ok(plan)
}

/// One job per environment, in the configured order.
fn jobs(config: &Config) -> Result<Vec<Job>, Error> {
    let environments = &config.environments;
    let mut jobs = Vec::new();
    for (index, env) in environments.iter().enumerate() {
        let deploy = match &config.deploy {
            Some(settings) => {
                // The job token cannot push: the deploy needs a token of its own.
                if settings.target(env).credential.is_none() {
                    return Err(Error::usage(format!(
                        "the generated deploy job of environment `{}` needs `deploy.credential`: name the masked CI/CD variable holding a token that may push to the manifests repository",
                        env.name
                    )));
                }
                Some(format!("gitops-deploy-{}", env.name))
            }
            None => None,
        };
        let per_ref = env.branches.iter().any(BranchPattern::has_wildcard);
        jobs.push(Job {
            name: format!("gitops-{}", env.name),
            environment: env.name.clone(),
            description: workflows::describe(env).replace(|c: char| c.is_control(), " "),
            tier: deployment_tier(env),
            resource_group: if per_ref {
                format!("gitops-{}-$CI_COMMIT_REF_SLUG", env.name)
            } else {
                format!("gitops-{}", env.name)
            },
            interruptible: env.tags.is_none() && per_ref,
            rules: rules(environments, index)?,
            deploy,
        });
    }
    Ok(jobs)
}

/// The `.gitlab-ci.yml` written when the repository has none: it includes the generated file,
/// and is the user's to edit from then on (it is never checked for drift).
pub fn root_pipeline() -> GeneratedFile {
    GeneratedFile {
        path: PathBuf::from(ROOT_PIPELINE),
        contents: format!(
            "# The repository's GitLab CI pipeline: add your own jobs here. `cargo gitops init-workflows\n\
             # --ci gitlab` wrote this file once because there was none, and will not touch it again;\n\
             # the included file holds the jobs that build and promote images, and the tool keeps it\n\
             # up to date.\n\
             include:\n  - local: {PIPELINE_PATH}\n"
        ),
    }
}

/// Whether the repository's `.gitlab-ci.yml` mentions the generated file (an `include:` of it,
/// most likely); `None` when there is no `.gitlab-ci.yml`.
pub fn root_includes_pipeline(root: &Path) -> Option<bool> {
    std::fs::read_to_string(root.join(ROOT_PIPELINE))
        .ok()
        .map(|text| text.contains(PIPELINE_PATH))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment;

    #[test]
    fn tiers_follow_the_names() {
        let tiers: Vec<&str> = environment::defaults()
            .iter()
            .map(deployment_tier)
            .collect();
        assert_eq!(
            tiers,
            [
                "production",
                "production",
                "production",
                "testing",
                "staging",
                "development"
            ]
        );
    }
}
