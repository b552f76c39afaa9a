//! The GitLab CI pipeline generated from the configuration: one file,
//! `.gitlab/gitops.gitlab-ci.yml`, that the repository's `.gitlab-ci.yml` includes, with one job
//! per environment (per image and environment, when the repository ships several, all in one
//! stage so they run in parallel, each in a resource group of its own). Each job's `rules:` are derived from the same environment definitions
//! `environment` matches: branch globs become anchored RE2 patterns on `$CI_COMMIT_BRANCH`,
//! SemVer tag selectors patterns on `$CI_COMMIT_TAG`, and an environment first excludes (with
//! `when: never`) the refs an earlier environment takes, so that a ref runs exactly the job of
//! the environment `cargo gitops env` picks, or none; those conditions are `rules`'. Jobs
//! extend a hidden job: `.gitops` when every image has the same job setup, else one per setup
//! (`.gitops-native` beside `.gitops-buildx`), each over a `.gitops` of what they all share.
//! This module owns the jobs, their tiers and the install, rendered from
//! `templates/gitlab-ci.yml` with the syntax the GitHub templates use; drift is checked like
//! theirs.

mod rules;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::workflows::{self, GeneratedFile};
use super::{grammar, install, toolchain};
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

/// What the template needs of one build job: one environment's, and with several images, of
/// one image in it.
#[derive(Debug, Clone, Serialize)]
struct Job {
    name: String,
    environment: String,
    description: String,
    tier: &'static str,
    resource_group: String,
    interruptible: bool,
    rules: Vec<Rule>,
    /// With several images: the package this job builds, checked by the package grammar, and
    /// its own compile cache (native builds).
    package: Option<String>,
    cache: Option<toolchain::GitlabCache>,
    /// With a `deploy` table, on the environment's last build job: the deploy job after it.
    deploy: Option<Deploy>,
    /// A release of several images: one job promotes them all as one set (`build --all`).
    all: bool,
    /// The hidden job of its image's setup (for a release, the first image's).
    extends: String,
    /// Whether the setup logs in through the tool's variables, which only its built-in client
    /// reads.
    builtin: bool,
}

/// One environment's deploy job: after every build job of that environment.
#[derive(Debug, Clone, Serialize)]
struct Deploy {
    name: String,
    /// One deploy at a time per environment.
    resource_group: String,
    needs: Vec<String>,
    /// The hidden job of the first image's setup: every setup installs the tool and logs in to
    /// the one registry of all the images.
    extends: String,
}

/// What an image's jobs get from their hidden job: the job setup (the job image, services,
/// builder and login) and what every setup of the file shares (the stage, the registry and its
/// login's variables, the install). GitLab's `extends` merges hashes but replaces lists
/// (`before_script`, `services`), so images whose setups differ get a hidden job each, which
/// extends one `.gitops` of what they share; [`Shared::differs`] says where two differ.
#[derive(Debug, Clone, Serialize)]
struct Shared {
    stage: String,
    image: String,
    services: Vec<Service>,
    buildx: bool,
    native: Option<toolchain::Toolchain>,
    login: &'static str,
    registry: String,
    registry_variables: Option<RegistrySecrets>,
    install: install::Install,
}

/// The parts of [`Shared`] that make a job setup, by the name the configuration gives them:
/// images may differ in these, each setup getting a hidden job of its own. The builder first:
/// it decides the services and the login too.
const SETUP_KEYS: &[(&str, &str)] = &[
    ("buildx", "builder"),
    ("native", "builder and platforms"),
    ("login", "builder and retagger"),
    ("image", "gitlab.image"),
    ("services", "gitlab.services"),
];

/// The parts every setup shares: one stage (the deploy job needs builds of every setup), one
/// install, and one registry login, with which a release's one job and the deploy job act for
/// every image whatever setup they extend.
const COMMON_KEYS: &[(&str, &str)] = &[
    ("stage", "gitlab.stage"),
    ("registry", "registry"),
    ("registry_variables", "gitlab.registry-variables"),
    ("install", "install"),
];

