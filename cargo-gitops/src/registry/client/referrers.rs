//! The two requests of OCI 1.1 referrers the built-in client makes: storing a manifest by
//! digest while reading whether the registry took note of its `subject` (the `OCI-Subject`
//! answer header), and one listing of the referrers API (`GET /v2/<name>/referrers/<digest>`),
//! followed page by page. Keeping the referrers tag schema where a registry has no such API is
//! `registry::referrers`' job.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use super::{MAX_MANIFEST_BYTES, RegistryClient, manifest_path, next_link, request};
use crate::error::{Error, quote_external};
use crate::registry::oci::{Descriptor, Digest, Manifest, OCI_INDEX};
use crate::registry::reference::join_url;
use crate::registry::transport::{Body, Failure, Method, Request, Scope, header};

impl RegistryClient {
    /// Stores `manifest` under its own digest and returns the `OCI-Subject` the registry
    /// answered with: `Some` when it keeps the referrers of that subject itself.
    pub fn put_manifest_by_digest(
        &self,
        name: &str,
        manifest: &Manifest,
    ) -> Result<Option<Digest>, Error> {
        const STEP: &str = "push manifest";
        let scope = Scope::push(name);
        let mut op = self.transport.operation(STEP, Duration::ZERO);
        let request = Request {
            content_type: Some(&manifest.media_type),
            body: Body::Bytes(&manifest.bytes),
            ..request(
                Method::Put,
                manifest_path(name, &manifest.digest),
                &scope,
                STEP,
            )
        };
        op.run(|op| {
            let response = op.exchange(&request)?;
            match response.status().as_u16() {
                200..=202 => Ok(header(&response, "oci-subject")
                    .and_then(|text| Digest::parse(text.trim()).ok())),
                // Writers storing the same blobs at once can make distribution refuse a
                // manifest for a moment (DIGEST_INVALID, though the digest is the bytes'
                // own): stored by another is stored; otherwise worth another try.
                400..=499 => {
                    let refused = self.transport.failure(response, STEP);
                    match self.digest_in(op, name, &manifest.digest, &scope) {
                        Ok(Some(digest)) if digest == manifest.digest => Ok(None),
                        _ if refused.to_string().contains("DIGEST_INVALID") => {
                            Err(Failure::Retry {
                                error: refused,
                                wait: None,
                            })
                        }
                        _ => Err(refused.into()),
                    }
                }
                _ => Err(self.transport.failure(response, STEP).into()),
            }
        })
    }

    /// The referrers of `subject` from the registry's referrers API, filtered by
    /// `artifact_type` (by the registry when it says so, else here); `None` when the
    /// registry has no referrers API (it answers 404, as registries before OCI 1.1 do).
    pub fn referrers_api(
        &self,
        name: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, Error> {
        #[derive(Deserialize)]
        struct Index {
            // Registries written in Go may send `"manifests": null` for no referrers.
            #[serde(default)]
            manifests: Option<Vec<Descriptor>>,
        }
        const STEP: &str = "list referrers";
        let scope = Scope::pull(name);
        let mut path = format!("/v2/{name}/referrers/{subject}");
        if let Some(kind) = artifact_type {
            path.push_str(&format!("?artifactType={}", query_escape(kind)));
        }
        let mut url = self.transport.absolute(&path)?;
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        loop {
            if !seen.insert(url.clone()) || seen.len() > self.max_tag_pages {
                return Err(self.transport.error(
                    STEP,
                    format!(
                        "the referrers of {subject} go on past {} pages, or a page repeats; stopped there",
                        self.max_tag_pages
                    ),
                ));
            }
            let request = Request {
                accept: Some(OCI_INDEX),
                ..request(Method::Get, url.clone(), &scope, STEP)
            };
            let mut op = self.transport.operation(STEP, Duration::ZERO);
            let page = op.run(|op| {
                let mut response = op.exchange(&request)?;
                match response.status().as_u16() {
                    200 => {}
                    404 => return Ok(None),
                    _ => return Err(self.transport.failure(response, STEP).into()),
                }
                let next = next_link(&response)
                    .map(|link| join_url(&url, &link))
                    .transpose()
                    .map_err(|message| self.transport.error(STEP, message))?;
                let media_type = header(&response, "content-type").unwrap_or_default();
                let bytes =
                    op.read_body(&mut response, MAX_MANIFEST_BYTES, "a referrers list", STEP)?;
                // A registry without the API may answer 200 with a page that is no index.
                if !media_type.starts_with(OCI_INDEX) {
                    return Ok(None);
                }
                let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
                    self.transport.error(
                        STEP,
                        format!(
                            "the referrers list is not an image index: {}",
                            quote_external(&e.to_string())
                        ),
                    )
                })?;
                Ok(Some((index.manifests.unwrap_or_default(), next)))
            })?;
            let Some((manifests, next)) = page else {
                return Ok(if found.is_empty() && seen.len() == 1 {
                    None
                } else {
                    Some(found)
                });
            };
            found.extend(
                manifests
                    .into_iter()
                    .filter(|d| artifact_type.is_none_or(|kind| artifact_type_of(d) == Some(kind))),
            );
            match next {
                Some(next) => url = next,
                None => return Ok(Some(found)),
            }
        }
    }
}

/// A descriptor's `artifactType`, kept among the fields `Descriptor` does not name.
pub fn artifact_type_of(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .other
        .get("artifactType")
        .and_then(|value| value.as_str())
}

/// A media type as a query value: `+` and every byte outside unreserved characters escaped.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_escaped_in_queries() {
        assert_eq!(
            query_escape("application/vnd.dev.sigstore.bundle.v0.3+json"),
            "application/vnd.dev.sigstore.bundle.v0.3%2Bjson"
        );
    }
}
