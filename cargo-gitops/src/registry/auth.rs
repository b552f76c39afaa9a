//! Authentication, the transport's layer for it: the scopes a request needs, the challenges a
//! registry answers 401 with (basic, or bearer with a token realm), the answer to one (a token
//! fetched within the same operation and budget), and the tokens earned, one per scope, kept
//! for this registry alone. Which origin a credential or token may go to is decided in
//! `transport::Operation::follow`; where credentials come from is `credentials`'.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Deserialize;
use ureq::http::Response;

use crate::error::{Error, quote_external};
use crate::registry::credentials::Credential;
use crate::registry::reference::Origin;
use crate::registry::transport::{
    Body, Failure, Hop, Method, Operation, Request, header, retry_after,
};

/// The most of a token service's answer that is read.
const MAX_TOKEN_BODY: u64 = 1024 * 1024;

/// The access a request needs, for bearer tokens: `repository:NAME:pull[,push]` (and a second
/// repository for cross-repository mounts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(String);

impl Scope {
    pub fn pull(name: &str) -> Scope {
        Scope(format!("repository:{name}:pull"))
    }

    pub fn push(name: &str) -> Scope {
        Scope(format!("repository:{name}:pull,push"))
    }

    /// Pull, push and delete: what undoing a tag needs (registries that check actions ask
    /// for `delete` to remove one).
    pub fn delete(name: &str) -> Scope {
        Scope(format!("repository:{name}:pull,push,delete"))
    }

    pub fn mount(target: &str, source: &str) -> Scope {
        Scope(format!(
            "repository:{target}:pull,push repository:{source}:pull"
        ))
    }

    /// The scope's parts, one `scope` parameter each in a token request.
    fn parts(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ')
    }
}

/// What a registry's `WWW-Authenticate` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
    /// A bearer challenge that names no realm: nowhere to get a token.
    BearerWithoutRealm,
    /// No challenge, or a scheme this client does not speak.
    Unsupported,
}

impl Challenge {
    pub(crate) fn parse(header: Option<&str>) -> Challenge {
        let header = header.unwrap_or("").trim();
        let (kind, params) = header.split_once(' ').unwrap_or((header, ""));
        if kind.eq_ignore_ascii_case("basic") {
            return Challenge::Basic;
        }
        if !kind.eq_ignore_ascii_case("bearer") {
            return Challenge::Unsupported;
        }
        let mut params = parse_params(params);
        match params.remove("realm") {
            Some(realm) => Challenge::Bearer {
                realm,
                service: params.remove("service"),
            },
            None => Challenge::BearerWithoutRealm,
        }
    }
}

/// `key="value", key=value` pairs of a challenge.
fn parse_params(params: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        map.insert(key, value.to_owned());
        rest = remaining.trim_start_matches([',', ' ']);
    }
    map
}

/// The URL of a token request: the realm with `scope` (each part) and `service` added.
pub(crate) fn token_url(realm: &str, service: Option<&str>, scope: &Scope) -> String {
    let mut url = realm.to_owned();
    let mut separator = if realm.contains('?') { '&' } else { '?' };
    for part in scope.parts() {
        url.push(separator);
        url.push_str("scope=");
        url.push_str(&percent_encode(part));
        separator = '&';
    }
    if let Some(service) = service {
        url.push(separator);
        url.push_str("service=");
        url.push_str(&percent_encode(service));
    }
    url
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The token in a token service's JSON answer (`token`, or OAuth's `access_token`).
pub(crate) fn token_from_json(bytes: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
    }
    let body: TokenResponse = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "the token service answered with something that is not a token: {}",
            quote_external(&e.to_string())
        )
    })?;
    body.token
        .or(body.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the token service answered without a token".to_owned())
}

/// What one client has learnt: whether the registry takes basic credentials, and the bearer
/// token of each scope.
#[derive(Default)]
pub(crate) struct Auth {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    basic: bool,
    tokens: HashMap<String, String>,
}

impl Auth {
    /// The `Authorization` of a request for `scope` to the registry's own origin.
    pub(crate) fn header_for(
        &self,
        scope: &Scope,
        credential: Option<&Credential>,
    ) -> Option<String> {
        let state = self.state.lock().expect("auth state lock");
        if let Some(token) = state.tokens.get(&scope.0) {
            return Some(format!("Bearer {token}"));
        }
        if state.basic {
            return credential.map(Credential::basic_header);
        }
        None
    }

    pub(crate) fn use_basic(&self) {
        self.state.lock().expect("auth state lock").basic = true;
    }

    pub(crate) fn store_token(&self, scope: &Scope, token: String) {
        let mut state = self.state.lock().expect("auth state lock");
        state.tokens.insert(scope.0.clone(), token);
    }
}

