//! OCI 1.1 referrers: documents (signatures, SBOMs, provenance) attached to an image manifest
//! by an artifact manifest whose `subject` names it. The one way this crate attaches, lists
//! and copies them: through the registry's referrers API where it has one, else through the
//! referrers tag schema of the distribution spec (the tag `sha256-<hex>` of the subject names
//! an image index listing its referrers, kept by read-modify-write). Copies across
//! repositories carry cosign's `sha256-<hex>.sig`/`.att`/`.sbom` tags along. The requests are
//! `client`'s; what the documents say is `supply`'s.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

use crate::error::Error;
pub use crate::registry::client::artifact_type_of;
use crate::registry::client::{Descriptor, Digest, Manifest, OCI_MANIFEST, Parsed, RegistryClient};
use crate::registry::oci::OCI_INDEX;
use crate::registry::transport::Scope;

/// The media type of the empty descriptor an artifact manifest has for its config.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The empty JSON object the empty descriptor names.
pub const EMPTY: &[u8] = b"{}";

/// The tags cosign keeps beside an image for its older formats: signatures, attestations,
/// SBOMs.
pub const COSIGN_TAG_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// How often the referrers tag is read and written again when another writer got in between.
const TAG_INDEX_ROUNDS: usize = 3;

/// A document to attach to an image: its artifact type, the media type of its one layer,
/// its bytes, and the artifact manifest's annotations.
#[derive(Clone, PartialEq, Eq)]
pub struct Artifact {
    pub artifact_type: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Artifact")
            .field("artifact_type", &self.artifact_type)
            .field("media_type", &self.media_type)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .field("annotations", &self.annotations)
            .finish()
    }
}

impl Artifact {
    /// The artifact manifest that attaches this document to `subject`: an image manifest
    /// with `artifactType`, the empty config, one layer and `subject`. The same document
    /// attached to the same subject always gives the same bytes, so attaching twice is
    /// attaching once.
    pub fn manifest(&self, subject: &Descriptor) -> Manifest {
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": self.artifact_type,
            "config": {
                "mediaType": EMPTY_MEDIA_TYPE,
                "digest": Digest::of(EMPTY),
                "size": EMPTY.len(),
                "data": "e30=",
            },
            "layers": [{
                "mediaType": self.media_type,
                "digest": Digest::of(&self.bytes),
                "size": self.bytes.len(),
            }],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": subject.size,
            },
        });
        if !self.annotations.is_empty() {
            manifest["annotations"] = json!(self.annotations);
        }
        let bytes = serde_json::to_vec(&manifest).expect("a manifest always serialises");
        Manifest::new(bytes, OCI_MANIFEST)
    }
}

/// The tag of the referrers tag schema for `subject`: `sha256-<hex>`.
pub fn tag_of(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// The descriptor of an artifact manifest as a referrers list gives it: with its
/// `artifactType` and annotations.
fn descriptor_of(manifest: &Manifest, artifact: &Artifact) -> Descriptor {
    let mut other = serde_json::Map::new();
    other.insert("artifactType".into(), json!(artifact.artifact_type));
    Descriptor {
        media_type: manifest.media_type.clone(),
        digest: manifest.digest.clone(),
        size: manifest.bytes.len() as u64,
        urls: Vec::new(),
        platform: None,
        annotations: artifact.annotations.clone(),
        other,
    }
}

/// What `attach` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Attached {
    /// The artifact manifest's descriptor.
    pub descriptor: Descriptor,
    /// It was attached already (the same document to the same image): nothing was sent.
    pub already: bool,
}

/// Attaches `artifact` to `subject` in repository `name`: `attach_all` for one document.
pub fn attach(
    client: &RegistryClient,
    name: &str,
    subject: &Descriptor,
    artifact: &Artifact,
) -> Result<Attached, Error> {
    let document = [(subject.clone(), artifact.clone())];
    let mut attached = attach_all(client, name, &document, Expect::Either)?;
    Ok(attached.remove(0))
}

