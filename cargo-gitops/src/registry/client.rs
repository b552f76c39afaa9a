//! Container registries over the OCI distribution API: image references, which registries are
//! plain HTTP, and the built-in client (manifest lookup, byte-exact retags, blob mounts and
//! streamed copies) with its authentication and retry rules. Where credentials come from is
//! `credentials`' job; when to retag rather than build is `pipeline`'s.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use ureq::http::Response;

use crate::error::Error;
use crate::registry::credentials::Credential;

/// Every manifest media type, so the registry returns a manifest as stored, never converted.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Manifests larger than this are refused rather than read into memory.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// Blobs read whole (configs, base layers written to a layout) stop here.
const MAX_BLOB_IN_MEMORY: u64 = 2 * 1024 * 1024 * 1024;

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

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// Whether a registry is spoken to in plain HTTP: loopback, as Docker treats it, or listed
/// with `--insecure-registry`.
pub fn is_plain_http(registry: &str, insecure: &[String]) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback || insecure.iter().any(|i| i == registry || i == host)
}

/// The API host for a registry name: Docker Hub's is not `docker.io`.
fn api_host(registry: &str) -> &str {
    if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut text = String::with_capacity(71);
    text.push_str("sha256:");
    for byte in hash {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// How hard to retry 429, 5xx and dropped connections.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// No retry starts after this much time since the first attempt.
    pub budget: Duration,
    /// The first wait; each further wait doubles, with jitter.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            budget: Duration::from_secs(60),
            base_delay: Duration::from_millis(250),
        }
    }
}

/// Transport settings of the built-in client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub insecure_registries: Vec<String>,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// The longest wait for any single read once connected.
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// A manifest exactly as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// How one try of a multi-request operation failed.
enum Attempt {
    /// Another try may succeed.
    Retry(Error),
    /// Trying again would fail the same way.
    Fail(Error),
}

/// The parts of a manifest that name other content.
#[derive(Debug, Deserialize)]
struct ManifestRefs {
    #[serde(default)]
    manifests: Vec<Descriptor>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(default)]
    urls: Vec<String>,
}

impl Manifest {
    fn references(&self) -> Result<ManifestRefs, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Head,
    Get,
    Put,
    Post,
}

/// One registry, spoken to by the built-in client. Holds the credential and the tokens it
/// earned, so an authentication handshake happens once per scope, not once per request.
pub struct RegistryClient {
    registry: String,
    base_url: String,
    agent: ureq::Agent,
    credential: Option<Credential>,
    retry: RetryPolicy,
    auth: Mutex<AuthState>,
    /// Every request made, for `--verbose` and the benchmarks.
    requests: std::sync::atomic::AtomicU32,
}

#[derive(Default)]
struct AuthState {
    basic: bool,
    tokens: HashMap<String, String>,
}

#[derive(Debug, Clone)]
struct BearerChallenge {
    realm: String,
    service: Option<String>,
}

/// The access a request needs, for bearer tokens: `repository:NAME:pull[,push]` (and a second
/// repository for cross-repository mounts).
#[derive(Debug, Clone)]
pub struct Scope(String);

impl Scope {
    pub fn pull(name: &str) -> Scope {
        Scope(format!("repository:{name}:pull"))
    }
    pub fn push(name: &str) -> Scope {
        Scope(format!("repository:{name}:pull,push"))
    }
    pub fn mount(target: &str, source: &str) -> Scope {
        Scope(format!(
            "repository:{target}:pull,push repository:{source}:pull"
        ))
    }
}

struct Request<'a> {
    method: Method,
    path: String,
    accept: Option<String>,
    content_type: Option<&'a str>,
    body: &'a [u8],
    scope: &'a Scope,
    step: &'a str,
}

