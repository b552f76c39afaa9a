//! The `deploy` table: where `cargo gitops deploy` writes each environment's image (the
//! manifests repository, branch and folder), how (push or pull request), which credential it
//! names, and what it edits besides kustomize and Flux markers (a Helm values file). Every value
//! is checked here against a strict grammar, since it reaches git's command line, commit
//! messages and generated pipelines. Editing manifests and talking to git is `deploy`'s job.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{bad_key, is_variable_name};
use crate::environment::Environment;
use crate::error::Error;

/// The placeholder `path` and `flux-policy` may contain.
pub const ENVIRONMENT_PLACEHOLDER: &str = "{environment}";

/// How a deploy reaches the manifests branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployMode {
    /// One commit pushed to the branch (fast-forward only, never forced).
    Push,
    /// A commit on a branch of its own, proposed as a pull (merge) request.
    PullRequest,
}

/// The forge whose API opens pull requests in pull-request mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForgeKind {
    /// GitHub (github.com or GitHub Enterprise Server): pull requests.
    Github,
    /// GitLab: merge requests.
    Gitlab,
}

/// The `deploy` table as written, and each `deploy.environments.NAME` table over it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDeploy {
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub path: Option<String>,
    pub mode: Option<DeployMode>,
    pub credential: Option<String>,
    pub flux_policy: Option<String>,
    pub helm_values: Option<String>,
    pub helm_tag: Option<String>,
    pub helm_digest: Option<String>,
    pub forge: Option<ForgeKind>,
    pub forge_api: Option<String>,
    pub forge_project: Option<String>,
    pub environments: Option<BTreeMap<String, RawDeploy>>,
}

impl RawDeploy {
    /// Key by key, this table's value, else `base`'s.
    fn over(&self, base: &RawDeploy) -> RawDeploy {
        RawDeploy {
            repository: self.repository.clone().or(base.repository.clone()),
            branch: self.branch.clone().or(base.branch.clone()),
            path: self.path.clone().or(base.path.clone()),
            mode: self.mode.or(base.mode),
            credential: self.credential.clone().or(base.credential.clone()),
            flux_policy: self.flux_policy.clone().or(base.flux_policy.clone()),
            helm_values: self.helm_values.clone().or(base.helm_values.clone()),
            helm_tag: self.helm_tag.clone().or(base.helm_tag.clone()),
            helm_digest: self.helm_digest.clone().or(base.helm_digest.clone()),
            forge: self.forge.or(base.forge),
            forge_api: self.forge_api.clone().or(base.forge_api.clone()),
            forge_project: self.forge_project.clone().or(base.forge_project.clone()),
            environments: None,
        }
    }
}

/// A Helm values file and the YAML paths of the image's tag and digest in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelmValues {
    /// Relative to the deploy folder.
    pub file: String,
    /// Dotted path of the tag (`image.tag`).
    pub tag: String,
    /// Dotted path of the digest (`image.digest`).
    pub digest: String,
}

/// Where and how one environment's images are written, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployTarget {
    /// The manifests repository's git URL; `None`: this repository (its `origin`).
    pub repository: Option<String>,
    /// The branch written to; `None`: the repository's default branch.
    pub branch: Option<String>,
    /// The folder of the manifests, `{environment}` filled in.
    pub path: String,
    pub mode: DeployMode,
    /// The environment variable holding the token for the repository (and its forge's API).
    pub credential: Option<String>,
    /// The Flux image policy (`NAMESPACE:NAME`) whose setter markers name this image.
    pub flux_policy: Option<String>,
    pub helm: Option<HelmValues>,
    /// Pull-request mode: the forge, its API and the project, when not told by the URL.
    pub forge: Option<ForgeKind>,
    pub forge_api: Option<String>,
    pub forge_project: Option<String>,
}

/// The checked `deploy` table: the shared keys and each environment's own.
#[derive(Debug, Clone, Default)]
pub struct DeploySettings {
    base: RawDeploy,
    environments: BTreeMap<String, RawDeploy>,
}

