//! Blob operations of the built-in client: existence checks, uploads of blobs held in memory,
//! downloads streamed through the hash into a file or (small ones) into memory, never past
//! the descriptor's size, mounts across repositories and copies across registries through a
//! temporary file. Manifests and tags are the parent module's.

use std::io::{Seek as _, Write as _};
use std::time::Duration;

use super::{RegistryClient, request};
use crate::error::Error;
use crate::registry::oci::{Descriptor, Digest, Hasher};
use crate::registry::reference::join_url;
use crate::registry::transport::{Body, Failure, Method, Operation, Request, Scope, header};

/// Blobs read into memory (image configs); anything larger goes to a file.
const MAX_BLOB_IN_MEMORY: u64 = 4 * 1024 * 1024;

impl RegistryClient {
    /// Whether a blob exists in a repository.
    pub fn blob_exists(&self, name: &str, digest: &str, scope: &Scope) -> Result<bool, Error> {
        let digest = self.digest_argument(digest, "check blob")?;
        let mut op = self.transport.operation("check blob", Duration::ZERO);
        self.exists_in(&mut op, name, &digest, scope)
    }

    pub(super) fn exists_in(
        &self,
        op: &mut Operation<'_>,
        name: &str,
        digest: &Digest,
        scope: &Scope,
    ) -> Result<bool, Error> {
        let path = format!("/v2/{name}/blobs/{digest}");
        let response = op.send(&request(Method::Head, path, scope, "check blob"))?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.transport.failure(response, "check blob")),
        }
    }

    /// A small blob (an image config) read into memory, checked against its descriptor.
    pub fn get_blob(&self, name: &str, blob: &Descriptor) -> Result<Vec<u8>, Error> {
        if blob.size > MAX_BLOB_IN_MEMORY {
            return Err(self.transport.error(
                "read blob",
                format!(
                    "blob {} is {} bytes; blobs read into memory stop at {MAX_BLOB_IN_MEMORY}",
                    blob.digest, blob.size
                ),
            ));
        }
        let mut bytes = Vec::new();
        self.download(name, blob, &mut bytes)?;
        Ok(bytes)
    }

    /// Streams a blob into `file` (from its start, replacing what it held), through the hash:
    /// never more than one small buffer of it in memory, never more bytes than its descriptor
    /// gives, and an error unless size and digest match.
    pub fn download_blob(
        &self,
        name: &str,
        blob: &Descriptor,
        file: &mut std::fs::File,
    ) -> Result<(), Error> {
        self.download(name, blob, file)
    }

    fn download(
        &self,
        name: &str,
        blob: &Descriptor,
        sink: &mut dyn BlobSink,
    ) -> Result<(), Error> {
        const STEP: &str = "read blob";
        let scope = Scope::pull(name);
        let path = format!("/v2/{name}/blobs/{}", blob.digest);
        let request = request(Method::Get, path, &scope, STEP);
        let what = format!("blob {}", blob.digest);
        let reason = format!("the {} bytes its descriptor gives", blob.size);
        let write_error = |source| Error::Write {
            what: format!("{what} to a temporary file"),
            source,
        };
        let mut op = self.transport.operation(STEP, self.allowance(blob.size));
        op.run(|op| {
            sink.reset().map_err(write_error)?;
            let mut response = op.exchange(&request)?;
            if response.status().as_u16() != 200 {
                return Err(self.transport.failure(response, STEP).into());
            }
            let mut hasher = Hasher::new();
            op.copy_body(&mut response, (blob.size, &reason), &what, STEP, &mut |chunk| {
                hasher.update(chunk);
                sink.append(chunk).map_err(write_error)
            })?;
            if hasher.len() < blob.size {
                return Err(Failure::Retry {
                    error: self.transport.error(
                        STEP,
                        format!("{what} ended after {} of {} bytes", hasher.len(), blob.size),
                    ),
                    wait: None,
                });
            }
            let digest = hasher.finish();
            if digest != blob.digest {
                return Err(self
                    .transport
                    .error(
                        STEP,
                        format!("{what} arrived with other content (digest {digest}); the registry holds something else"),
                    )
                    .into());
            }
            Ok(())
        })
    }

    /// Uploads a blob held in memory (image configs and layers the tool made itself), unless
    /// the repository has it already.
    pub fn upload_blob(&self, name: &str, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        let digest = self.digest_argument(digest, "upload blob")?;
        let scope = Scope::push(name);
        let size = bytes.len() as u64;
        let mut op = self
            .transport
            .operation("upload blob", self.allowance(size));
        if self.exists_in(&mut op, name, &digest, &scope)? {
            return Ok(());
        }
        self.upload_in(&mut op, name, &digest, Body::Bytes(bytes), &scope, None)
    }

    /// Uploads a small blob held in memory without asking first whether the repository has
    /// it: for blobs that are new as a rule (documents just made), where asking would cost a
    /// round trip to save one.
    pub fn upload_new_blob(&self, name: &str, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        let digest = self.digest_argument(digest, "upload blob")?;
        let mut op = self
            .transport
            .operation("upload blob", self.allowance(bytes.len() as u64));
        self.upload_in(
            &mut op,
            name,
            &digest,
            Body::Bytes(bytes),
            &Scope::push(name),
            None,
        )
    }

    /// Opens an upload session (or takes `session`, one a mount opened) and sends the whole
    /// blob to it; a try that fails is started over with a new session.
    fn upload_in(
        &self,
        op: &mut Operation<'_>,
        name: &str,
        digest: &Digest,
        body: Body<'_>,
        scope: &Scope,
        mut session: Option<String>,
    ) -> Result<(), Error> {
        op.run(|op| {
            let location = match session.take() {
                Some(location) => location,
                None => self.start_upload(op, name, scope)?,
            };
            let request = Request {
                content_type: Some("application/octet-stream"),
                body,
                ..request(
                    Method::Put,
                    with_digest_param(&location, digest),
                    scope,
                    "upload blob",
                )
            };
            let response = op.exchange(&request)?;
            match response.status().as_u16() {
                201 | 204 => Ok(()),
                _ => Err(self.transport.failure(response, "upload blob").into()),
            }
        })
    }

    fn start_upload(
        &self,
        op: &mut Operation<'_>,
        name: &str,
        scope: &Scope,
    ) -> Result<String, Failure> {
        let path = format!("/v2/{name}/blobs/uploads/");
        let response = op.exchange(&request(Method::Post, path.clone(), scope, "start upload"))?;
        match response.status().as_u16() {
            202 => Ok(self.location(&response, &path, "start upload")?),
            _ => Err(self.transport.failure(response, "start upload").into()),
        }
    }

    /// Asks the registry to link a blob from another repository; `None` when mounted,
    /// otherwise the upload session the registry opened instead.
    fn mount(
        &self,
        op: &mut Operation<'_>,
        target: &str,
        source: &str,
        digest: &Digest,
    ) -> Result<Option<String>, Failure> {
        let scope = Scope::mount(target, source);
        let path = format!("/v2/{target}/blobs/uploads/?mount={digest}&from={source}");
        let response = op.exchange(&request(Method::Post, path.clone(), &scope, "mount blob"))?;
        match response.status().as_u16() {
            201 => Ok(None),
            202 => Ok(Some(self.location(&response, &path, "mount blob")?)),
            _ => Err(self.transport.failure(response, "mount blob").into()),
        }
    }

    /// Makes a blob of `source_name` (in `source`, which may be this registry) exist in
    /// `target`: nothing if it is there, a mount within one registry, else a copy through a
    /// temporary file (downloaded and checked first, then uploaded).
    pub fn copy_blob(
        &self,
        source: &RegistryClient,
        source_name: &str,
        target: &str,
        blob: &Descriptor,
    ) -> Result<(), Error> {
        let scope = Scope::push(target);
        let mut session = None;
        {
            let mut op = self.transport.operation("copy blob", Duration::ZERO);
            if self.exists_in(&mut op, target, &blob.digest, &scope)? {
                return Ok(());
            }
            if source.registry() == self.registry() {
                match op.run(|op| self.mount(op, target, source_name, &blob.digest))? {
                    None => return Ok(()),
                    Some(location) => session = Some(location),
                }
            }
        }
        let mut file = tempfile::tempfile().map_err(|source| Error::Write {
            what: format!("a temporary file for blob {}", blob.digest),
            source,
        })?;
        source.download_blob(source_name, blob, &mut file)?;
        let mut op = self
            .transport
            .operation("upload blob", self.allowance(blob.size));
        let body = Body::File(&file, blob.size);
        self.upload_in(&mut op, target, &blob.digest, body, &scope, session)
    }

    /// The `Location` of an answer to a request for `path`, as an absolute URL.
    fn location(
        &self,
        response: &ureq::http::Response<ureq::Body>,
        path: &str,
        step: &str,
    ) -> Result<String, Error> {
        let location = header(response, "location").ok_or_else(|| {
            self.transport
                .error(step, "the registry opened an upload but gave no Location")
        })?;
        let base = self.transport.absolute(path)?;
        join_url(&base, &location).map_err(|message| self.transport.error(step, message))
    }

    /// The time a blob of `size` bytes may add to its operation's deadline.
    fn allowance(&self, size: u64) -> Duration {
        if self.min_blob_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(size as f64 / self.min_blob_rate as f64)
    }
}

/// Where a blob download goes: memory (small blobs) or a file.
trait BlobSink {
    /// Empties the sink, for a download started over.
    fn reset(&mut self) -> std::io::Result<()>;
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()>;
}

impl BlobSink for Vec<u8> {
    fn reset(&mut self) -> std::io::Result<()> {
        self.clear();
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

impl BlobSink for std::fs::File {
    fn reset(&mut self) -> std::io::Result<()> {
        self.set_len(0)?;
        self.rewind()
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes)
    }
}

fn with_digest_param(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}
