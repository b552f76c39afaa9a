//! Where images live: a repository in a registry (`ghcr.io/owner/app`), read as the docker CLI
//! reads it; which registries are spoken to in plain HTTP; the API host a registry name stands
//! for; and the origin (scheme, host, port) of a URL, by which the transport decides where
//! credentials may go. It sends nothing: requests are `transport`'s, operations `client`'s.

use std::fmt;

use crate::error::{Error, quote_external};

/// An image repository in a registry, without tag: `ghcr.io/au2001/app`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    /// Host, with port when given (`127.0.0.1:5000`).
    pub registry: String,
    /// Path inside the registry (`au2001/app`).
    pub name: String,
}

impl Repository {
    /// Reads `registry/name`; a first component without `.` or `:` (and not `localhost`) means
    /// Docker Hub, as the docker CLI reads it.
    pub fn parse(reference: &str) -> Result<Repository, Error> {
        let bad = || {
            Error::usage(format!(
                "`{reference}` is not an image repository; expect REGISTRY/NAME such as ghcr.io/owner/app"
            ))
        };
        if reference.is_empty() || reference.contains(['@', ' ']) {
            return Err(bad());
        }
        let (first, rest) = match reference.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_owned(), rest.to_owned())
            }
            _ if reference.contains(':') => return Err(bad()),
            _ if reference.contains('/') => ("docker.io".to_owned(), reference.to_owned()),
            _ => ("docker.io".to_owned(), format!("library/{reference}")),
        };
        if rest.is_empty() || rest.split('/').any(str::is_empty) {
            return Err(bad());
        }
        Ok(Repository {
            registry: first.to_lowercase(),
            name: rest.to_lowercase(),
        })
    }

    /// `registry/name:tag`, as other tools take it.
    pub fn with_tag(&self, tag: &str) -> String {
        format!("{self}:{tag}")
    }

    /// `registry/name@sha256:…`.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{self}@{digest}")
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// Whether a registry (`host` or `host:port`) is spoken to in plain HTTP: loopback, as Docker
/// treats it, or listed with `--insecure-registry`.
pub fn is_plain_http(registry: &str, insecure: &[String]) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    is_loopback(host) || insecure.iter().any(|i| i == registry || i == host)
}

/// `localhost`, `127.0.0.0/8` or `::1` (brackets allowed).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The API host for a registry name: Docker Hub's is not `docker.io`.
pub(crate) fn api_host(registry: &str) -> &str {
    if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// Scheme, host and port of a URL, the port made explicit: two URLs may share credentials
/// only when their origins are equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Lowercase; an IPv6 address keeps its brackets.
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http://` or `https://` URL; `None` for anything else.
    pub fn of_url(url: &str) -> Option<Origin> {
        let uri: ureq::http::Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let host = uri.host().filter(|h| !h.is_empty())?.to_ascii_lowercase();
        Some(Origin {
            port: uri.port_u16().unwrap_or(default_port),
            scheme,
            host,
        })
    }

    /// The origin of a registry's API: plain HTTP when `is_plain_http` says so, else HTTPS.
    pub fn of_registry(registry: &str, insecure: &[String]) -> Origin {
        let scheme = if is_plain_http(registry, insecure) {
            "http"
        } else {
            "https"
        };
        Origin::of_url(&format!("{scheme}://{}", api_host(registry))).unwrap_or_else(|| Origin {
            scheme: scheme.to_owned(),
            host: api_host(registry).to_ascii_lowercase(),
            port: if scheme == "http" { 80 } else { 443 },
        })
    }

    /// `scheme://host[:port]`, the port left out when it is the scheme's default.
    pub fn base_url(&self) -> String {
        let default = (self.scheme == "http" && self.port == 80)
            || (self.scheme == "https" && self.port == 443);
        if default {
            format!("{}://{}", self.scheme, self.host)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }

    /// Whether this origin may be spoken to at all: HTTPS, or plain HTTP to a loopback host or
    /// one listed as insecure. Nothing, credentials least of all, goes over plain HTTP to
    /// anything else.
    pub fn is_trusted_transport(&self, insecure: &[String]) -> bool {
        self.scheme == "https" || is_plain_http(&format!("{}:{}", self.host, self.port), insecure)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_url())
    }
}

/// `location` (an absolute URL, `//host/path`, `/path`, or a path relative to `current`'s)
/// as an absolute URL, as a `Location` or `Link` header means it. Userinfo
/// (`user:password@`) in it is dropped: the HTTP client would send it as `Basic`
/// credentials, and what a registry names is never a credential of ours to send.
pub(crate) fn join_url(current: &str, location: &str) -> Result<String, String> {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(without_userinfo(location));
    }
    let origin = Origin::of_url(current).ok_or_else(|| {
        format!(
            "cannot resolve `{}` against `{}`",
            quote_external(location),
            quote_external(current)
        )
    })?;
    if location.starts_with("//") {
        return Ok(without_userinfo(&format!("{}:{location}", origin.scheme)));
    }
    if location.starts_with('/') {
        return Ok(format!("{}{location}", origin.base_url()));
    }
    if lower.contains("://") {
        return Err(format!(
            "`{}` is neither an http nor an https URL",
            quote_external(location)
        ));
    }
    let path = current
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let dir = &path[..=path.rfind('/').unwrap_or(0)];
    Ok(format!("{}{dir}{location}", origin.base_url()))
}