impl Operation<'_> {
    /// Answers a 401 from the registry: basic credentials from now on, or a bearer token for
    /// the request's scope.
    pub(crate) fn answer_challenge(
        &mut self,
        response: &Response<ureq::Body>,
        request: &Request<'_>,
    ) -> Result<(), Failure> {
        let transport = self.transport;
        let not_logged_in = || Error::NotLoggedIn {
            registry: transport.registry.clone(),
        };
        match Challenge::parse(header(response, "www-authenticate").as_deref()) {
            Challenge::Basic if transport.credential.is_some() => {
                transport.auth.use_basic();
                Ok(())
            }
            Challenge::Basic | Challenge::Unsupported => Err(not_logged_in().into()),
            Challenge::BearerWithoutRealm => Err(transport
                .error(
                    request.step,
                    "the registry asked for a bearer token but named no realm",
                )
                .into()),
            Challenge::Bearer { realm, service } => {
                let token = self.fetch_token(&realm, service.as_deref(), request)?;
                transport.auth.store_token(request.scope, token);
                Ok(())
            }
        }
    }

    /// A bearer token for the request's scope from `realm`. The credential goes with it only
    /// to the realm's own origin, which `follow` allows only over HTTPS, to loopback, or to a
    /// host listed insecure.
    fn fetch_token(
        &mut self,
        realm: &str,
        service: Option<&str>,
        request: &Request<'_>,
    ) -> Result<String, Failure> {
        let transport = self.transport;
        let url = token_url(realm, service, request.scope);
        let realm_origin = Origin::of_url(&url).ok_or_else(|| {
            transport.error(
                "authenticate",
                format!(
                    "the registry named the token service `{}`, which is not an http or https URL",
                    quote_external(realm)
                ),
            )
        })?;
        let basic = transport.credential.as_ref().map(Credential::basic_header);
        let credentials = |origin: &Origin| basic.clone().filter(|_| *origin == realm_origin);
        let token_request = Request {
            method: Method::Get,
            url: url.clone(),
            accept: Some("application/json"),
            content_type: None,
            body: Body::Empty,
            scope: request.scope,
            step: "authenticate",
        };
        let hop = Hop {
            method: Method::Get,
            url,
            body: Body::Empty,
        };
        let (mut response, _) = self.follow(hop, &token_request, &credentials)?;
        match response.status().as_u16() {
            200 => {}
            429 | 500..=599 => {
                return Err(Failure::Retry {
                    wait: retry_after(&response),
                    error: transport.failure(response, "authenticate"),
                });
            }
            _ => return Err(transport.failure(response, "authenticate").into()),
        }
        let limit = (
            MAX_TOKEN_BODY,
            "1 MiB, the most this client reads of a token",
        );
        let bytes = self.read_body(
            &mut response,
            limit,
            "the token service's answer",
            "authenticate",
        )?;
        token_from_json(&bytes).map_err(|message| transport.error("authenticate", message).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_parameters() {
        let challenge = Challenge::parse(Some(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#,
        ));
        assert_eq!(
            challenge,
            Challenge::Bearer {
                realm: "https://ghcr.io/token".to_owned(),
                service: Some("ghcr.io".to_owned()),
            }
        );
        assert_eq!(
            Challenge::parse(Some(r#"Basic realm="test""#)),
            Challenge::Basic
        );
        assert_eq!(
            Challenge::parse(Some(r#"Bearer service="x""#)),
            Challenge::BearerWithoutRealm
        );
        assert_eq!(Challenge::parse(None), Challenge::Unsupported);
        assert_eq!(Challenge::parse(Some("Negotiate")), Challenge::Unsupported);
    }

    #[test]
    fn token_urls_encode_every_scope() {
        let url = token_url(
            "https://auth.example/token?x=1",
            Some("reg.example"),
            &Scope::mount("app", "app-staging"),
        );
        assert_eq!(
            url,
            "https://auth.example/token?x=1&scope=repository%3Aapp%3Apull%2Cpush&scope=repository%3Aapp-staging%3Apull&service=reg.example"
        );
    }

    #[test]
    fn tokens_are_kept_per_scope() {
        let auth = Auth::default();
        let credential = Credential::new("ci", "secret");
        assert_eq!(auth.header_for(&Scope::pull("a"), Some(&credential)), None);
        auth.store_token(&Scope::pull("a"), "t1".to_owned());
        assert_eq!(
            auth.header_for(&Scope::pull("a"), Some(&credential))
                .as_deref(),
            Some("Bearer t1")
        );
        assert_eq!(auth.header_for(&Scope::push("a"), Some(&credential)), None);
        auth.use_basic();
        assert!(
            auth.header_for(&Scope::push("a"), Some(&credential))
                .is_some_and(|h| h.starts_with("Basic "))
        );
        assert!(token_from_json(br#"{"token":""}"#).is_err());
        assert_eq!(token_from_json(br#"{"access_token":"x"}"#).unwrap(), "x");
        let err = token_from_json(b"<html>\n::warning::x").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
    }
}
