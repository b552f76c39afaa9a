//! Signing and attestation in the generated GitHub pipeline, from `sign` and
//! `github-attestation`:
//!
//! - `sign = "key"`: `cargo gitops build` signs; the build step gets the key's PEM from the
//!   repository secret of the name `signing-key-env` gives (the variable it reads), through
//!   `env:`. Each environment's workflow passes that one secret by name. No permission.
//! - `sign = "keyless"`: after the build, cosign (installed by its official installer action,
//!   at a pinned release) signs the digest with the job's OIDC token: `id-token: write`.
//! - `github-attestation = true`: after a build, `actions/attest-build-provenance` attests the
//!   image's provenance and pushes the attestation to the registry beside it:
//!   `attestations: write` and `id-token: write`.
//!
//! Nothing changes in the workflows when none of these is configured.

use serde::Serialize;

use super::{grammar, logins};
use crate::config::{Config, SignMode};
use crate::error::Error;

/// The cosign release the installer action installs and verifies (against the signature of
/// the release, with the cosign it bootstraps from its own pinned checksums).
pub const COSIGN_RELEASE: &str = "v3.1.3";

/// The variables the build step sets of its own, which the key's variable may not replace.
const BUILD_STEP_VARIABLES: [&str; 3] =
    ["GITOPS_INPUT_REF", "GITOPS_ENVIRONMENT", "GITOPS_PACKAGE"];

/// What the pipeline does to sign and attest, ready for the templates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Signing {
    /// `sign = "key"`: the secret, and the build step's variable, that holds the key's PEM.
    pub key_secret: Option<String>,
    /// `sign = "keyless"`: cosign signs after the build, with the job's OIDC token.
    pub keyless: bool,
    /// The cosign release the installer action installs.
    pub cosign_release: &'static str,
    /// `github-attestation = true`: a build-provenance attestation of each image built.
    pub attestation: bool,
}

impl Signing {
    /// Whether the job exchanges its OIDC token (with Fulcio, for a signing certificate).
    pub fn id_token(&self) -> bool {
        self.keyless || self.attestation
    }
}

/// The signing of the pipeline for `config`, every name that reaches YAML checked.
pub fn plan(config: &Config, logins: &logins::Logins) -> Result<Signing, Error> {
    let key_secret = match config.build.sign {
        SignMode::Key => {
            let name = config.build.signing_key_env();
            let key = "signing-key-env";
            grammar::secret(key, name)?;
            let upper = name.to_ascii_uppercase();
            if BUILD_STEP_VARIABLES.contains(&upper.as_str()) {
                return Err(grammar::refuse(
                    key,
                    name,
                    "a variable the build step does not set itself (GITOPS_INPUT_REF, GITOPS_ENVIRONMENT and GITOPS_PACKAGE are taken)",
                ));
            }
            // GitHub's secret names ignore case: one secret cannot be a login and the key.
            if logins
                .secrets
                .iter()
                .any(|s| s.to_ascii_uppercase() == upper)
            {
                return Err(grammar::refuse(
                    key,
                    name,
                    "a secret of its own, not one that a registry login also names",
                ));
            }
            Some(name.to_owned())
        }
        SignMode::None | SignMode::Keyless => None,
    };
    Ok(Signing {
        key_secret,
        keyless: config.build.sign == SignMode::Keyless,
        cosign_release: COSIGN_RELEASE,
        attestation: config.workflows.github_attestation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sign: SignMode, key_env: Option<&str>) -> Config {
        let mut config = Config::defaults();
        config.build.sign = sign;
        config.build.signing_key_env = key_env.map(str::to_owned);
        config
    }

    #[test]
    fn the_key_secret_is_the_variable_the_build_reads() {
        let logins = logins::Logins::default();
        let plan = plan(&config(SignMode::Key, None), &logins).unwrap();
        assert_eq!(plan.key_secret.as_deref(), Some("GITOPS_SIGNING_KEY"));
        assert!(!plan.id_token());
        let plan = plan_of(SignMode::Key, Some("RELEASE_KEY"), &logins).unwrap();
        assert_eq!(plan.key_secret.as_deref(), Some("RELEASE_KEY"));
        let plan = plan_of(SignMode::Keyless, None, &logins).unwrap();
        assert_eq!((plan.key_secret, plan.keyless), (None, true));
    }

    fn plan_of(
        sign: SignMode,
        key_env: Option<&str>,
        logins: &logins::Logins,
    ) -> Result<Signing, Error> {
        plan(&config(sign, key_env), logins)
    }

    #[test]
    fn a_key_secret_that_would_clash_is_refused() {
        let logins = logins::Logins {
            secrets: vec!["REGISTRY_PASSWORD".to_owned()],
            ..logins::Logins::default()
        };
        for name in [
            "GITHUB_TOKEN",
            "gitops_environment",
            "registry_password",
            "A B",
        ] {
            let err = plan_of(SignMode::Key, Some(name), &logins)
                .unwrap_err()
                .to_string();
            assert!(err.contains("signing-key-env"), "{name}: {err}");
        }
    }
}
