//! The `gitlab` table: how the GitLab CI pipeline `init-workflows --ci gitlab` writes runs its
//! jobs (the job image and services, pinned by digest; the registry login; the stage). The
//! release archive the jobs install is the `install` table's, the same as the GitHub workflows'. Each value is checked here with a strict grammar, because each ends
//! up in YAML or in a shell line; rendering the pipeline is `ci::gitlab_pipeline`'s job.

use std::path::Path;

use serde::Deserialize;

use super::RegistrySecrets;
use crate::error::Error;

/// The job image when none is configured: Docker's CLI image (with the buildx plugin), on
/// Alpine, pinned by digest.
pub const DEFAULT_IMAGE: &str =
    "docker:27.4.0-cli@sha256:561338cb111f09a755c9c28e00b66a2466a3dacd88bca6f2f0aeaf909e95730a";

/// The Docker daemon the buildx builder talks to, as a service of the job.
pub const DEFAULT_DIND: &str =
    "docker:27.4.0-dind@sha256:b0c1179ea32ad77bdb7b852b037e54b11022304c2f2662af1954ef53869314b2";

/// The stage of the generated jobs when none is configured: one of GitLab's default stages.
pub const DEFAULT_STAGE: &str = "deploy";

/// `[…gitops.gitlab]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawGitlab {
    pub image: Option<String>,
    pub services: Option<Vec<String>>,
    pub registry_variables: Option<RegistrySecrets>,
    /// Replaced by `install.base-url`: read only to say so.
    pub install_url: Option<String>,
    /// Replaced by the per-platform `install.sha256` table: read only to say so.
    pub install_sha256: Option<String>,
    pub stage: Option<String>,
}

impl RawGitlab {
    /// Key by key, this table's value, else `fallback`'s: a package that sets its own job
    /// image keeps the shared stage and registry login.
    pub fn or(self, fallback: RawGitlab) -> RawGitlab {
        RawGitlab {
            image: self.image.or(fallback.image),
            services: self.services.or(fallback.services),
            registry_variables: self.registry_variables.or(fallback.registry_variables),
            install_url: self.install_url.or(fallback.install_url),
            install_sha256: self.install_sha256.or(fallback.install_sha256),
            stage: self.stage.or(fallback.stage),
        }
    }
}

/// The GitLab pipeline's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabSettings {
    /// `name[:tag]@sha256:<64 hex>`.
    pub image: String,
    /// `None`: a Docker-in-Docker service when the builder is buildx, none otherwise.
    pub services: Option<Vec<String>>,
    /// CI/CD variables holding another registry's login; `None` uses the names of
    /// `registry-secrets`, and without those logs in to `$CI_REGISTRY` with the job's own
    /// `CI_REGISTRY_USER` and `CI_REGISTRY_PASSWORD`.
    pub registry_variables: Option<RegistrySecrets>,
    pub stage: String,
}

impl Default for GitlabSettings {
    fn default() -> GitlabSettings {
        GitlabSettings {
            image: DEFAULT_IMAGE.to_owned(),
            services: None,
            registry_variables: None,
            stage: DEFAULT_STAGE.to_owned(),
        }
    }
}

/// Whether `text` is an image reference pinned by digest: `[host[:port]/]path[:tag]@sha256:`
/// and 64 lowercase hex digits, with Docker's grammar for each part.
pub fn is_pinned_image(text: &str) -> bool {
    let grammar = regex::Regex::new(
        r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$",
    )
    .expect("the grammar is valid");
    grammar.is_match(text)
}