/// An absolute `scheme://[userinfo@]host…` URL without its userinfo. The authority ends at
/// the first `/`, `?` or `#`; its userinfo is everything before its last `@`.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        let r = Repository::parse("ghcr.io/Au2001/App").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.name.as_str()),
            ("ghcr.io", "au2001/app")
        );
        let r = Repository::parse("127.0.0.1:5000/demo").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.name.as_str()),
            ("127.0.0.1:5000", "demo")
        );
        let r = Repository::parse("nginx").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.name.as_str()),
            ("docker.io", "library/nginx")
        );
        assert!(Repository::parse("ghcr.io/").is_err());
        assert!(Repository::parse("a b").is_err());
    }

    #[test]
    fn plain_http_only_for_loopback_and_listed() {
        assert!(is_plain_http("localhost:5000", &[]));
        assert!(is_plain_http("127.0.0.1:5000", &[]));
        assert!(is_plain_http("127.5.6.7", &[]));
        assert!(is_plain_http("[::1]:5000", &[]));
        assert!(!is_plain_http("ghcr.io", &[]));
        assert!(!is_plain_http("10.0.0.1:5000", &[]));
        assert!(is_plain_http(
            "registry.lan:5000",
            &["registry.lan".to_owned()]
        ));
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let registry = Origin::of_registry("127.0.0.1:5000", &[]);
        assert_eq!(registry.base_url(), "http://127.0.0.1:5000");
        assert_eq!(
            Origin::of_url("http://127.0.0.1:5000/v2/x?y=1"),
            Some(registry.clone())
        );
        assert_ne!(
            Origin::of_url("http://127.0.0.1:5001/v2/x"),
            Some(registry.clone())
        );
        assert_ne!(
            Origin::of_url("http://127.0.0.2:5000/v2/x"),
            Some(registry.clone())
        );
        assert_ne!(
            Origin::of_url("https://127.0.0.1:5000/v2/x"),
            Some(registry)
        );
        let hub = Origin::of_registry("docker.io", &[]);
        assert_eq!(hub.base_url(), "https://registry-1.docker.io");
        assert_eq!(
            Origin::of_url("HTTPS://Registry-1.Docker.io:443/v2/"),
            Some(hub)
        );
        assert_eq!(Origin::of_url("ftp://host/x"), None);
        assert_eq!(Origin::of_url("/v2/x"), None);
        let v6 = Origin::of_url("http://[::1]:8080/").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[::1]", 8080));
        assert!(v6.is_trusted_transport(&[]));
    }

    #[test]
    fn plain_http_is_trusted_only_to_loopback_and_listed_hosts() {
        let trusted = |url: &str, insecure: &[&str]| {
            let insecure: Vec<String> = insecure.iter().map(|s| (*s).to_owned()).collect();
            Origin::of_url(url).unwrap().is_trusted_transport(&insecure)
        };
        assert!(trusted("https://auth.example/token", &[]));
        assert!(trusted("http://127.0.0.2:9/token", &[]));
        assert!(trusted("http://localhost/token", &[]));
        assert!(!trusted("http://192.0.2.1/token", &[]));
        assert!(!trusted("http://auth.example/token", &[]));
        assert!(trusted(
            "http://registry.lan:5000/x",
            &["registry.lan:5000"]
        ));
        assert!(trusted("http://registry.lan/x", &["registry.lan"]));
        assert!(!trusted("http://registry.lan:5000/x", &["other.lan"]));
    }

    #[test]
    fn locations_resolve_against_the_current_url() {
        let current = "http://127.0.0.1:5000/v2/app/blobs/uploads/?x=1";
        assert_eq!(
            join_url(current, "/v2/app/blobs/uploads/abc").unwrap(),
            "http://127.0.0.1:5000/v2/app/blobs/uploads/abc"
        );
        assert_eq!(
            join_url(current, "https://cdn.example/b?sig=1").unwrap(),
            "https://cdn.example/b?sig=1"
        );
        assert_eq!(
            join_url(current, "//127.0.0.2:9/up").unwrap(),
            "http://127.0.0.2:9/up"
        );
        assert_eq!(
            join_url(current, "abc?_state=1").unwrap(),
            "http://127.0.0.1:5000/v2/app/blobs/uploads/abc?_state=1"
        );
        assert!(join_url(current, "file:///etc/passwd").is_err());
    }

    #[test]
    fn userinfo_in_a_location_is_dropped() {
        let current = "http://127.0.0.1:5000/v2/app/blobs/uploads/";
        for (location, joined) in [
            (
                "http://user:secret@127.0.0.1:5000/v2/app/blobs/uploads/abc?x=@y",
                "http://127.0.0.1:5000/v2/app/blobs/uploads/abc?x=@y",
            ),
            ("HTTPS://a@b:c@cdn.example/b", "HTTPS://cdn.example/b"),
            ("//user:secret@127.0.0.2:9/up", "http://127.0.0.2:9/up"),
            ("/v2/x@y", "http://127.0.0.1:5000/v2/x@y"),
        ] {
            assert_eq!(join_url(current, location).unwrap(), joined, "{location}");
        }
    }
}