/// Attaches each document to its subject in repository `name`: the blobs, the artifact
/// manifest by digest, and, unless the registry answers that it keeps referrers itself
/// (`OCI-Subject`), an entry in the subject's referrers tag index. A document attached
/// already (the same document to the same image) adds nothing. In as few round trips as the
/// spec allows, because a build waits for them before any tag moves: each subject's
/// referrers are read once (with `Expect::New`, while the blobs go up), then the blobs,
/// all at once, then the artifact manifests, then each referrers tag is written once for all
/// its new entries and, unless it is a new image's, read back. What was done for each
/// document, in order.
pub fn attach_all(
    client: &RegistryClient,
    name: &str,
    documents: &[(Descriptor, Artifact)],
    expect: Expect,
) -> Result<Vec<Attached>, Error> {
    let manifests: Vec<Manifest> = documents.iter().map(|(s, a)| a.manifest(s)).collect();
    // The subjects, each once, and for each document the position of its subject there.
    let mut subjects: Vec<&Digest> = Vec::new();
    let slots: Vec<usize> = documents
        .iter()
        .map(
            |(subject, _)| match subjects.iter().position(|s| **s == subject.digest) {
                Some(slot) => slot,
                None => {
                    subjects.push(&subject.digest);
                    subjects.len() - 1
                }
            },
        )
        .collect();
    let all: Vec<usize> = (0..documents.len()).collect();
    let upload = |which: &[usize]| upload_blobs(client, name, documents, which);
    let read = |subject: &&Digest| Listing::read(client, name, subject);
    let listings = match expect {
        Expect::Either => concurrently(&subjects, read)?,
        Expect::New => {
            let (listings, uploaded) = std::thread::scope(|scope| {
                let uploaded = scope.spawn(|| upload(&all));
                let listings = concurrently(&subjects, read);
                let uploaded = uploaded.join().unwrap_or_else(|_| Err(thread_panicked()));
                (listings, uploaded)
            });
            uploaded?;
            listings?
        }
    };
    let attached: Vec<Attached> = (0..documents.len())
        .map(|i| Attached {
            descriptor: descriptor_of(&manifests[i], &documents[i].1),
            already: listings[slots[i]]
                .entries
                .iter()
                .any(|d| d.digest == manifests[i].digest),
        })
        .collect();
    let pending: Vec<usize> = all.into_iter().filter(|&i| !attached[i].already).collect();
    if pending.is_empty() {
        return Ok(attached);
    }
    if expect == Expect::Either {
        upload(&pending)?;
    }
    let put = |&i: &usize| client.put_manifest_by_digest(name, &manifests[i]);
    // A registry with the referrers API updates its list of a subject's referrers on each
    // PUT, and may lose an entry to PUTs racing on one subject (olareg does): one at a time
    // there. Without the API the list is the referrers tag, written once below.
    let answers = match listings.iter().all(|l| l.tag_index.is_none()) {
        true => pending.iter().map(put).collect::<Result<Vec<_>, _>>()?,
        false => concurrently(&pending, put)?,
    };
    // Per subject, the entries its referrers tag lacks: those the registry did not take
    // note of itself.
    let mut updates: Vec<(usize, Vec<Descriptor>)> = Vec::new();
    for (&i, answer) in pending.iter().zip(answers) {
        if answer.as_ref() == Some(subjects[slots[i]]) {
            continue;
        }
        let entry = attached[i].descriptor.clone();
        match updates.iter_mut().find(|(slot, _)| *slot == slots[i]) {
            Some((_, entries)) => entries.push(entry),
            None => updates.push((slots[i], vec![entry])),
        }
    }
    concurrently(&updates, |(slot, entries)| {
        let read = listings[*slot].tag_index.clone();
        // A new image's referrers tag, missing a moment ago, has no writers but runs of its
        // own commit, which attach the same bytes: whichever index wins lists them all, so
        // reading it back would protect nothing. Anywhere else, another writer may have
        // been adding something else.
        let read_back = expect == Expect::Either || !matches!(read, Some(None));
        add_to_tag_index(client, name, subjects[*slot], entries, read, read_back)
    })?;
    Ok(attached)
}

/// What `attach_all` may assume of the documents it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Made for an image just built, so almost never attached already: their blobs go up
    /// while the referrers are read, which saves a round trip.
    New,
    /// Perhaps attached already (signing an image found by its lookup tag): blobs go up
    /// only for what the referrers lack.
    Either,
}

/// Uploads, all at once, the empty config (unless the repository has it) and the blobs of
/// the documents numbered `which`. Each document is new as a rule, so it is sent without
/// asking first, which would cost a round trip to save one.
fn upload_blobs(
    client: &RegistryClient,
    name: &str,
    documents: &[(Descriptor, Artifact)],
    which: &[usize],
) -> Result<(), Error> {
    let mut blobs: Vec<&[u8]> = vec![EMPTY];
    for &i in which {
        let bytes = documents[i].1.bytes.as_slice();
        if !blobs.contains(&bytes) {
            blobs.push(bytes);
        }
    }
    concurrently(&blobs, |bytes| {
        let digest = Digest::of(bytes);
        if *bytes == EMPTY {
            client.upload_blob(name, digest.as_str(), bytes)
        } else {
            client.upload_new_blob(name, digest.as_str(), bytes)
        }
    })?;
    Ok(())
}

