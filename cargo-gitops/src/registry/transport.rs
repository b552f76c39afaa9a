//! The one way this crate speaks HTTP to a registry. Every request of an operation goes
//! through one `Operation`, which holds the operation's one retry budget (`attempts` tries
//! and one deadline for all of it, waits and body reads included), answers authentication
//! challenges (basic, or a bearer token from the realm the challenge names), and follows
//! redirects itself, deciding per hop by origin where credentials go: only to the registry's
//! own origin (scheme, host and port) and to its token realm, and never over plain HTTP to a
//! host that is neither loopback nor listed insecure. It knows nothing of manifests or blobs
//! (`client`'s) nor of where credentials come from (`credentials`').

use std::io::{Read as _, Seek as _};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ureq::http::Response;

use crate::error::{Error, quote_external};
use crate::registry::auth::Auth;
pub use crate::registry::auth::Scope;
use crate::registry::credentials::Credential;
use crate::registry::options::backoff;
use crate::registry::options::{ClientOptions, RetryPolicy};
use crate::registry::reference::{Origin, join_url};

/// Redirects followed for one request before giving up.
const MAX_REDIRECTS: u32 = 5;

/// The most of an error answer read for its message.
const MAX_ERROR_BODY: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Head,
    Get,
    Put,
    Post,
    Delete,
}

/// What a request sends. Every kind can be sent again, for a retry or a redirect.
#[derive(Clone, Copy)]
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A file read from its start, of this many bytes.
    File(&'a std::fs::File, u64),
}

/// One request to the registry: a path on it (`/v2/…`) or an absolute URL it gave.
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: String,
    pub accept: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: Body<'a>,
    pub scope: &'a Scope,
    /// What the request is for, in errors: `lookup`, `read manifest`, `upload blob`.
    pub step: &'a str,
}

/// How one try of an operation failed.
pub(crate) enum Failure {
    /// Another try may succeed; `wait` is what the registry asked for (`Retry-After`).
    Retry {
        error: Error,
        wait: Option<Duration>,
    },
    /// Trying again would fail the same way.
    Fail(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Fail(error)
    }
}

/// One registry's HTTP side: the agent, the credential, what authentication it learnt.
pub(crate) struct Transport {
    pub(crate) registry: String,
    origin: Origin,
    agent: ureq::Agent,
    pub(crate) credential: Option<Credential>,
    policy: RetryPolicy,
    insecure: Vec<String>,
    pub(crate) auth: Auth,
    /// Every request sent, for `--verbose` and the benchmarks.
    requests: AtomicU32,
}

impl Transport {
    pub(crate) fn new(
        registry: &str,
        credential: Option<Credential>,
        options: &ClientOptions,
    ) -> Transport {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            // Redirects are followed by `Operation::follow`, which decides credentials by origin.
            .max_redirects(0)
            .user_agent(concat!("cargo-gitops/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Transport {
            registry: registry.to_owned(),
            origin: Origin::of_registry(registry, &options.insecure_registries),
            agent,
            credential: credential.filter(|c| c.applies_to(registry)),
            policy: options.retry,
            insecure: options.insecure_registries.clone(),
            auth: Auth::default(),
            requests: AtomicU32::new(0),
        }
    }

    pub(crate) fn request_count(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `/v2/…` on the registry, or an absolute URL as given.
    pub(crate) fn absolute(&self, url: &str) -> Result<String, Error> {
        join_url(&self.origin.base_url(), url).map_err(|message| self.error("request", message))
    }

    /// Starts an operation with the policy's budget, plus `extra` (for blob transfers).
    pub(crate) fn operation(&self, step: &'static str, extra: Duration) -> Operation<'_> {
        let started = Instant::now();
        let budget = self.policy.budget.saturating_add(extra);
        Operation {
            transport: self,
            step,
            started,
            budget,
            deadline: started + budget,
            failures: 0,
        }
    }

    pub(crate) fn error(&self, step: &str, message: impl Into<String>) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            step: step.to_owned(),
            message: message.into(),
        }
    }

    /// An error from a registry answer, with its error code and message when it sent them
    /// (quoted: they are the registry's words).
    pub(crate) fn failure(&self, mut response: Response<ureq::Body>, step: &str) -> Error {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<RegistryError>,
        }
        #[derive(serde::Deserialize)]
        struct RegistryError {
            code: String,
            #[serde(default)]
            message: String,
        }
        let status = response.status().as_u16();
        if matches!(status, 401 | 403) {
            return Error::NotLoggedIn {
                registry: self.registry.clone(),
            };
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ERROR_BODY)
            .read_to_vec()
            .unwrap_or_default();
        let detail = serde_json::from_slice::<Errors>(&body)
            .ok()
            .and_then(|e| e.errors.into_iter().next())
            .map(|e| {
                let text: String = format!("{} {}", e.code, e.message)
                    .chars()
                    .take(300)
                    .collect();
                format!(": {}", quote_external(text.trim_end()))
            })
            .unwrap_or_default();
        self.error(step, format!("HTTP {status}{detail}"))
    }

