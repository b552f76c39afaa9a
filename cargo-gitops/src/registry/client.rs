//! The built-in registry client: operations of the OCI distribution API over `transport`.
//! Manifest lookups, reads (checked against the digest asked for or announced) and byte-exact
//! writes; blob checks, uploads, mounts, downloads streamed through the hash into a file
//! (stopped at the descriptor's size), cross-registry copies; tag listing with bounded
//! pagination. Each public method is one operation with one retry budget. When to retag
//! rather than build is `build`'s business; where credentials come from, `credentials`'.

mod blobs;
mod referrers;

pub use referrers::{artifact_type_of, query_escape};

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, quote_external};
use crate::registry::credentials::Credential;
pub use crate::registry::oci::{
    Descriptor, Digest, MANIFEST_MEDIA_TYPES, Manifest, OCI_MANIFEST, Parsed, sha256_digest,
};
pub use crate::registry::options::{ClientOptions, RetryPolicy};
use crate::registry::reference::join_url;
pub use crate::registry::reference::{Repository, is_plain_http};
pub use crate::registry::transport::Scope;
use crate::registry::transport::{Body, Method, Operation, Request, Transport, header};

/// Manifests larger than this are refused rather than read into memory (the size the OCI
/// distribution spec asks registries to accept).
const MAX_MANIFEST_BYTES: (u64, &str) = (
    4 * 1024 * 1024,
    "4 MiB, the most this client reads of a manifest",
);

/// One page of a tag list.
const MAX_TAG_PAGE_BYTES: (u64, &str) = (
    4 * 1024 * 1024,
    "4 MiB, the most this client reads of one page of tags",
);

/// Indexes inside indexes, followed this deep at most.
const MAX_INDEX_DEPTH: usize = 4;

/// One registry, spoken to by the built-in client. Holds the credential and the tokens it
/// earned, so an authentication handshake happens once per scope, not once per request.
pub struct RegistryClient {
    transport: Transport,
    manifest_accept: String,
    max_tag_pages: usize,
    min_blob_rate: u64,
}

impl RegistryClient {
    pub fn new(
        registry: &str,
        credential: Option<Credential>,
        options: &ClientOptions,
    ) -> RegistryClient {
        RegistryClient {
            transport: Transport::new(registry, credential, options),
            manifest_accept: MANIFEST_MEDIA_TYPES.join(", "),
            max_tag_pages: options.max_tag_pages,
            min_blob_rate: options.min_blob_rate,
        }
    }