impl RegistryClient {
    pub fn new(
        registry: &str,
        credential: Option<Credential>,
        options: &ClientOptions,
    ) -> RegistryClient {
        let scheme = if is_plain_http(registry, &options.insecure_registries) {
            "http"
        } else {
            "https"
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .max_redirects(5)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("cargo-gitops/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        RegistryClient {
            registry: registry.to_owned(),
            base_url: format!("{scheme}://{}", api_host(registry)),
            agent,
            credential,
            retry: options.retry,
            auth: Mutex::new(AuthState::default()),
            requests: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// How many HTTP requests this client has sent.
    pub fn request_count(&self) -> u32 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The digest a tag (or digest) names, from one `HEAD`; `None` when it does not exist.
    pub fn manifest_digest(
        &self,
        name: &str,
        reference: &str,
        scope: &Scope,
    ) -> Result<Option<String>, Error> {
        let response = self.execute(&Request {
            method: Method::Head,
            path: format!("/v2/{name}/manifests/{reference}"),
            accept: Some(MANIFEST_MEDIA_TYPES.join(", ")),
            content_type: None,
            body: &[],
            scope,
            step: "lookup",
        })?;
        match response.status().as_u16() {
            404 => Ok(None),
            200 => match header(&response, "docker-content-digest") {
                Some(digest) => Ok(Some(digest)),
                // Without the header the digest can only come from the bytes.
                None => self
                    .get_manifest(name, reference, scope)
                    .map(|m| Some(m.digest)),
            },
            _ => Err(self.failure(response, "lookup")),
        }
    }

    /// The manifest a tag or digest names, byte for byte, with its media type.
    pub fn get_manifest(
        &self,
        name: &str,
        reference: &str,
        scope: &Scope,
    ) -> Result<Manifest, Error> {
        let (media_type, bytes) = self.retrying(|| {
            let mut response = self
                .execute(&Request {
                    method: Method::Get,
                    path: format!("/v2/{name}/manifests/{reference}"),
                    accept: Some(MANIFEST_MEDIA_TYPES.join(", ")),
                    content_type: None,
                    body: &[],
                    scope,
                    step: "read manifest",
                })
                .map_err(Attempt::Fail)?;
            if response.status().as_u16() != 200 {
                return Err(Attempt::Fail(self.failure(response, "read manifest")));
            }
            let media_type = header(&response, "content-type")
                .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned())
                .unwrap_or_else(|| MANIFEST_MEDIA_TYPES[1].to_owned());
            // A body cut part-way is a dropped connection too: read it again.
            let bytes = response
                .body_mut()
                .with_config()
                .limit(MAX_MANIFEST_BYTES)
                .read_to_vec()
                .map_err(|e| Attempt::Retry(self.transport(e, "read manifest")))?;
            Ok((media_type, bytes))
        })?;
        let digest = sha256_digest(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(Error::Registry {
                registry: self.registry.clone(),
                step: "read manifest".to_owned(),
                message: format!(
                    "the manifest's bytes have digest {digest}, not {reference}; the registry returned something else"
                ),
            });
        }
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Stores the exact bytes of `manifest` under `reference` (a tag or its digest).
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        manifest: &Manifest,
        scope: &Scope,
    ) -> Result<(), Error> {
        let response = self.execute(&Request {
            method: Method::Put,
            path: format!("/v2/{name}/manifests/{reference}"),
            accept: None,
            content_type: Some(&manifest.media_type),
            body: &manifest.bytes,
            scope,
            step: "retag",
        })?;
        match response.status().as_u16() {
            200..=202 => Ok(()),
            // Immutable tags: a tag already on this digest is what was asked for.
            400..=499
                if self
                    .manifest_digest(name, reference, scope)
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some(manifest.digest.as_str()) =>
            {
                Ok(())
            }
            _ => Err(self.failure(response, "retag")),
        }
    }

    /// Whether a blob exists in a repository.
    pub fn blob_exists(&self, name: &str, digest: &str, scope: &Scope) -> Result<bool, Error> {
        let response = self.execute(&Request {
            method: Method::Head,
            path: format!("/v2/{name}/blobs/{digest}"),
            accept: None,
            content_type: None,
            body: &[],
            scope,
            step: "check blob",
        })?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.failure(response, "check blob")),
        }
    }