    fn unreachable(&self, err: ureq::Error, step: &str) -> Error {
        Error::RegistryUnreachable {
            registry: self.registry.clone(),
            step: step.to_owned(),
            source: Box::new(err),
        }
    }
}

/// The hops of one request: where it goes now, and how.
pub(crate) struct Hop<'a> {
    pub method: Method,
    pub url: String,
    pub body: Body<'a>,
}

/// One operation against the registry, with its one budget. Every request it sends, every
/// retry and every wait is counted against the same attempts and the same deadline.
pub(crate) struct Operation<'t> {
    pub(crate) transport: &'t Transport,
    step: &'static str,
    started: Instant,
    budget: Duration,
    deadline: Instant,
    failures: u32,
}

impl Operation<'_> {
    /// The retry loop: runs `attempt` until it succeeds, fails for good, or the budget is
    /// spent. `attempt` sends its requests with `exchange`, which never retries by itself.
    pub(crate) fn run<T>(
        &mut self,
        mut attempt: impl FnMut(&mut Self) -> Result<T, Failure>,
    ) -> Result<T, Error> {
        loop {
            match attempt(self) {
                Ok(value) => return Ok(value),
                Err(Failure::Fail(error)) => return Err(error),
                Err(Failure::Retry { error, wait }) => {
                    self.failures += 1;
                    if self.failures >= self.transport.policy.attempts {
                        return Err(error);
                    }
                    let policy = &self.transport.policy;
                    let wait = wait.unwrap_or_else(|| backoff(policy.base_delay, self.failures));
                    if Instant::now() + wait > self.deadline {
                        return Err(self.gave_up(self.failures, ""));
                    }
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// `run` of a single request.
    pub(crate) fn send(&mut self, request: &Request<'_>) -> Result<Response<ureq::Body>, Error> {
        self.run(|op| op.exchange(request))
    }

    /// One try of a request to the registry: answers a 401 challenge once (basic, or a token
    /// for the request's scope), follows redirects, and sorts the answer: 429 and 5xx are
    /// worth another try, 401/403 mean not logged in, anything else is the caller's to read.
    pub(crate) fn exchange(
        &mut self,
        request: &Request<'_>,
    ) -> Result<Response<ureq::Body>, Failure> {
        let transport = self.transport;
        let own = &transport.origin;
        let credentials = |origin: &Origin| {
            (origin == own)
                .then(|| (transport.auth).header_for(request.scope, transport.credential.as_ref()))
                .flatten()
        };
        let mut answered = false;
        loop {
            let hop = Hop {
                method: request.method,
                url: transport.absolute(&request.url)?,
                body: request.body,
            };
            let (response, origin) = self.follow(hop, request, &credentials)?;
            let status = response.status().as_u16();
            match status {
                401 if origin == *own && !answered => {
                    answered = true;
                    self.answer_challenge(&response, request)?;
                }
                401 | 403 if origin == *own => return Err(transport.failure(response, "").into()),
                401 | 403 => {
                    return Err(Failure::Fail(transport.error(
                        request.step,
                        format!(
                            "{origin}, where the registry sent this request, answered HTTP {status}; credentials go only to the registry's own origin"
                        ),
                    )));
                }
                429 | 500..=599 => {
                    return Err(Failure::Retry {
                        wait: retry_after(&response),
                        error: transport.failure(response, request.step),
                    });
                }
                _ => return Ok(response),
            }
        }
    }

    /// Sends a request and follows its redirects (at most `MAX_REDIRECTS`), each hop with the
    /// `Authorization` that `credentials` gives its origin. Returns the last answer and its
    /// origin.
    pub(crate) fn follow(
        &mut self,
        mut hop: Hop<'_>,
        request: &Request<'_>,
        credentials: &dyn Fn(&Origin) -> Option<String>,
    ) -> Result<(Response<ureq::Body>, Origin), Failure> {
        let transport = self.transport;
        for _ in 0..=MAX_REDIRECTS {
            let origin = Origin::of_url(&hop.url).ok_or_else(|| {
                transport.error(
                    request.step,
                    format!("`{}` is not an http or https URL", quote_external(&hop.url)),
                )
            })?;
            if !origin.is_trusted_transport(&transport.insecure) {
                return Err(Failure::Fail(transport.error(
                    request.step,
                    format!(
                        "refusing to send a request over plain HTTP to {origin}, which is neither loopback nor listed with --insecure-registry"
                    ),
                )));
            }
            let authorization = credentials(&origin);
            let response = self.send_one(&hop, request, authorization.as_deref())?;
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok((response, origin));
            }
            let location = header(&response, "location").ok_or_else(|| {
                transport.error(
                    request.step,
                    format!("HTTP {status} from {origin} named no Location"),
                )
            })?;
            hop.url = join_url(&hop.url, &location)
                .map_err(|message| transport.error(request.step, message))?;
            if status == 303 && hop.method != Method::Head {
                hop.method = Method::Get;
                hop.body = Body::Empty;
            }
        }
        Err(Failure::Fail(transport.error(
            request.step,
            format!("more than {MAX_REDIRECTS} redirects"),
        )))
    }

    /// Sends one HTTP request, cut at the operation's deadline.
    fn send_one(
        &mut self,
        hop: &Hop<'_>,
        request: &Request<'_>,
        authorization: Option<&str>,
    ) -> Result<Response<ureq::Body>, Failure> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::Fail(self.past_deadline()));
        }
        let transport = self.transport;
        transport.requests.fetch_add(1, Ordering::Relaxed);
        macro_rules! send {
            ($builder:expr, $send:ident $(, $body:expr)?) => {{
                let mut builder = $builder.config().timeout_global(Some(remaining)).build();
                if let Some(accept) = request.accept {
                    builder = builder.header("Accept", accept);
                }
                if let Some(authorization) = authorization {
                    builder = builder.header("Authorization", authorization);
                }
                if let Some(content_type) = request.content_type {
                    builder = builder.header("Content-Type", content_type);
                }
                builder.$send($($body)?)
            }};
        }
        let agent = &transport.agent;
        let url = hop.url.as_str();
        let result = match (hop.method, hop.body) {
            (Method::Head, _) => send!(agent.head(url), call),
            (Method::Get, _) => send!(agent.get(url), call),
            (Method::Put, Body::File(file, length)) => {
                let mut reader = rewound(file, transport, request.step)?;
                send!(
                    agent.put(url).header("Content-Length", length.to_string()),
                    send,
                    ureq::SendBody::from_reader(&mut reader)
                )
            }
            (Method::Put, body) => send!(agent.put(url), send, bytes_of(body)),
            (Method::Post, body) => send!(agent.post(url), send, bytes_of(body)),
            (Method::Delete, _) => send!(agent.delete(url), call),
        };
        result.map_err(|err| self.classify(err, request.step, url))
    }

    /// A failed exchange, sorted: the deadline ends the operation; a dropped connection, a
    /// refused one or a timeout may be worth another try; anything else will not change. A
    /// request the registry sent elsewhere (an upload location, a redirect) that cannot get
    /// through is reported as that place, not as the registry.
    fn classify(&self, err: ureq::Error, step: &str, url: &str) -> Failure {
        let unreachable = |err: ureq::Error| {
            match Origin::of_url(url) {
            Some(origin) if origin != self.transport.origin => self.transport.error(
                step,
                format!(
                    "cannot reach {origin}, where the registry sent this request ({}); check that it is reachable from here, or the registry's configuration of where it sends clients",
                    quote_external(&err.to_string())
                ),
            ),
            _ => self.transport.unreachable(err, step),
        }
        };
        match err {
            ureq::Error::Timeout(ureq::Timeout::Global) => Failure::Fail(self.past_deadline()),
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_) => Failure::Retry {
                error: unreachable(err),
                wait: None,
            },
            other => Failure::Fail(unreachable(other)),
        }
    }

    /// A whole answer, of at most `limit.0` bytes (`limit.1` says why, in the error).
    pub(crate) fn read_body(
        &self,
        response: &mut Response<ureq::Body>,
        limit: (u64, &str),
        what: &str,
        step: &str,
    ) -> Result<Vec<u8>, Failure> {
        let mut bytes = Vec::new();
        self.copy_body(response, limit, what, step, &mut |chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(bytes)
    }

    /// Streams an answer into `sink` in small pieces, stopping with an error past `limit.0`
    /// bytes. A connection dropped part-way is worth another try; too much is not.
    pub(crate) fn copy_body(
        &self,
        response: &mut Response<ureq::Body>,
        limit: (u64, &str),
        what: &str,
        step: &str,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<u64, Failure> {
        let too_large = |detail: String| {
            Failure::Fail(
                self.transport
                    .error(step, format!("{what} is larger than {}{detail}", limit.1)),
            )
        };
        if let Some(length) = response.body().content_length().filter(|l| *l > limit.0) {
            return Err(too_large(format!(
                " (the registry announced {length} bytes)"
            )));
        }
        let mut reader = response.body_mut().as_reader();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut total: u64 = 0;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.cut(ureq::Error::from(e), what, total, step)),
            };
            total += n as u64;
            if total > limit.0 {
                return Err(too_large(String::new()));
            }
            sink(&buffer[..n])?;
        }
    }

    /// A body that stopped part-way: the deadline, or a dropped connection (worth a retry).
    fn cut(&self, err: ureq::Error, what: &str, read: u64, step: &str) -> Failure {
        if matches!(err, ureq::Error::Timeout(ureq::Timeout::Global)) {
            return Failure::Fail(self.past_deadline());
        }
        Failure::Retry {
            error: self.transport.error(
                step,
                format!(
                    "the connection dropped after {read} bytes of {what} ({}); try again",
                    quote_external(&err.to_string())
                ),
            ),
            wait: None,
        }
    }

    fn past_deadline(&self) -> Error {
        self.gave_up(
            self.failures + 1,
            ": no complete answer before the deadline",
        )
    }

    fn gave_up(&self, attempts: u32, why: &str) -> Error {
        self.transport.error(
            self.step,
            format!(
                "gave up after {attempts} attempts in {:.1}s (retry budget {}){why}; try again later",
                self.started.elapsed().as_secs_f64(),
                seconds(self.budget)
            ),
        )
    }
}