    /// The registry this client speaks to (`ghcr.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.transport.registry
    }

    /// How many HTTP requests this client has sent.
    pub fn request_count(&self) -> u32 {
        self.transport.request_count()
    }

    /// The digest a tag (or digest) names, from one `HEAD`; `None` when it does not exist.
    pub fn manifest_digest(
        &self,
        name: &str,
        reference: &str,
        scope: &Scope,
    ) -> Result<Option<Digest>, Error> {
        let mut op = self.transport.operation("lookup", Duration::ZERO);
        self.digest_in(&mut op, name, reference, scope)
    }

    fn digest_in(
        &self,
        op: &mut Operation<'_>,
        name: &str,
        reference: &str,
        scope: &Scope,
    ) -> Result<Option<Digest>, Error> {
        let asked = self.digest_reference(reference, "lookup")?;
        let request = Request {
            accept: Some(&self.manifest_accept),
            ..request(
                Method::Head,
                manifest_path(name, reference),
                scope,
                "lookup",
            )
        };
        let response = op.send(&request)?;
        match response.status().as_u16() {
            404 => Ok(None),
            200 => match self.announced(&response, "lookup")? {
                Some(digest) if asked.as_ref().is_some_and(|a| *a != digest) => {
                    Err(self.transport.error(
                        "lookup",
                        format!("the registry announced digest {digest} for {reference}"),
                    ))
                }
                Some(digest) => Ok(Some(digest)),
                // Without the header the digest can only come from the bytes.
                None => self
                    .read_manifest(op, name, reference, scope)
                    .map(|m| Some(m.digest)),
            },
            _ => Err(self.transport.failure(response, "lookup")),
        }
    }

    /// The manifest a tag or digest names, byte for byte, with its media type, checked
    /// against the digest asked for and the one the registry announced.
    pub fn get_manifest(
        &self,
        name: &str,
        reference: &str,
        scope: &Scope,
    ) -> Result<Manifest, Error> {
        let mut op = self.transport.operation("read manifest", Duration::ZERO);
        self.read_manifest(&mut op, name, reference, scope)
    }

    /// `get_manifest`, or `None` when the registry has no such tag or digest.
    pub fn find_manifest(
        &self,
        name: &str,
        reference: &str,
        scope: &Scope,
    ) -> Result<Option<Manifest>, Error> {
        let mut op = self.transport.operation("read manifest", Duration::ZERO);
        self.read_manifest_in(&mut op, name, reference, scope, true)
    }

    fn read_manifest(
        &self,
        op: &mut Operation<'_>,
        name: &str,
        reference: &str,
        scope: &Scope,
    ) -> Result<Manifest, Error> {
        self.read_manifest_in(op, name, reference, scope, false)?
            .ok_or_else(|| Error::Internal("a manifest read came back empty".into()))
    }

    fn read_manifest_in(
        &self,
        op: &mut Operation<'_>,
        name: &str,
        reference: &str,
        scope: &Scope,
        missing_ok: bool,
    ) -> Result<Option<Manifest>, Error> {
        const STEP: &str = "read manifest";
        let asked = self.digest_reference(reference, STEP)?;
        let request = Request {
            accept: Some(&self.manifest_accept),
            ..request(Method::Get, manifest_path(name, reference), scope, STEP)
        };
        let read = op.run(|op| {
            let mut response = op.exchange(&request)?;
            if missing_ok && response.status().as_u16() == 404 {
                return Ok(None);
            }
            if response.status().as_u16() != 200 {
                return Err(self.transport.failure(response, STEP).into());
            }
            let announced = self.announced(&response, STEP)?;
            let media_type = header(&response, "content-type")
                .and_then(|t| t.split(';').next().map(|t| t.trim().to_owned()))
                .filter(|t| !t.is_empty());
            let bytes = op.read_body(&mut response, MAX_MANIFEST_BYTES, "the manifest", STEP)?;
            Ok(Some((media_type, announced, bytes)))
        })?;
        let Some((media_type, announced, bytes)) = read else {
            return Ok(None);
        };
        let media_type = media_type.unwrap_or_else(|| media_type_inside(&bytes));
        let manifest = Manifest::new(bytes, &media_type);
        for (expected, who) in [(asked, "asked for"), (announced, "the registry announced")] {
            if let Some(expected) = expected.filter(|e| *e != manifest.digest) {
                return Err(self.transport.error(
                    STEP,
                    format!(
                        "the manifest's bytes have digest {}, not {expected} as {who}; the registry returned something else",
                        manifest.digest
                    ),
                ));
            }
        }
        Ok(Some(manifest))
    }

    /// Stores the exact bytes of `manifest` under `reference` (a tag or its digest).
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        manifest: &Manifest,
        scope: &Scope,
    ) -> Result<(), Error> {
        let mut op = self.transport.operation("retag", Duration::ZERO);
        self.digest_reference(reference, "retag")?;
        let request = Request {
            content_type: Some(&manifest.media_type),
            body: Body::Bytes(&manifest.bytes),
            ..request(Method::Put, manifest_path(name, reference), scope, "retag")
        };
        let response = op.send(&request)?;
        match response.status().as_u16() {
            200..=202 => Ok(()),
            // Immutable tags: a tag already on this digest is what was asked for.
            400..=499 => {
                let refused = self.transport.failure(response, "retag");
                let now = self
                    .digest_in(&mut op, name, reference, scope)
                    .ok()
                    .flatten();
                match now {
                    Some(digest) if digest == manifest.digest => Ok(()),
                    _ => Err(refused),
                }
            }
            _ => Err(self.transport.failure(response, "retag")),
        }
    }

    /// Asks the registry to remove `tag` (the tag only: the manifest stays, by digest and under
    /// its other tags), as the distribution spec allows for tags. `Ok(false)` when it says it
    /// does not delete tags (Distribution 2.x answers 400 `UNSUPPORTED`, others 405). An
    /// answer is not proof: a caller that must know looks the tag up afterwards.
    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool, Error> {
        let mut op = self.transport.operation("delete tag", Duration::ZERO);
        let scope = Scope::delete(name);
        let response = op.send(&request(
            Method::Delete,
            manifest_path(name, tag),
            &scope,
            "delete tag",
        ))?;
        match response.status().as_u16() {
            200..=202 | 404 => Ok(true),
            400 | 405 => Ok(false),
            _ => Err(self.transport.failure(response, "delete tag")),
        }
    }

    /// Copies a manifest and everything it references from `source` into `target` here, then
    /// stores it by digest. Indexes copy their child manifests by digest first.
    pub fn copy_image(
        &self,
        source: &RegistryClient,
        source_name: &str,
        manifest: &Manifest,
        target: &str,
    ) -> Result<(), Error> {
        self.copy_image_at(source, source_name, manifest, target, 0)
    }

    fn copy_image_at(
        &self,
        source: &RegistryClient,
        source_name: &str,
        manifest: &Manifest,
        target: &str,
        depth: usize,
    ) -> Result<(), Error> {
        let unreadable = |message: String| source.transport.error("read manifest", message);
        if depth > MAX_INDEX_DEPTH {
            return Err(unreadable(format!(
                "manifest {} is nested more than {MAX_INDEX_DEPTH} indexes deep",
                manifest.digest
            )));
        }
        let parsed = manifest.parse().map_err(|e| {
            unreadable(format!(
                "manifest {} is not an image manifest or index: {}",
                manifest.digest,
                quote_external(&e.to_string())
            ))
        })?;
        let pull = Scope::pull(source_name);
        let is_index = matches!(parsed, Parsed::Index(_));
        match parsed {
            Parsed::Index(index) => {
                for child in &index.manifests {
                    let child_manifest = source.get_manifest(source_name, &child.digest, &pull)?;
                    if child_manifest.bytes.len() as u64 != child.size {
                        return Err(unreadable(format!(
                            "manifest {} is {} bytes; its index says {}",
                            child.digest,
                            child_manifest.bytes.len(),
                            child.size
                        )));
                    }
                    self.copy_image_at(source, source_name, &child_manifest, target, depth + 1)?;
                }
            }
            Parsed::Image(image) => {
                for blob in std::iter::once(&image.config).chain(&image.layers) {
                    // Foreign layers live elsewhere by design; registries do not hold them.
                    if blob.urls.is_empty() {
                        self.copy_blob(source, source_name, target, blob)?;
                    }
                }
            }
        }
        if is_index || source.registry() != self.registry() || source_name != target {
            self.put_manifest(target, &manifest.digest, manifest, &Scope::push(target))?;
        }
        Ok(())
    }

    /// The tags of a repository, following pagination: at most `max_tag_pages` pages, and
    /// never the same page twice.
    pub fn list_tags(&self, name: &str) -> Result<Vec<String>, Error> {
        let scope = Scope::pull(name);
        let mut tags = Vec::new();
        let mut seen = HashSet::new();
        let mut url = self
            .transport
            .absolute(&format!("/v2/{name}/tags/list?n=1000"))?;
        loop {
            if seen.contains(&url) {
                return Err(self.transport.error(
                    "list tags",
                    format!(
                        "the registry's next page of tags is `{}` again, a page already read; stopped there",
                        quote_external(&url)
                    ),
                ));
            }
            if seen.len() >= self.max_tag_pages {
                return Err(self.transport.error(
                    "list tags",
                    format!(
                        "the tag list of {name} goes on past {} pages; stopped there",
                        self.max_tag_pages
                    ),
                ));
            }
            seen.insert(url.clone());
            let Some(page) = self.tag_page(&url, &scope)? else {
                return Ok(tags);
            };
            tags.extend(page.tags);
            match page.next {
                Some(next) => url = next,
                None => return Ok(tags),
            }
        }
    }

    /// One page of tags (one operation), with the URL of the next page, if any.
    fn tag_page(&self, url: &str, scope: &Scope) -> Result<Option<TagPage>, Error> {
        #[derive(Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        const STEP: &str = "list tags";
        let request = Request {
            accept: Some("application/json"),
            ..request(Method::Get, url.to_owned(), scope, STEP)
        };
        let mut op = self.transport.operation(STEP, Duration::ZERO);
        op.run(|op| {
            let mut response = op.exchange(&request)?;
            match response.status().as_u16() {
                200 => {}
                404 => return Ok(None),
                _ => return Err(self.transport.failure(response, STEP).into()),
            }
            let next = next_link(&response)
                .map(|link| join_url(url, &link))
                .transpose()
                .map_err(|message| self.transport.error(STEP, message))?;
            let bytes = op.read_body(&mut response, MAX_TAG_PAGE_BYTES, "a page of tags", STEP)?;
            let list: TagList = serde_json::from_slice(&bytes).map_err(|e| {
                let message = format!(
                    "the tag list is not valid JSON: {}",
                    quote_external(&e.to_string())
                );
                self.transport.error(STEP, message)
            })?;
            Ok(Some(TagPage {
                tags: list.tags.unwrap_or_default(),
                next,
            }))
        })
    }

    /// The `Docker-Content-Digest` of an answer: absent, or a well-formed digest.
    fn announced(
        &self,
        response: &ureq::http::Response<ureq::Body>,
        step: &str,
    ) -> Result<Option<Digest>, Error> {
        header(response, "docker-content-digest")
            .map(|text| {
                Digest::parse(text.trim()).map_err(|e| {
                    self.transport
                        .error(step, format!("the registry's Docker-Content-Digest: {e}"))
                })
            })
            .transpose()
    }

    /// A manifest reference: a tag, or (when it holds `:`) a digest, which must be well formed.
    fn digest_reference(&self, reference: &str, step: &str) -> Result<Option<Digest>, Error> {
        if reference.is_empty() || reference.contains(['/', '?', '#', ' ']) {
            return Err(self.transport.error(
                step,
                format!(
                    "`{}` is neither a tag nor a digest",
                    quote_external(reference)
                ),
            ));
        }
        if reference.contains(':') {
            self.digest_argument(reference, step).map(Some)
        } else {
            Ok(None)
        }
    }

    fn digest_argument(&self, digest: &str, step: &str) -> Result<Digest, Error> {
        Digest::parse(digest).map_err(|e| self.transport.error(step, e.to_string()))
    }
}