    /// A whole blob, checked against its digest (image configs, base layers for a layout).
    pub fn get_blob(&self, name: &str, digest: &str) -> Result<Vec<u8>, Error> {
        let scope = Scope::pull(name);
        let mut response = self.execute(&Request {
            method: Method::Get,
            path: format!("/v2/{name}/blobs/{digest}"),
            accept: None,
            content_type: None,
            body: &[],
            scope: &scope,
            step: "read blob",
        })?;
        if response.status().as_u16() != 200 {
            return Err(self.failure(response, "read blob"));
        }
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_BLOB_IN_MEMORY)
            .read_to_vec()
            .map_err(|e| self.transport(e, "read blob"))?;
        if sha256_digest(&bytes) != digest {
            return Err(Error::Registry {
                registry: self.registry.clone(),
                step: "read blob".to_owned(),
                message: format!("blob {digest} arrived with other content; try again"),
            });
        }
        Ok(bytes)
    }

    /// Asks the registry to link a blob from another repository; `Ok(None)` when mounted,
    /// otherwise the upload session the registry opened instead.
    fn mount_blob(
        &self,
        target: &str,
        source: &str,
        digest: &str,
    ) -> Result<Option<String>, Error> {
        let scope = Scope::mount(target, source);
        let response = self.execute(&Request {
            method: Method::Post,
            path: format!("/v2/{target}/blobs/uploads/?mount={digest}&from={source}"),
            accept: None,
            content_type: None,
            body: &[],
            scope: &scope,
            step: "mount blob",
        })?;
        match response.status().as_u16() {
            201 => Ok(None),
            202 => Ok(Some(self.location(&response, "mount blob")?)),
            _ => Err(self.failure(response, "mount blob")),
        }
    }

    fn start_upload(&self, name: &str) -> Result<String, Error> {
        let scope = Scope::push(name);
        let response = self.execute(&Request {
            method: Method::Post,
            path: format!("/v2/{name}/blobs/uploads/"),
            accept: None,
            content_type: None,
            body: &[],
            scope: &scope,
            step: "start upload",
        })?;
        match response.status().as_u16() {
            202 => self.location(&response, "start upload"),
            _ => Err(self.failure(response, "start upload")),
        }
    }

    /// Uploads a blob held in memory (image configs and layers the tool made itself).
    pub fn upload_blob(&self, name: &str, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        let scope = Scope::push(name);
        if self.blob_exists(name, digest, &scope)? {
            return Ok(());
        }
        let location = self.start_upload(name)?;
        let response = self.execute(&Request {
            method: Method::Put,
            path: with_digest_param(&location, digest),
            accept: None,
            content_type: Some("application/octet-stream"),
            body: bytes,
            scope: &scope,
            step: "upload blob",
        })?;
        match response.status().as_u16() {
            201 | 204 => Ok(()),
            _ => Err(self.failure(response, "upload blob")),
        }
    }

    /// Streams a blob from `source` into this registry's upload session, never holding it whole.
    fn stream_blob(
        &self,
        source: &RegistryClient,
        source_name: &str,
        target: &str,
        digest: &str,
        location: String,
    ) -> Result<(), Attempt> {
        let pull = Scope::pull(source_name);
        let mut download = source
            .execute(&Request {
                method: Method::Get,
                path: format!("/v2/{source_name}/blobs/{digest}"),
                accept: None,
                content_type: None,
                body: &[],
                scope: &pull,
                step: "read blob",
            })
            .map_err(Attempt::Fail)?;
        if download.status().as_u16() != 200 {
            return Err(Attempt::Fail(source.failure(download, "read blob")));
        }
        let length = download.body().content_length();
        let reader = download.body_mut().as_reader();
        let push = Scope::push(target);
        let url = absolute(&self.base_url, &with_digest_param(&location, digest));
        let mut request = self
            .agent
            .put(&url)
            .header("Content-Type", "application/octet-stream");
        if let Some(length) = length {
            request = request.header("Content-Length", length.to_string());
        }
        if let Some(value) = self.authorization(&push) {
            request = request.header("Authorization", value);
        }
        self.count();
        let mut reader: Box<dyn Read> = Box::new(reader);
        let response = request
            .send(ureq::SendBody::from_reader(&mut reader))
            .map_err(|e| Attempt::Retry(self.transport(e, "upload blob")))?;
        // The body was a stream and is gone, so `execute` could not retry; the caller
        // starts the copy over instead.
        match response.status().as_u16() {
            201 | 204 => Ok(()),
            429 | 500..=599 => Err(Attempt::Retry(self.failure(response, "upload blob"))),
            _ => Err(Attempt::Fail(self.failure(response, "upload blob"))),
        }
    }

    /// Makes a blob of `source_name` (in `source`, which may be this registry) exist in
    /// `target`: nothing if it is there, a mount within one registry, else a streamed copy.
    /// A streamed copy that fails part-way is started over, within the retry budget.
    pub fn copy_blob(
        &self,
        source: &RegistryClient,
        source_name: &str,
        target: &str,
        digest: &str,
    ) -> Result<(), Error> {
        if self.blob_exists(target, digest, &Scope::push(target))? {
            return Ok(());
        }
        let same_registry = std::ptr::eq(source, self) || source.registry == self.registry;
        self.retrying(|| {
            let location = if same_registry {
                match self
                    .mount_blob(target, source_name, digest)
                    .map_err(Attempt::Fail)?
                {
                    None => return Ok(()),
                    Some(location) => location,
                }
            } else {
                self.start_upload(target).map_err(Attempt::Fail)?
            };
            self.stream_blob(source, source_name, target, digest, location)
        })
    }

    /// Runs `attempt` again when it fails in a way another try may fix (a dropped connection,
    /// a cut body, a 429 or 5xx to a request that could not be replayed), within the budget.
    fn retrying<T>(&self, mut attempt: impl FnMut() -> Result<T, Attempt>) -> Result<T, Error> {
        let start = Instant::now();
        let mut tries = 1;
        loop {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Attempt::Retry(_))
                    if tries < self.retry.attempts && start.elapsed() < self.retry.budget =>
                {
                    std::thread::sleep(backoff(self.retry.base_delay, tries));
                    tries += 1;
                }
                Err(Attempt::Retry(err) | Attempt::Fail(err)) => return Err(err),
            }
        }
    }

    /// Copies a manifest and everything it references from `source` into `target` here, then
    /// stores it under each of `tags`. Indexes copy their child manifests by digest first.
    pub fn copy_image(
        &self,
        source: &RegistryClient,
        source_name: &str,
        manifest: &Manifest,
        target: &str,
    ) -> Result<(), Error> {
        let refs = manifest.references().map_err(|e| Error::Registry {
            registry: source.registry.clone(),
            step: "read manifest".to_owned(),
            message: format!("manifest {} is not valid JSON: {e}", manifest.digest),
        })?;
        let pull = Scope::pull(source_name);
        for child in &refs.manifests {
            let child_manifest = source.get_manifest(source_name, &child.digest, &pull)?;
            self.copy_image(source, source_name, &child_manifest, target)?;
        }
        for blob in refs.config.iter().chain(&refs.layers) {
            // Foreign layers live elsewhere by design; registries do not hold them.
            if blob.urls.is_empty() {
                self.copy_blob(source, source_name, target, &blob.digest)?;
            }
        }
        if !refs.manifests.is_empty() || source.registry != self.registry || source_name != target {
            self.put_manifest(target, &manifest.digest, manifest, &Scope::push(target))?;
        }
        Ok(())
    }

    /// The tags of a repository, following pagination.
    pub fn list_tags(&self, name: &str) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let scope = Scope::pull(name);
        let mut tags = Vec::new();
        let mut path = format!("/v2/{name}/tags/list?n=1000");
        loop {
            let page = self.retrying(|| {
                let mut response = self
                    .execute(&Request {
                        method: Method::Get,
                        path: path.clone(),
                        accept: Some("application/json".to_owned()),
                        content_type: None,
                        body: &[],
                        scope: &scope,
                        step: "list tags",
                    })
                    .map_err(Attempt::Fail)?;
                match response.status().as_u16() {
                    200 => {}
                    404 => return Ok(None),
                    _ => return Err(Attempt::Fail(self.failure(response, "list tags"))),
                }
                let next = header(&response, "link").and_then(|link| {
                    let start = link.find('<')? + 1;
                    let end = link[start..].find('>')? + start;
                    Some(link[start..end].to_owned())
                });
                // A page cut part-way is read again, like any dropped connection.
                let list: TagList = response
                    .body_mut()
                    .read_json()
                    .map_err(|e| Attempt::Retry(self.transport(e, "list tags")))?;
                Ok(Some((list.tags.unwrap_or_default(), next)))
            })?;
            let Some((page_tags, next)) = page else {
                return Ok(tags);
            };
            tags.extend(page_tags);
            match next {
                Some(next) => path = next,
                None => return Ok(tags),
            }
        }
    }

    fn count(&self) {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn authorization(&self, scope: &Scope) -> Option<String> {
        let state = self.auth.lock().expect("auth state lock");
        if let Some(token) = state.tokens.get(&scope.0) {
            return Some(format!("Bearer {token}"));
        }
        if state.basic {
            return self.credential.as_ref().map(Credential::basic_header);
        }
        None
    }

    fn send_once(&self, request: &Request<'_>) -> Result<Response<ureq::Body>, ureq::Error> {
        let url = absolute(&self.base_url, &request.path);
        let auth = self.authorization(request.scope);
        self.count();
        macro_rules! finish {
            ($builder:expr, $send:ident $(, $body:expr)?) => {{
                let mut builder = $builder;
                if let Some(accept) = &request.accept {
                    builder = builder.header("Accept", accept);
                }
                if let Some(auth) = &auth {
                    builder = builder.header("Authorization", auth);
                }
                if let Some(content_type) = request.content_type {
                    builder = builder.header("Content-Type", content_type);
                }
                builder.$send($($body)?)
            }};
        }
        match request.method {
            Method::Head => finish!(self.agent.head(&url), call),
            Method::Get => finish!(self.agent.get(&url), call),
            Method::Put => finish!(self.agent.put(&url), send, request.body),
            Method::Post => finish!(self.agent.post(&url), send, request.body),
        }
    }

    /// Sends a request: answers a 401 challenge once (basic or bearer), retries 429, 5xx and
    /// dropped connections with backoff within the retry budget, and returns any other answer.
    fn execute(&self, request: &Request<'_>) -> Result<Response<ureq::Body>, Error> {
        let start = Instant::now();
        let mut attempt = 1;
        let mut answered_challenge = false;
        loop {
            let wait = match self.send_once(request) {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status == 401 && !answered_challenge {
                        answered_challenge = true;
                        self.answer_challenge(&response, request.scope, request.step)?;
                        continue;
                    }
                    if status == 401 || status == 403 {
                        return Err(Error::NotLoggedIn {
                            registry: self.registry.clone(),
                        });
                    }
                    if status != 429 && status < 500 {
                        return Ok(response);
                    }
                    if attempt >= self.retry.attempts {
                        return Err(self.failure(response, request.step));
                    }
                    retry_after(&response)
                        .unwrap_or_else(|| backoff(self.retry.base_delay, attempt))
                }
                Err(err) => {
                    if attempt >= self.retry.attempts {
                        return Err(self.transport(err, request.step));
                    }
                    backoff(self.retry.base_delay, attempt)
                }
            };
            if start.elapsed() + wait > self.retry.budget {
                return Err(Error::Registry {
                    registry: self.registry.clone(),
                    step: request.step.to_owned(),
                    message: format!(
                        "gave up after {attempt} attempts in {:.1}s (retry budget {}s); try again later",
                        start.elapsed().as_secs_f64(),
                        self.retry.budget.as_secs()
                    ),
                });
            }
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    fn answer_challenge(
        &self,
        response: &Response<ureq::Body>,
        scope: &Scope,
        step: &str,
    ) -> Result<(), Error> {
        let challenge = header(response, "www-authenticate").unwrap_or_default();
        let (kind, params) = challenge
            .split_once(' ')
            .unwrap_or((challenge.as_str(), ""));
        if kind.eq_ignore_ascii_case("basic") {
            if self.credential.is_none() {
                return Err(Error::NotLoggedIn {
                    registry: self.registry.clone(),
                });
            }
            self.auth.lock().expect("auth state lock").basic = true;
            return Ok(());
        }
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(Error::NotLoggedIn {
                registry: self.registry.clone(),
            });
        }
        let params = parse_challenge_params(params);
        let realm = params
            .get("realm")
            .cloned()
            .ok_or_else(|| Error::Registry {
                registry: self.registry.clone(),
                step: step.to_owned(),
                message: "the registry asked for a bearer token but named no realm".to_owned(),
            })?;
        let challenge = BearerChallenge {
            realm,
            service: params.get("service").cloned(),
        };
        let token = self.fetch_token(&challenge, scope, step)?;
        let mut state = self.auth.lock().expect("auth state lock");
        state.tokens.insert(scope.0.clone(), token);
        Ok(())
    }

    fn fetch_token(
        &self,
        challenge: &BearerChallenge,
        scope: &Scope,
        step: &str,
    ) -> Result<String, Error> {
        #[derive(Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let mut request = self.agent.get(&challenge.realm);
        for part in scope.0.split(' ') {
            request = request.query("scope", part);
        }
        if let Some(service) = &challenge.service {
            request = request.query("service", service);
        }
        // The password goes to the token service only over HTTPS, or to the registry itself.
        let realm_host = challenge
            .realm
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("");
        let trusted =
            challenge.realm.starts_with("https://") || realm_host == api_host(&self.registry);
        if let Some(credential) = self.credential.as_ref().filter(|_| trusted) {
            request = request.header("Authorization", credential.basic_header());
        }
        self.count();
        let mut response = request.call().map_err(|e| self.transport(e, step))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(Error::NotLoggedIn {
                    registry: self.registry.clone(),
                });
            }
            _ => return Err(self.failure(response, "authenticate")),
        }
        let body: TokenResponse = response
            .body_mut()
            .read_json()
            .map_err(|e| self.transport(e, step))?;
        body.token
            .or(body.access_token)
            .ok_or_else(|| Error::Registry {
                registry: self.registry.clone(),
                step: "authenticate".to_owned(),
                message: "the token service answered without a token".to_owned(),
            })
    }

    fn location(&self, response: &Response<ureq::Body>, step: &str) -> Result<String, Error> {
        header(response, "location").ok_or_else(|| Error::Registry {
            registry: self.registry.clone(),
            step: step.to_owned(),
            message: "the registry opened an upload but gave no Location".to_owned(),
        })
    }

    /// An error from a registry answer, with its error code and message when it sent them.
    fn failure(&self, mut response: Response<ureq::Body>, step: &str) -> Error {
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403) {
            return Error::NotLoggedIn {
                registry: self.registry.clone(),
            };
        }
        #[derive(Deserialize)]
        struct Errors {
            errors: Vec<RegistryError>,
        }
        #[derive(Deserialize)]
        struct RegistryError {
            code: String,
            #[serde(default)]
            message: String,
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        let detail = serde_json::from_slice::<Errors>(&body)
            .ok()
            .and_then(|e| e.errors.into_iter().next())
            .map(|e| format!(": {} {}", e.code, e.message).trim_end().to_owned())
            .unwrap_or_default();
        Error::Registry {
            registry: self.registry.clone(),
            step: step.to_owned(),
            message: format!("HTTP {}{detail}", status.as_u16()),
        }
    }

    fn transport(&self, err: ureq::Error, step: &str) -> Error {
        Error::RegistryUnreachable {
            registry: self.registry.clone(),
            step: step.to_owned(),
            source: Box::new(err),
        }
    }
}

fn header(response: &Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` in seconds (the form registries send), capped so one answer cannot stall us.
fn retry_after(response: &Response<ureq::Body>) -> Option<Duration> {
    let seconds: u64 = header(response, "retry-after")?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(30)))
}

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, plus up to half of that again.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = exponential.mul_f64(f64::from(nanos % 1000) / 2000.0);
    exponential + jitter
}

fn absolute(base_url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{base_url}{location}")
    }
}

fn with_digest_param(location: &str, digest: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

fn parse_challenge_params(params: &str) -> HashMap<String, String> {
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

/// Base64 of `user:password` for HTTP basic authentication.
pub(crate) fn basic_auth_value(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
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
    fn bearer_challenge_parameters() {
        let params = parse_challenge_params(
            r#"realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#,
        );
        assert_eq!(params["realm"], "https://ghcr.io/token");
        assert_eq!(params["service"], "ghcr.io");
        assert_eq!(params["scope"], "repository:a/b:pull");
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let base = Duration::from_millis(100);
        assert!(backoff(base, 1) >= base && backoff(base, 1) <= base * 3 / 2);
        assert!(backoff(base, 3) >= base * 4);
        assert!(backoff(base, 40) <= base * 1024 * 3 / 2);
    }
}