impl DeploySettings {
    /// Where `environment`'s images go: its own keys over the shared ones, with defaults.
    /// The mode defaults to a pull request for environments that track tags (production and
    /// its channels) and to a push for the branch-tracked ones.
    pub fn target(&self, environment: &Environment) -> DeployTarget {
        let raw = match self.environments.get(&environment.name) {
            Some(own) => own.over(&self.base),
            None => self.base.clone(),
        };
        let fill = |text: &str| text.replace(ENVIRONMENT_PLACEHOLDER, &environment.name);
        let default_mode = if environment.tags.is_some() {
            DeployMode::PullRequest
        } else {
            DeployMode::Push
        };
        DeployTarget {
            repository: raw.repository,
            branch: raw.branch,
            path: fill(raw.path.as_deref().unwrap_or(".")),
            mode: raw.mode.unwrap_or(default_mode),
            credential: raw.credential,
            flux_policy: raw.flux_policy.as_deref().map(fill),
            helm: raw.helm_values.map(|file| HelmValues {
                file: fill(&file),
                tag: raw.helm_tag.unwrap_or_else(|| "image.tag".to_owned()),
                digest: raw.helm_digest.unwrap_or_else(|| "image.digest".to_owned()),
            }),
            forge: raw.forge,
            forge_api: raw.forge_api,
            forge_project: raw.forge_project,
        }
    }
}

/// Checks the `deploy` table (at `key("deploy")` in `file`) against the environments.
pub fn settings(
    raw: Option<RawDeploy>,
    environments: &[Environment],
    file: &Path,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<DeploySettings>, Error> {
    let Some(mut raw) = raw else {
        return Ok(None);
    };
    let own = raw.environments.take().unwrap_or_default();
    check(&raw, file, &|name| key(&format!("deploy.{name}")))?;
    for (name, table) in &own {
        let prefix = format!("deploy.environments.{name}");
        if !environments.iter().any(|env| &env.name == name) {
            return Err(bad_key(
                file,
                &key(&prefix),
                &format!(
                    "no environment is named `{}`; the environments are: {}",
                    crate::ci::grammar::shown(name),
                    environments
                        .iter()
                        .map(|e| e.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if table.environments.is_some() {
            return Err(bad_key(
                file,
                &key(&format!("{prefix}.environments")),
                "environment tables do not nest",
            ));
        }
        check(table, file, &|k| key(&format!("{prefix}.{k}")))?;
    }
    Ok(Some(DeploySettings {
        base: raw,
        environments: own,
    }))
}

static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:https?|ssh|git|file)://[A-Za-z0-9._~:/%+\[\]-]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/+-]+)$")
        .expect("valid regex")
});

static POLICY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?:(\{environment\}|[a-z0-9.-])+$").expect("valid")
});

static FORGE_API: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(https://[A-Za-z0-9.-]+(:[0-9]+)?|http://(127\.0\.0\.1|localhost)(:[0-9]+)?)(/[A-Za-z0-9._~-]+)*/?$")
        .expect("valid regex")
});

static PROJECT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$").expect("valid regex"));

static YAML_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$").expect("valid regex"));