/// The referrers of one subject as read before attaching to it.
struct Listing {
    /// From the referrers API, or else from the referrers tag.
    entries: Vec<Descriptor>,
    /// What reading the referrers tag gave, where the registry has no API: the index (none
    /// without the tag), to add to.
    tag_index: Option<Option<(Value, Vec<Descriptor>)>>,
}

impl Listing {
    /// Asks the referrers API and, where the registry has none (404), reads the referrers
    /// tag: never touched on a registry with the API. A build's batch does this while its
    /// blobs go up, which takes as many round trips.
    fn read(client: &RegistryClient, name: &str, subject: &Digest) -> Result<Listing, Error> {
        if let Some(entries) = client.referrers_api(name, subject, None)? {
            return Ok(Listing {
                entries,
                tag_index: None,
            });
        }
        let tag = read_tag_index(client, name, subject)?;
        Ok(Listing {
            entries: tag.as_ref().map(|(_, e)| e.clone()).unwrap_or_default(),
            tag_index: Some(tag),
        })
    }
}

/// `f` of each item, each on a thread of its own (a handful of small requests, so the round
/// trips overlap), in order; the first error, if any.
fn concurrently<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, Error> + Sync,
) -> Result<Vec<R>, Error> {
    if items.len() < 2 {
        return items.iter().map(&f).collect();
    }
    std::thread::scope(|scope| {
        let threads: Vec<_> = items.iter().map(|item| scope.spawn(|| f(item))).collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err(thread_panicked())))
            .collect()
    })
}

fn thread_panicked() -> Error {
    Error::Internal("a thread sending requests to the registry panicked".to_owned())
}

