//! The OCI documents the client exchanges, typed: media types, digests (`sha256:` and 64
//! lowercase hex digits, checked whenever one is read, never defaulted), descriptors, image
//! manifests, indexes, the parts of an image config this crate reads, and `Manifest`, a
//! manifest exactly as a registry stores it. It neither sends nor stores anything: that is
//! `client`'s job.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::quote_external;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest media type, so the registry returns a manifest as stored, never converted.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// What a manifest media type says the document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// One platform's image: a config and layers (OCI or Docker v2 schema 2).
    Image,
    /// An index over manifests (OCI index, Docker manifest list).
    Index,
}

impl ManifestKind {
    /// The kind a media type names; `None` for a media type that is not a manifest's.
    pub fn of_media_type(media_type: &str) -> Option<ManifestKind> {
        match media_type {
            OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
            OCI_INDEX | DOCKER_LIST => Some(ManifestKind::Index),
            _ => None,
        }
    }
}

/// A content digest: `sha256:` and 64 lowercase hexadecimal digits. Other algorithms are
/// refused, since nothing here could check them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a text is not a `Digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestError(String);

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a sha256 digest (sha256: and 64 lowercase hex digits)",
            quote_external(&self.0)
        )
    }
}

impl std::error::Error for DigestError {}

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, DigestError> {
        let hex = text
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64)
            .filter(|hex| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        match hex {
            Some(_) => Ok(Digest(text.to_owned())),
            None => Err(DigestError(text.chars().take(100).collect())),
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new();
        hasher.update(bytes);
        hasher.finish()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits, as a blob's file name in an image layout.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl std::ops::Deref for Digest {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> String {
        digest.0
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// SHA-256 over bytes fed in pieces, for blobs checked while they stream.
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher {
            sha: Sha256::new(),
            len: 0,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes went in.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        let hash = self.sha.finalize();
        let mut text = String::with_capacity(71);
        text.push_str("sha256:");
        for byte in hash {
            text.push_str(&format!("{byte:02x}"));
        }
        Digest(text)
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

/// `sha256:<hex>` of `bytes`, as text.
pub fn sha256_digest(bytes: &[u8]) -> String {
    Digest::of(bytes).into()
}

/// A reference to content: what it is, its digest and its exact size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// Where a foreign layer lives instead of the registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields this crate does not read, kept as they were when a descriptor is written again.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The platform an index entry is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// One platform's image manifest (OCI, or Docker v2 schema 2): a config and layers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// An index over manifests (OCI index, Docker manifest list).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

impl ImageIndex {
    /// The entry for `os`/`architecture`, if the index has one.
    pub fn for_platform(&self, os: &str, architecture: &str) -> Option<&Descriptor> {
        self.manifests.iter().find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == architecture)
        })
    }
}

/// The parts of an image config this crate reads; the rest stays in the blob.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// A manifest exactly as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// A manifest read as what it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Image(Box<ImageManifest>),
    Index(ImageIndex),
}

impl Manifest {
    /// A manifest of `bytes`, its digest computed.
    pub fn new(bytes: Vec<u8>, media_type: &str) -> Manifest {
        Manifest {
            digest: Digest::of(&bytes),
            media_type: media_type.to_owned(),
            bytes,
        }
    }

    /// The manifest as an image or an index: by its media type, or, for a media type that is
    /// not a manifest's, by its shape (an index lists `manifests`).
    pub fn parse(&self) -> Result<Parsed, serde_json::Error> {
        let kind = ManifestKind::of_media_type(&self.media_type).unwrap_or_else(|| {
            #[derive(Deserialize)]
            struct Shape {
                manifests: Option<serde::de::IgnoredAny>,
            }
            match serde_json::from_slice::<Shape>(&self.bytes) {
                Ok(Shape {
                    manifests: Some(_), ..
                }) => ManifestKind::Index,
                _ => ManifestKind::Image,
            }
        });
        match kind {
            ManifestKind::Image => {
                serde_json::from_slice(&self.bytes).map(|image| Parsed::Image(Box::new(image)))
            }
            ManifestKind::Index => serde_json::from_slice(&self.bytes).map(Parsed::Index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn digests_are_sha256_and_64_lowercase_hex_digits() {
        let good = format!("sha256:{HEX}");
        assert_eq!(Digest::parse(&good).unwrap().as_str(), good);
        assert_eq!(Digest::parse(&good).unwrap().hex(), HEX);
        for bad in [
            String::new(),
            "sha256:".to_owned(),
            HEX.to_owned(),
            format!("sha256:{}", HEX.to_uppercase()),
            format!("sha256:{}", &HEX[1..]),
            format!("sha256:{HEX}0"),
            format!("sha512:{HEX}"),
            format!("sha256:{HEX}\n"),
            format!(" sha256:{HEX}"),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad:?}");
        }
        let err = Digest::parse("sha256:x\n::warning::y")
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn streamed_and_whole_hashes_agree() {
        let mut hasher = Hasher::new();
        hasher.update(b"hello ");
        hasher.update(b"world");
        assert_eq!(hasher.len(), 11);
        assert_eq!(hasher.finish(), Digest::of(b"hello world"));
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_descriptor_without_a_digest_is_refused_never_defaulted() {
        let missing = r#"{"schemaVersion":2,"config":{"mediaType":"x","size":1},"layers":[]}"#;
        let manifest = Manifest::new(missing.as_bytes().to_vec(), OCI_MANIFEST);
        let err = manifest.parse().unwrap_err().to_string();
        assert!(err.contains("missing field `digest`"), "{err}");
        let empty = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"","size":1}}"#;
        let manifest = Manifest::new(empty.as_bytes().to_vec(), OCI_MANIFEST);
        assert!(manifest.parse().is_err());
    }

    #[test]
    fn descriptors_keep_the_fields_they_do_not_read() {
        let text = format!(
            r#"{{"mediaType":"m","digest":"sha256:{HEX}","size":3,"urls":["https://x"],"data":"YWJj","artifactType":"t"}}"#
        );
        let descriptor: Descriptor = serde_json::from_str(&text).unwrap();
        assert_eq!(descriptor.urls, ["https://x"]);
        let again = serde_json::to_value(&descriptor).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        );
    }

    #[test]
    fn manifests_parse_as_what_their_media_type_says() {
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{HEX}","size":7,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
        );
        for media_type in [OCI_INDEX, "application/json"] {
            let parsed = Manifest::new(index.clone().into_bytes(), media_type)
                .parse()
                .unwrap();
            let Parsed::Index(index) = parsed else {
                panic!("{media_type}: not an index")
            };
            assert_eq!(index.for_platform("linux", "arm64").unwrap().size, 7);
            assert!(index.for_platform("linux", "amd64").is_none());
        }
    }
}