/// `12s`, or `1.5s` when not whole.
fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

fn bytes_of(body: Body<'_>) -> &[u8] {
    match body {
        Body::Bytes(bytes) => bytes,
        Body::Empty | Body::File(..) => &[],
    }
}

/// A file body, from its start again (for a retry or a redirect).
fn rewound<'f>(
    file: &'f std::fs::File,
    transport: &Transport,
    step: &str,
) -> Result<&'f std::fs::File, Failure> {
    let mut reader = file;
    reader.seek(std::io::SeekFrom::Start(0)).map_err(|e| {
        transport.error(
            step,
            format!("cannot read the blob's temporary file again: {e}"),
        )
    })?;
    Ok(file)
}

pub(crate) fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` in seconds (the form registries send), capped so one answer cannot stall us.
pub(crate) fn retry_after(response: &Response<ureq::Body>) -> Option<Duration> {
    let seconds: u64 = header(response, "retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(30)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_print_in_seconds() {
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        assert_eq!(seconds(Duration::from_secs(60)), "60s");
    }

    #[test]
    fn a_credential_for_another_registry_is_dropped() {
        let options = ClientOptions::default();
        let credential = Credential::new("ci", "secret").only_for("ghcr.io");
        let transport = Transport::new("127.0.0.1:5000", Some(credential.clone()), &options);
        assert!(transport.credential.is_none());
        let transport = Transport::new("ghcr.io", Some(credential), &options);
        assert!(transport.credential.is_some());
    }
}