/// The referrers of `subject` in `name`, only those of `artifact_type` when given: from the
/// referrers API, or from the referrers tag where the registry has no API (none when the tag
/// does not exist).
pub fn list(
    client: &RegistryClient,
    name: &str,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>, Error> {
    if let Some(found) = client.referrers_api(name, subject, artifact_type)? {
        return Ok(found);
    }
    list_from_tag(client, name, subject, artifact_type)
}

/// The referrers of `subject` listed by its referrers tag only (none without the tag): for a
/// caller that knows the registry has no referrers API.
pub fn list_from_tag(
    client: &RegistryClient,
    name: &str,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>, Error> {
    let Some((_, entries)) = read_tag_index(client, name, subject)? else {
        return Ok(Vec::new());
    };
    Ok(entries
        .into_iter()
        .filter(|d| artifact_type.is_none_or(|kind| artifact_type_of(d) == Some(kind)))
        .collect())
}

/// The referrers tag index of `subject`, if the tag exists: its JSON and its entries.
fn read_tag_index(
    client: &RegistryClient,
    name: &str,
    subject: &Digest,
) -> Result<Option<(Value, Vec<Descriptor>)>, Error> {
    let tag = tag_of(subject);
    let Some(manifest) = client.find_manifest(name, &tag, &Scope::pull(name))? else {
        return Ok(None);
    };
    let not_an_index = |detail: String| Error::Registry {
        registry: client.registry().to_owned(),
        step: "list referrers".to_owned(),
        message: format!(
            "the referrers tag {name}:{tag} names no image index ({detail}); delete that tag so it can be written again"
        ),
    };
    let Ok(Parsed::Index(index)) = manifest.parse() else {
        return Err(not_an_index(format!(
            "its media type is {}",
            crate::error::quote_external(&manifest.media_type)
        )));
    };
    let value: Value =
        serde_json::from_slice(&manifest.bytes).map_err(|e| not_an_index(e.to_string()))?;
    Ok(Some((value, index.manifests)))
}

/// Adds `descriptors` to the referrers tag index of `subject` (made when missing), each
/// unless it is listed there, and, with `read_back`, reads it back until a read shows them
/// all, in case another writer replaced it meanwhile. `read`: the tag as read a moment ago,
/// if it was; the first round adds to that instead of reading again.
///
/// An index that lists a manifest the repository no longer has (a deleted referrer, or a
/// descriptor planted by something between) is refused by registries that check what an
/// index names, on every write. When a write is refused, the entries are looked up, those
/// missing are dropped, and the index is written again without them, as the distribution
/// spec's fallback procedure keeps the index to the referrers that exist. An error left is
/// the referrers tag's, never a retag's.
fn add_to_tag_index(
    client: &RegistryClient,
    name: &str,
    subject: &Digest,
    descriptors: &[Descriptor],
    mut read: Option<Option<(Value, Vec<Descriptor>)>>,
    read_back: bool,
) -> Result<(), Error> {
    let tag = tag_of(subject);
    let missing_from = |entries: &[Descriptor]| -> Vec<Descriptor> {
        descriptors
            .iter()
            .filter(|d| !entries.iter().any(|e| e.digest == d.digest))
            .cloned()
            .collect()
    };
    let unwritable = |err: Error| {
        let detail = match err {
            Error::Registry { message, .. } => message,
            other => other.to_string(),
        };
        Error::Registry {
            registry: client.registry().to_owned(),
            step: "attach".to_owned(),
            message: format!(
                "cannot write the referrers tag index {name}:{tag}: {detail}; check what it lists (`crane manifest`), or delete that tag so it can be written again"
            ),
        }
    };
    let mut healed = false;
    for round in 1..=TAG_INDEX_ROUNDS {
        let current = match read.take() {
            Some(current) => current,
            None => read_tag_index(client, name, subject)?,
        };
        let (mut index, entries) = current.unwrap_or_else(|| {
            (
                json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
                Vec::new(),
            )
        });
        let missing = missing_from(&entries);
        if missing.is_empty() {
            return Ok(());
        }
        let added = missing
            .iter()
            .map(|d| serde_json::to_value(d).expect("a descriptor always serialises"));
        match index.get_mut("manifests").and_then(Value::as_array_mut) {
            Some(manifests) => manifests.extend(added),
            None => index["manifests"] = Value::Array(added.collect()),
        }
        let bytes = serde_json::to_vec(&index).expect("an index always serialises");
        let manifest = Manifest::new(bytes, OCI_INDEX);
        match client.put_manifest(name, &tag, &manifest, &Scope::push(name)) {
            Ok(()) if !read_back => return Ok(()),
            Ok(()) => {}
            Err(err @ Error::Registry { .. }) if !healed && !entries.is_empty() => {
                healed = true;
                let existing = existing_entries(client, name, &entries)?;
                if existing.len() == entries.len() {
                    if round == TAG_INDEX_ROUNDS {
                        return Err(unwritable(err));
                    }
                    // Nothing dangles: another writer got in between; the next round reads
                    // what won and adds to it.
                    continue;
                }
                let mut pruned = index.clone();
                pruned["manifests"] = Value::Array(
                    existing
                        .iter()
                        .map(|d| serde_json::to_value(d).expect("a descriptor always serialises"))
                        .collect(),
                );
                read = Some(Some((pruned, existing)));
            }
            // Writers racing on one tag can make the registry refuse one of them; the next
            // round reads what won and adds to it.
            Err(Error::Registry { .. }) if round < TAG_INDEX_ROUNDS => {}
            Err(err) => return Err(unwritable(err)),
        }
    }
    let (_, entries) = read_tag_index(client, name, subject)?.unwrap_or_default();
    let Some(lost) = missing_from(&entries).into_iter().next() else {
        return Ok(());
    };
    Err(Error::Registry {
        registry: client.registry().to_owned(),
        step: "attach".to_owned(),
        message: format!(
            "the referrers tag {name}:{tag} kept changing while {} was added to it; try again",
            lost.digest
        ),
    })
}

/// The entries of a referrers tag index whose manifests the repository has, in order: one
/// `HEAD` each, at once.
fn existing_entries(
    client: &RegistryClient,
    name: &str,
    entries: &[Descriptor],
) -> Result<Vec<Descriptor>, Error> {
    let scope = Scope::pull(name);
    let found = concurrently(entries, |entry| {
        client.manifest_digest(name, entry.digest.as_str(), &scope)
    })?;
    Ok(entries
        .iter()
        .zip(found)
        .filter(|(_, found)| found.is_some())
        .map(|(entry, _)| entry.clone())
        .collect())
}

/// What `copy` brought over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Copied {
    /// The referrers copied (artifact manifests and their blobs).
    pub referrers: Vec<Descriptor>,
    /// Cosign's tags copied (`sha256-<hex>.sig`, `.att`, `.sbom`).
    pub tags: Vec<String>,
}

impl Copied {
    /// One line for a report: `2 referrers (…), sha256-….sig`, or `none`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.referrers.is_empty() {
            let kinds: Vec<&str> = self
                .referrers
                .iter()
                .map(|d| artifact_type_of(d).unwrap_or("no artifact type"))
                .collect();
            parts.push(format!(
                "{} referrer{} ({})",
                self.referrers.len(),
                if self.referrers.len() == 1 { "" } else { "s" },
                kinds.join(", ")
            ));
        }
        parts.extend(self.tags.iter().cloned());
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Copies what is attached to `subject` in `source_name` (of `source`) into `target_name`
/// here: each referrer with its blobs, listed in the target as the target registry wants
/// (API or referrers tag), and cosign's `.sig`, `.att` and `.sbom` tags with their content.
/// Already there: nothing is written again.
pub fn copy(
    target: &RegistryClient,
    source: &RegistryClient,
    source_name: &str,
    target_name: &str,
    subject: &Digest,
) -> Result<Copied, Error> {
    let mut copied = Copied::default();
    let pull = Scope::pull(source_name);
    let found = list(source, source_name, subject, None)?;
    let present = if found.is_empty() {
        Vec::new()
    } else {
        list(target, target_name, subject, None)?
    };
    // What the target's referrers tag is to list: written once, after every copy.
    let mut unlisted = Vec::new();
    for referrer in found {
        if present.iter().any(|d| d.digest == referrer.digest) {
            copied.referrers.push(referrer);
            continue;
        }
        let manifest = source.get_manifest(source_name, &referrer.digest, &pull)?;
        if let Ok(Parsed::Image(image)) = manifest.parse() {
            for blob in std::iter::once(&image.config).chain(&image.layers) {
                if blob.urls.is_empty() {
                    target.copy_blob(source, source_name, target_name, blob)?;
                }
            }
        } else {
            target.copy_image(source, source_name, &manifest, target_name)?;
        }
        let seen = target.put_manifest_by_digest(target_name, &manifest)?;
        if seen.as_ref() != Some(subject) {
            unlisted.push(referrer.clone());
        }
        copied.referrers.push(referrer);
    }
    if !unlisted.is_empty() {
        add_to_tag_index(target, target_name, subject, &unlisted, None, true)?;
    }
    for suffix in COSIGN_TAG_SUFFIXES {
        let tag = format!("{}.{suffix}", tag_of(subject));
        let Some(manifest) = source.find_manifest(source_name, &tag, &pull)? else {
            continue;
        };
        let push = Scope::push(target_name);
        let there = target.manifest_digest(target_name, &tag, &push)?;
        if there.as_ref() != Some(&manifest.digest) {
            target.copy_image(source, source_name, &manifest, target_name)?;
            target.put_manifest(target_name, &tag, &manifest, &push)?;
        }
        copied.tags.push(tag);
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Descriptor {
        serde_json::from_value(json!({
            "mediaType": OCI_MANIFEST,
            "digest": format!("sha256:{}", "ab".repeat(32)),
            "size": 401,
            "platform": {"os": "linux", "architecture": "amd64"},
        }))
        .unwrap()
    }

    fn artifact() -> Artifact {
        Artifact {
            artifact_type: "application/spdx+json".into(),
            media_type: "application/spdx+json".into(),
            bytes: br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec(),
            annotations: BTreeMap::from([(
                "org.opencontainers.image.created".into(),
                "2026-01-01T00:00:00Z".into(),
            )]),
        }
    }

    #[test]
    fn an_artifact_manifest_follows_the_image_spec() {
        let manifest = artifact().manifest(&subject());
        let value: Value = serde_json::from_slice(&manifest.bytes).unwrap();
        assert_eq!(value["artifactType"], "application/spdx+json");
        assert_eq!(value["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            value["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(value["config"]["size"], 2);
        assert_eq!(value["layers"][0]["size"], 26);
        // The subject is the image's descriptor, without what only an index entry carries.
        assert_eq!(
            value["subject"],
            json!({"mediaType": OCI_MANIFEST, "digest": subject().digest, "size": 401})
        );
        assert_eq!(
            value["annotations"]["org.opencontainers.image.created"],
            "2026-01-01T00:00:00Z"
        );
        // Parsed back as an image manifest, as registries and tools read it.
        assert!(matches!(manifest.parse(), Ok(Parsed::Image(_))));
        assert_eq!(artifact().manifest(&subject()), manifest);
    }

    #[test]
    fn referrers_tags_and_summaries() {
        assert_eq!(
            tag_of(&subject().digest),
            format!("sha256-{}", "ab".repeat(32))
        );
        let manifest = artifact().manifest(&subject());
        let descriptor = descriptor_of(&manifest, &artifact());
        assert_eq!(artifact_type_of(&descriptor), Some("application/spdx+json"));
        let copied = Copied {
            referrers: vec![descriptor],
            tags: vec!["sha256-x.sig".into()],
        };
        assert_eq!(
            copied.summary(),
            "1 referrer (application/spdx+json), sha256-x.sig"
        );
        assert_eq!(Copied::default().summary(), "none");
        assert!(!format!("{:?}", artifact()).contains("SPDX-2.3"));
    }
}