fn check(raw: &RawDeploy, file: &Path, key: &dyn Fn(&str) -> String) -> Result<(), Error> {
    let refuse = |name: &str, value: &str, why: &str| {
        bad_key(
            file,
            &key(name),
            &format!("`{}` {why}", crate::ci::grammar::shown(value)),
        )
    };
    if let Some(url) = &raw.repository {
        if url.contains('@') && url.contains("://") && credentials_in_url(url) {
            return Err(bad_key(
                file,
                &key("repository"),
                "the URL carries a credential; remove it and name the variable that holds the token in `credential`",
            ));
        }
        if !URL.is_match(url) {
            return Err(refuse(
                "repository",
                url,
                "is not a git URL (https://, ssh://, git://, file:// or user@host:path, with no spaces or quotes)",
            ));
        }
    }
    if let Some(branch) = &raw.branch
        && !is_branch_name(branch)
    {
        return Err(refuse(
            "branch",
            branch,
            "is not a branch name (letters, digits, `.`, `_`, `-` and `/`, no `..`, not starting with `-` or `/`)",
        ));
    }
    if let Some(path) = &raw.path
        && !is_relative_path(path, true)
    {
        return Err(refuse(
            "path",
            path,
            "is not a folder inside the manifests repository (relative, segments of letters, digits, `.`, `_`, `-` or `{environment}`, no `..`)",
        ));
    }
    if let Some(name) = &raw.credential
        && !is_variable_name(name)
    {
        return Err(refuse(
            "credential",
            name,
            "is not an environment variable name; name the variable (or secret) that holds the token, never the token itself",
        ));
    }
    if let Some(policy) = &raw.flux_policy
        && !POLICY.is_match(policy)
    {
        return Err(refuse(
            "flux-policy",
            policy,
            "is not a Flux image policy as `NAMESPACE:NAME`",
        ));
    }
    if let Some(values) = &raw.helm_values
        && (!is_relative_path(values, false) || values == ".")
    {
        return Err(refuse(
            "helm-values",
            values,
            "is not a file inside the deploy folder (relative, no `..`)",
        ));
    }
    if let Some(api) = &raw.forge_api
        && !FORGE_API.is_match(api)
    {
        return Err(refuse(
            "forge-api",
            api,
            "is not the https URL of a forge's API (such as https://gitlab.example.com/api/v4)",
        ));
    }
    if let Some(project) = &raw.forge_project
        && !PROJECT.is_match(project)
    {
        return Err(refuse(
            "forge-project",
            project,
            "is not a project path such as `owner/name`",
        ));
    }
    for (name, value) in [
        ("helm-tag", &raw.helm_tag),
        ("helm-digest", &raw.helm_digest),
    ] {
        if let Some(value) = value {
            if !YAML_PATH.is_match(value) {
                return Err(refuse(
                    name,
                    value,
                    "is not a dotted YAML path such as `image.tag`",
                ));
            }
            if raw.helm_values.is_none() {
                return Err(bad_key(
                    file,
                    &key(name),
                    "says where in a Helm values file the image goes; add `helm-values` (the file) or drop it",
                ));
            }
        }
    }
    Ok(())
}

/// `scheme://user:secret@host`: a credential written into the URL.
fn credentials_in_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .split_once('@')
        .is_some_and(|(user, _)| user.contains(':') || user.len() > 20)
}

/// A branch name git accepts and no shell or YAML reads as anything else.
pub fn is_branch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("/.")
}

/// A relative path of plain segments (and, if `placeholder`, `{environment}` in them): no
/// absolute path, no `..`, no `.` segment except `.` alone for the root.
pub fn is_relative_path(path: &str, placeholder: bool) -> bool {
    if path == "." {
        return true;
    }
    !path.is_empty()
        && path.len() <= 300
        && path.split('/').all(|segment| {
            let plain = if placeholder {
                segment.replace(ENVIRONMENT_PLACEHOLDER, "x")
            } else {
                segment.to_owned()
            };
            !plain.is_empty()
                && plain != "."
                && plain != ".."
                && plain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_repository() {
        for good in [
            "apps/{environment}",
            ".",
            "clusters/prod-1/app.v2",
            "{environment}",
        ] {
            assert!(is_relative_path(good, true), "{good}");
        }
        for bad in [
            "/etc", "../x", "a/../b", "a//b", "a/", "./a", "a/./b", "", "a b", "a\\b", "~/x",
            "{env}",
        ] {
            assert!(!is_relative_path(bad, true), "{bad}");
        }
        assert!(!is_relative_path("{environment}", false));
    }

    #[test]
    fn branches_are_plain_names() {
        for good in ["main", "deploy/staging", "release-1.2", "a_b"] {
            assert!(is_branch_name(good), "{good}");
        }
        for bad in [
            "", "-f", "/main", "main/", "a..b", "a//b", "x.lock", "a b", "a:b", "a~1", ".hidden",
            "a/.b", "$(x)",
        ] {
            assert!(!is_branch_name(bad), "{bad}");
        }
    }

    #[test]
    fn urls_with_credentials_are_noticed() {
        assert!(credentials_in_url("https://user:secret@github.com/a/b.git"));
        assert!(credentials_in_url(
            "https://ghp_abcdefghijklmnopqrstuvwxyz@github.com/a/b.git"
        ));
        assert!(!credentials_in_url("ssh://git@github.com/a/b.git"));
        assert!(!credentials_in_url("https://github.com/a/b.git"));
        assert!(URL.is_match("git@github.com:acme/fleet.git"));
        assert!(URL.is_match("git://127.0.0.1:9418/fleet.git"));
        assert!(!URL.is_match("https://github.com/a b"));
        assert!(!URL.is_match("--upload-pack=evil"));
        assert!(!URL.is_match("ext::sh -c evil"));
    }
}