/// One page of a tag list, and the URL of the next one.
struct TagPage {
    tags: Vec<String>,
    next: Option<String>,
}

fn request<'a>(method: Method, url: String, scope: &'a Scope, step: &'a str) -> Request<'a> {
    Request {
        method,
        url,
        accept: None,
        content_type: None,
        body: Body::Empty,
        scope,
        step,
    }
}

fn manifest_path(name: &str, reference: &str) -> String {
    format!("/v2/{name}/manifests/{reference}")
}

/// A manifest's own `mediaType`, for a registry that sent no `Content-Type`.
fn media_type_inside(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Inside {
        media_type: Option<String>,
    }
    serde_json::from_slice::<Inside>(bytes)
        .ok()
        .and_then(|i| i.media_type)
        .unwrap_or_else(|| OCI_MANIFEST.to_owned())
}

/// The `rel="next"` target of a `Link` header (or its only target, when it names no `rel`).
fn next_link(response: &ureq::http::Response<ureq::Body>) -> Option<String> {
    let link = header(response, "link")?;
    let mut first = None;
    for part in link.split(',') {
        let (target, params) = part.trim().split_once('>')?;
        let target = target.trim().strip_prefix('<')?.to_owned();
        let rel = params
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("rel="))
            .map(|r| r.trim_matches('"').to_ascii_lowercase())
            .next();
        match rel.as_deref() {
            Some("next") => return Some(target),
            Some(_) => {}
            None => first = first.or(Some(target)),
        }
    }
    first
}