/// A CI/CD variable name as GitLab takes it, and as it can be written in `"$NAME"`.
pub fn is_variable_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What is wrong with one key of the table: the key (under `gitlab.`) and the sentence.
type Refusal = (&'static str, String);

/// Checks the table.
pub fn settings(
    raw: Option<RawGitlab>,
    file: &Path,
    table_key: &dyn Fn(&str) -> String,
) -> Result<GitlabSettings, Error> {
    let raw = raw.unwrap_or_default();
    let bad = |(key, message): Refusal| Error::Config {
        file: file.to_path_buf(),
        line: None,
        key: table_key(&format!("gitlab.{key}")),
        message,
    };
    check_images(&raw).map_err(bad)?;
    check_registry_variables(raw.registry_variables.as_ref()).map_err(bad)?;
    check_install(&raw).map_err(bad)?;
    let stage = raw
        .stage
        .clone()
        .unwrap_or_else(|| DEFAULT_STAGE.to_owned());
    check_stage(&stage).map_err(bad)?;
    Ok(GitlabSettings {
        image: raw.image.unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
        services: raw.services,
        registry_variables: raw.registry_variables,
        stage,
    })
}

/// The job image and every service must be pinned by digest.
fn check_images(raw: &RawGitlab) -> Result<(), Refusal> {
    let pinned = |key: &'static str, image: &str| {
        if is_pinned_image(image) {
            Ok(())
        } else {
            Err((
                key,
                format!(
                    "`{}` is not an image pinned by digest; write NAME[:TAG]@sha256:<64 hex>",
                    image.escape_debug()
                ),
            ))
        }
    };
    if let Some(image) = &raw.image {
        pinned("image", image)?;
    }
    for service in raw.services.iter().flatten() {
        pinned("services", service)?;
    }
    Ok(())
}

fn check_registry_variables(names: Option<&RegistrySecrets>) -> Result<(), Refusal> {
    let Some(names) = names else {
        return Ok(());
    };
    for name in [&names.username, &names.password] {
        if !is_variable_name(name) {
            return Err((
                "registry-variables",
                format!(
                    "`{}` is not a CI/CD variable name; use letters, digits and `_`, not starting with a digit",
                    name.escape_debug()
                ),
            ));
        }
    }
    Ok(())
}

/// The keys of earlier releases that named one archive for every job: the jobs now install
/// what the GitHub workflows install, from the `install` table, for the job's own platform.
fn check_install(raw: &RawGitlab) -> Result<(), Refusal> {
    if raw.install_sha256.is_some() {
        return Err((
            "install-sha256",
            "is replaced by the per-platform [install.sha256] table the GitHub workflows use; run `cargo gitops pins update` to write it, then remove this key".to_owned(),
        ));
    }
    if raw.install_url.is_some() {
        return Err((
            "install-url",
            "is replaced by install.base-url (releases at {base}/cargo-gitops-v{version}/, as the release workflow publishes them); move the mirror's address there and remove this key".to_owned(),
        ));
    }
    Ok(())
}

fn check_stage(stage: &str) -> Result<(), Refusal> {
    if stage.is_empty()
        || !stage
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err((
            "stage",
            format!(
                "`{}` is not a plain stage name; use letters, digits and `_ . -`",
                stage.escape_debug()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packages_table_overrides_the_shared_one_key_by_key() {
        let package = RawGitlab {
            image: Some("rust@sha256:1".into()),
            ..RawGitlab::default()
        };
        let shared = RawGitlab {
            image: Some("docker@sha256:2".into()),
            stage: Some("release".into()),
            ..RawGitlab::default()
        };
        let merged = package.or(shared);
        assert_eq!(merged.image.as_deref(), Some("rust@sha256:1"));
        assert_eq!(merged.stage.as_deref(), Some("release"));
        assert!(merged.services.is_none());
    }

    #[test]
    fn pinned_images() {
        let digest = "0".repeat(64);
        for good in [
            DEFAULT_IMAGE.to_owned(),
            DEFAULT_DIND.to_owned(),
            format!("registry.gitlab.com:5050/group/sub/img:1.0@sha256:{digest}"),
            format!("rust@sha256:{digest}"),
        ] {
            assert!(is_pinned_image(&good), "{good}");
        }
        for bad in [
            "docker:27".to_owned(),
            format!("docker@sha256:{}", "0".repeat(63)),
            format!("Docker@sha256:{digest}"),
            format!("docker@sha256:{digest} "),
            format!("docker@sha256:{digest}\nx: y"),
            format!("$IMAGE@sha256:{digest}"),
        ] {
            assert!(!is_pinned_image(&bad), "{bad:?}");
        }
    }
}