impl Shared {
    /// The first of `keys` that `other` sets otherwise, by the name the configuration gives it.
    fn differs(&self, other: &Shared, keys: &[(&str, &'static str)]) -> Option<&'static str> {
        let (a, b) = (
            serde_json::to_value(self).expect("serialises"),
            serde_json::to_value(other).expect("serialises"),
        );
        keys.iter()
            .find(|(field, _)| a[field] != b[field])
            .map(|(_, key)| *key)
    }

    /// The builder the setup runs, which names its hidden job.
    fn builder(&self) -> &'static str {
        match (&self.native, self.buildx) {
            (Some(_), _) => "native",
            (None, true) => "buildx",
            (None, false) => "podman",
        }
    }
}

/// One job setup and its hidden job's name: `.gitops` when the file has one setup.
#[derive(Debug, Clone)]
struct Setup {
    name: String,
    shared: Shared,
    /// The images whose jobs extend it.
    images: Vec<String>,
}

/// A hidden job of the file. With one setup, `.gitops` holds it whole; with several,
/// `.gitops` holds what they share (`common`), and each setup's hidden job extends it.
#[derive(Debug, Clone, Serialize)]
struct Hidden {
    name: String,
    extends: Option<&'static str>,
    common: bool,
    setup: Option<Shared>,
    /// How its `before_script` holds the install: written out (`inline`), written out under
    /// the file's anchor (`anchor`), or the anchor's alias (`alias`).
    install_item: &'static str,
    images: Vec<String>,
    builder: &'static str,
}

/// The hidden jobs of `setups`, in the file's order.
fn hidden_jobs(setups: &[Setup]) -> Vec<Hidden> {
    if let [setup] = setups {
        return vec![Hidden {
            name: setup.name.clone(),
            extends: None,
            common: true,
            setup: Some(setup.shared.clone()),
            install_item: "inline",
            images: setup.images.clone(),
            builder: setup.shared.builder(),
        }];
    }
    let base = Hidden {
        name: ".gitops".to_owned(),
        extends: None,
        common: true,
        setup: None,
        install_item: "none",
        images: Vec::new(),
        builder: "",
    };
    std::iter::once(base)
        .chain(setups.iter().enumerate().map(|(index, setup)| Hidden {
            name: setup.name.clone(),
            extends: Some(".gitops"),
            common: false,
            setup: Some(setup.shared.clone()),
            install_item: if index == 0 { "anchor" } else { "alias" },
            images: setup.images.clone(),
            builder: setup.shared.builder(),
        }))
        .collect()
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

/// Renders the GitLab pipeline for the configuration of one image.
pub fn generate(config: &Config) -> Result<GeneratedFile, Error> {
    let setup = Setup {
        name: ".gitops".to_owned(),
        shared: shared(config)?,
        images: Vec::new(),
    };
    let cache = setup
        .shared
        .native
        .as_ref()
        .map(|native| toolchain::gitlab_cache(native, &setup.shared.image));
    // Through a job variable: the single-image file has always passed it quoted.
    let package = config.package.clone().filter(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    let mut jobs = Vec::new();
    for index in 0..config.environments.len() {
        let mut job = job(config, index, None, &setup)?;
        if let Some(resource_group) = deploy_group(config, index)? {
            job.deploy = Some(Deploy {
                name: format!("{}-deploy", job.name),
                resource_group,
                needs: vec![job.name.clone()],
                extends: setup.name.clone(),
            });
        }
        jobs.push(job);
    }
    render(
        config,
        &workflows::header(config, COMMAND),
        minijinja::context! {
            multi => false,
            cache => minijinja::value::Serde(&cache),
            package => package,
            reuse_unchanged => config.images.len() > 1,
        },
        std::slice::from_ref(&setup),
        &jobs,
    )
}

/// Renders one GitLab pipeline for every image the repository ships: a build job per image
/// and environment, all in the same stage so the services build in parallel, each queued in
/// a resource group of its own; and per environment one deploy job after all its builds.
/// Images whose job setups differ (a native build beside a Dockerfile's) get a hidden job per
/// setup.
pub fn generate_each(configs: &[Config]) -> Result<GeneratedFile, Error> {
    let first = match configs {
        [] => return Err(Error::NoImage),
        [one] => return generate(one),
        [first, ..] => first,
    };
    let (setups, setup_of) = setups(configs)?;
    let jobs = jobs_each(configs, &setups, &setup_of)?;
    let sources: Vec<&str> = configs
        .iter()
        .map(|c| c.described_source.as_str())
        .collect();
    let header = workflows::header_from(&sources.join(", "), COMMAND);
    render(
        first,
        &header,
        minijinja::context! {
            multi => true,
            cache => None::<()>,
            package => None::<()>,
            reuse_unchanged => true,
        },
        &setups,
        &jobs,
    )
}

/// The images' job setups in the order of their first image, and each image's setup (an index
/// into them). Images that differ in what every setup shares are refused with the key.
fn setups(configs: &[Config]) -> Result<(Vec<Setup>, Vec<usize>), Error> {
    let mut setups: Vec<Setup> = Vec::new();
    let mut setup_of = Vec::with_capacity(configs.len());
    for config in configs {
        let shared = shared(config)?;
        if let Some(first) = setups.first()
            && let Some(key) = first.shared.differs(&shared, COMMON_KEYS)
        {
            return Err(Error::usage(format!(
                "the GitLab pipeline's jobs share one stage, install and registry login (a release's job and the deploy job act for every image), and images `{}` and `{}` set `{key}` differently; set it once in the shared table ([workspace.metadata.gitops] or gitops.toml's top level), or generate the pipeline of one image with -p",
                name_of(&configs[0]),
                name_of(config)
            )));
        }
        let image = config.package.clone().unwrap_or_default();
        match setups
            .iter()
            .position(|s| s.shared.differs(&shared, SETUP_KEYS).is_none())
        {
            Some(index) => {
                setups[index].images.push(image);
                setup_of.push(index);
            }
            None => {
                setup_of.push(setups.len());
                setups.push(Setup {
                    name: String::new(),
                    shared,
                    images: vec![image],
                });
            }
        }
    }
    // Named by builder, and where two setups have the same builder (other job images, say)
    // by their first image too; a package name is a plain name, checked before it is written.
    let builders: Vec<&str> = setups.iter().map(|s| s.shared.builder()).collect();
    for index in 0..setups.len() {
        let builder = builders[index];
        setups[index].name = if setups.len() == 1 {
            ".gitops".to_owned()
        } else if builders.iter().filter(|b| **b == builder).count() == 1 {
            format!(".gitops-{builder}")
        } else {
            let image = &setups[index].images[0];
            grammar::package("package.name", image)?;
            format!(".gitops-{builder}-{image}")
        };
    }
    Ok((setups, setup_of))
}

const COMMAND: &str = "cargo gitops init-workflows --ci gitlab";

fn name_of(config: &Config) -> &str {
    config.package.as_deref().unwrap_or("(unnamed)")
}

/// The template rendered with what every file has, and `extra`: what differs between the
/// file of one image and that of several.
fn render(
    config: &Config,
    header: &str,
    extra: minijinja::Value,
    setups: &[Setup],
    jobs: &[Job],
) -> Result<GeneratedFile, Error> {
    // The first setup's values stay in the context by their old names, for templates of a
    // repository's own written against them.
    let shared = &setups[0].shared;
    let settings = &config.workflows;
    let mut templates = workflows::new_templates();
    templates.add_filter("yaml", |value: String| yaml_single(&value));
    workflows::add_template(
        &mut templates,
        settings,
        &config.root_dir,
        TEMPLATE.0,
        TEMPLATE.1,
    )?;
    let context = minijinja::context! {
        header => header,
        path => PIPELINE_PATH,
        stage => &shared.stage,
        image => &shared.image,
        services => minijinja::value::Serde(&shared.services),
        buildx => shared.buildx,
        native => minijinja::value::Serde(&shared.native),
        login => shared.login,
        registry => &shared.registry,
        registry_variables => minijinja::value::Serde(&shared.registry_variables),
        install => minijinja::value::Serde(&shared.install),
        dotenv => DOTENV_FILE,
        hidden => minijinja::value::Serde(hidden_jobs(setups)),
        jobs => minijinja::value::Serde(jobs),
        ..extra
    };
    let contents = templates
        .get_template(TEMPLATE.0)
        .and_then(|t| t.render(context))
        .map_err(|e| workflows::template_error(TEMPLATE.0, &e))?;
    Ok(GeneratedFile {
        path: PathBuf::from(PIPELINE_PATH),
        contents,
    })
}

/// One image's checks, and what its jobs would put into the hidden `.gitops` job.
fn shared(config: &Config) -> Result<Shared, Error> {
    let settings = &config.workflows;
    let gitlab = &settings.gitlab;
    let image = config.image_for(None).ok_or(Error::NoImage)?;
    let registry = Repository::parse(&image)?.registry;
    let buildx = matches!(config.build.builder, None | Some(BuilderKind::Buildx));
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
    Ok(Shared {
        stage: gitlab.stage.clone(),
        image: gitlab.image.clone(),
        services: services(gitlab.services.as_deref(), buildx),
        buildx,
        native,
        login: login(config),
        registry,
        registry_variables: registry_variables(settings)?.cloned(),
        install: install(settings)?,
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

/// The build job of the environment at `index`; with several images, of `package` in it.
fn job(config: &Config, index: usize, package: Option<&str>, setup: &Setup) -> Result<Job, Error> {
    let shared = &setup.shared;
    let environments = &config.environments;
    let env = &environments[index];
    let per_ref = env.branches.iter().any(BranchPattern::has_wildcard);
    // A `:` is in no package or environment name, so these names cannot collide; resource
    // groups may not hold one, and `/` is as unambiguous there.
    let (name, group) = match package {
        Some(package) => (
            format!("gitops:{package}:{}", env.name),
            format!("gitops/{package}/{}", env.name),
        ),
        None => (
            format!("gitops-{}", env.name),
            format!("gitops-{}", env.name),
        ),
    };
    let resource_group = match (per_ref, package) {
        (false, _) => group,
        (true, Some(_)) => format!("{group}/$CI_COMMIT_REF_SLUG"),
        (true, None) => format!("{group}-$CI_COMMIT_REF_SLUG"),
    };
    // Each service's compile of its own last run: one service's changes never evict another's.
    let cache = match (package, &shared.native) {
        (Some(package), Some(native)) => {
            let mut cache = toolchain::gitlab_cache(native, &shared.image);
            cache.prefix = format!("{}-{package}", cache.prefix);
            Some(cache)
        }
        _ => None,
    };
    Ok(Job {
        name,
        environment: env.name.clone(),
        description: workflows::describe(env).replace(|c: char| c.is_control(), " "),
        tier: deployment_tier(env),
        resource_group,
        interruptible: env.tags.is_none() && per_ref,
        rules: rules(environments, index)?,
        package: package.map(str::to_owned),
        cache,
        deploy: None,
        all: false,
        extends: setup.name.clone(),
        builtin: shared.login == "variables",
    })
}

/// With a `deploy` table, the resource group of the deploy job of the environment at `index`.
fn deploy_group(config: &Config, index: usize) -> Result<Option<String>, Error> {
    let env = &config.environments[index];
    let Some(settings) = &config.deploy else {
        return Ok(None);
    };
    // The job token cannot push: the deploy needs a token of its own.
    if settings.target(env).credential.is_none() {
        return Err(Error::usage(format!(
            "the generated deploy job of environment `{}` needs `deploy.credential`: name the masked CI/CD variable holding a token that may push to the manifests repository",
            env.name
        )));
    }
    Ok(Some(format!("gitops-deploy-{}", env.name)))
}

/// Every image's build jobs, environment by environment in the configured order, and after
/// each environment's builds its deploy job. Each image's jobs extend its setup's hidden job
/// (`setup_of`), a release's one job and the deploy jobs the first image's: every setup
/// installs the tool and logs in to the one registry.
fn jobs_each(configs: &[Config], setups: &[Setup], setup_of: &[usize]) -> Result<Vec<Job>, Error> {
    let first_setup = &setups[setup_of[0]];
    let deploys = configs.iter().filter(|c| c.deploy.is_some()).count();
    if deploys != 0 && deploys != configs.len() {
        let without: Vec<&str> = configs
            .iter()
            .filter(|c| c.deploy.is_none())
            .map(name_of)
            .collect();
        return Err(Error::usage(format!(
            "the GitLab deploy job runs `cargo gitops deploy` for every image of an environment, and {} has no `deploy` table; give every image one (or put it in the shared table), or none",
            without.join(", ")
        )));
    }
    if deploys != 0 {
        same_environments(configs)?;
    }
    let mut order: Vec<&str> = Vec::new();
    for config in configs {
        for env in &config.environments {
            if !order.contains(&env.name.as_str()) {
                order.push(&env.name);
            }
        }
    }
    let mut jobs = Vec::new();
    for name in order {
        let mut builds: Vec<Job> = Vec::new();
        let mut deploy = None;
        let set = release_of_the_set(configs, name)?;
        if let Some(index) = set {
            grammar::environment(&format!("environments[{index}].name"), name)?;
            let mut release = job(&configs[0], index, None, first_setup)?;
            release.name = format!("gitops:{name}");
            release.resource_group = format!("gitops/{name}");
            release.all = true;
            deploy = deploy_group(&configs[0], index)?;
            builds.push(release);
        }
        for (config, setup) in configs.iter().zip(setup_of).filter(|_| set.is_none()) {
            let Some(index) = config.environments.iter().position(|e| e.name == name) else {
                continue;
            };
            let package = config.package.as_deref().unwrap_or_default();
            // Both reach job names, resource groups and the build's script line as written.
            grammar::package("package.name", package)?;
            grammar::environment(&format!("environments[{index}].name"), name)?;
            builds.push(job(config, index, Some(package), &setups[*setup])?);
            if let Some(group) = deploy_group(config, index)? {
                deploy = Some(group);
            }
        }
        if let (Some(resource_group), Some(last)) = (deploy, builds.last_mut()) {
            last.deploy = Some(Deploy {
                name: format!("gitops-{name}-deploy"),
                resource_group,
                needs: Vec::new(),
                extends: first_setup.name.clone(),
            });
        }
        let needs: Vec<String> = builds.iter().map(|j| j.name.clone()).collect();
        if let Some(deploy) = builds.last_mut().and_then(|j| j.deploy.as_mut()) {
            deploy.needs = needs;
        }
        jobs.extend(builds);
    }
    Ok(jobs)
}

/// Where environment `name` is a release (it tracks tags only) that every image defines with
/// the same rules, its index: one job promotes every image to it as one set, all or none.
fn release_of_the_set(configs: &[Config], name: &str) -> Result<Option<usize>, Error> {
    let mut shape = None;
    let mut first = None;
    for config in configs {
        let Some(index) = config.environments.iter().position(|e| e.name == name) else {
            return Ok(None);
        };
        let env = &config.environments[index];
        if env.tags.is_none() || !env.branches.is_empty() {
            return Ok(None);
        }
        let rules = serde_json::to_value(rules(&config.environments, index)?)
            .map_err(|e| Error::Internal(format!("rules do not serialise: {e}")))?;
        match &shape {
            None => {
                shape = Some(rules);
                first = Some(index);
            }
            Some(known) if *known == rules => {}
            Some(_) => return Ok(None),
        }
    }
    Ok(first)
}

/// The deploy job of an environment runs on that environment's rules after all its build
/// jobs: every image must define the environments alike, or a ref could run the deploy with
/// a build it needs absent from the pipeline (which GitLab refuses to create).
fn same_environments(configs: &[Config]) -> Result<(), Error> {
    let shape = |config: &Config| -> Result<serde_json::Value, Error> {
        let mut all = Vec::new();
        for index in 0..config.environments.len() {
            let rules = rules(&config.environments, index)?;
            all.push(serde_json::json!([
                config.environments[index].name,
                serde_json::to_value(rules).expect("serialises")
            ]));
        }
        Ok(serde_json::Value::Array(all))
    };
    let first = shape(&configs[0])?;
    for config in &configs[1..] {
        if shape(config)? != first {
            return Err(Error::usage(format!(
                "the GitLab deploy job deploys every image of an environment at once, and images `{}` and `{}` define their environments differently; define them once in the shared table, or run `cargo gitops deploy -p NAME` in jobs of your own",
                name_of(&configs[0]),
                name_of(config)
            )));
        }
    }
    Ok(())
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
