//! Registry credentials: from `--registry-user`/`--registry-password-stdin`, the
//! `GITOPS_REGISTRY_USER`/`GITOPS_REGISTRY_PASSWORD` variables, Docker's `config.json` (with its
//! `credsStore` and `credHelpers`) or podman's `auth.json`, in that order. A credential never
//! prints itself: its `Debug` is redacted and it has no `Display`. Where a credential may be
//! sent (the registry's own origin, its token service) is the transport's rule, not this
//! module's; this module imports nothing else of `registry`.

use std::fmt;

use base64::Engine as _;
use docker_credential::{CredentialRetrievalError, DockerCredential};

use crate::error::Error;

/// A stored-login reader of `docker_credential` (Docker's or podman's file).
type CredentialLookup = fn(&str) -> Result<DockerCredential, CredentialRetrievalError>;

/// A user name and a secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    user: String,
    secret: String,
    /// The one registry this credential may be sent to; `None` for a stored login, which is
    /// already looked up by registry.
    registry: Option<String>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential {{ user: {:?}, secret: \"***\" }}", self.user)
    }
}

impl Credential {
    pub fn new(user: impl Into<String>, secret: impl Into<String>) -> Credential {
        Credential {
            user: user.into(),
            secret: secret.into(),
            registry: None,
        }
    }

    /// Restricts a credential to one registry, so that it is never sent to another (a base
    /// image's registry, the source of a cross-registry copy).
    pub fn only_for(mut self, registry: &str) -> Credential {
        self.registry = Some(registry.to_owned());
        self
    }

    /// Whether this credential may be sent to `registry`.
    pub fn applies_to(&self, registry: &str) -> bool {
        self.registry.as_deref().is_none_or(|only| only == registry)
    }

    pub(crate) fn basic_header(&self) -> String {
        basic_auth_value(&self.user, &self.secret)
    }
}

/// Base64 of `user:password` for HTTP basic authentication.
fn basic_auth_value(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// The credential to use for `registry`: `explicit` (flags or variables) first, then Docker's
/// and podman's stored logins. `None` means anonymous.
pub fn for_registry(
    registry: &str,
    explicit: Option<&Credential>,
) -> Result<Option<Credential>, Error> {
    if let Some(credential) =
        explicit.filter(|c| c.registry.as_deref().is_none_or(|r| r == registry))
    {
        return Ok(Some(credential.clone()));
    }
    let servers: Vec<String> = if registry == "docker.io" {
        vec![
            "https://index.docker.io/v1/".to_owned(),
            "docker.io".to_owned(),
        ]
    } else {
        vec![registry.to_owned(), format!("https://{registry}")]
    };
    let lookups: [CredentialLookup; 2] = [
        docker_credential::get_credential,
        docker_credential::get_podman_credential,
    ];
    for lookup in lookups {
        for server in &servers {
            match lookup(server) {
                Ok(DockerCredential::UsernamePassword(user, secret)) => {
                    return Ok(Some(Credential::new(user, secret)));
                }
                // Docker's convention for identity tokens.
                Ok(DockerCredential::IdentityToken(token)) => {
                    return Ok(Some(Credential::new("<token>", token)));
                }
                Err(
                    CredentialRetrievalError::NoCredentialConfigured
                    | CredentialRetrievalError::ConfigNotFound
                    | CredentialRetrievalError::ConfigReadError,
                ) => {}
                Err(CredentialRetrievalError::HelperFailure { helper, .. }) => {
                    // The helper's own output may hold secrets, so it is not shown.
                    return Err(Error::CredentialHelper {
                        registry: registry.to_owned(),
                        detail: format!("credential helper `{helper}` failed"),
                    });
                }
                Err(other) => {
                    return Err(Error::CredentialHelper {
                        registry: registry.to_owned(),
                        detail: other.to_string().to_lowercase(),
                    });
                }
            }
        }
    }
    Ok(None)
}

/// The explicit credential from flags or variables, if any. `password_stdin` is the password
/// already read from standard input.
pub fn explicit(
    user: Option<&str>,
    password_stdin: Option<String>,
) -> Result<Option<Credential>, Error> {
    let env_user = std::env::var("GITOPS_REGISTRY_USER")
        .ok()
        .filter(|v| !v.is_empty());
    let env_password = std::env::var("GITOPS_REGISTRY_PASSWORD")
        .ok()
        .filter(|v| !v.is_empty());
    let user = user.map(str::to_owned).or(env_user);
    let password = password_stdin.or(env_password);
    match (user, password) {
        (Some(user), Some(password)) => Ok(Some(Credential::new(user, password))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::usage(
            "a registry user was given without a password; add --registry-password-stdin or set GITOPS_REGISTRY_PASSWORD",
        )),
        (None, Some(_)) => Err(Error::usage(
            "a registry password was given without a user; add --registry-user or set GITOPS_REGISTRY_USER",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_for_one_registry_is_never_offered_to_another() {
        let credential = Credential::new("ci", "hunter2").only_for("ghcr.io");
        assert!(credential.applies_to("ghcr.io"));
        assert!(!credential.applies_to("gcr.io"));
        assert!(!credential.applies_to("127.0.0.1:5000"));
        let found = for_registry("ghcr.io", Some(&credential)).unwrap();
        assert_eq!(found, Some(credential));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let credential = Credential::new("ci", "hunter2");
        let shown = format!("{credential:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ci"));
    }
}
