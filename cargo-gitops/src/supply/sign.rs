//! Signatures cosign verifies, made without cosign: an ECDSA P-256 key (PEM, PKCS#8 or SEC1,
//! from a file or an environment variable) signs an in-toto statement naming the image's
//! digest, wrapped in a DSSE envelope inside a sigstore bundle (v0.3), attached to the image
//! as an OCI referrer — what `cosign sign` writes by default, and what
//! `cosign verify --key KEY.pub --insecure-ignore-tlog=true` accepts offline. Signing is
//! deterministic (RFC 6979), so signing one digest twice attaches one signature. The key's
//! bytes never leave this module: errors and `Debug` name where it came from, never what it
//! holds. How a referrer is attached is `registry::referrers`'.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::error::Error;
use crate::registry::client::{Descriptor, Digest, RegistryClient};
use crate::registry::referrers::{self, Artifact, Attached, artifact_type_of};

/// The environment variable that holds the signing key's PEM, unless configured otherwise.
pub use crate::config::DEFAULT_SIGNING_KEY_ENV as DEFAULT_KEY_ENV;

/// The artifact type (and layer media type) of a sigstore bundle.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The predicate type cosign gives the statement of an image signature.
pub const SIGNATURE_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const PREDICATE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";

/// Where the signing key comes from. Shown in plans and errors; the key itself never is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable holding the PEM.
    Env(String),
    /// A PEM file.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env(name) => write!(f, "environment variable {name}"),
            KeySource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// An ECDSA P-256 private key, ready to sign.
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
    from: KeySource,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads the key from where `from` says.
    pub fn load(from: &KeySource) -> Result<SigningKey, Error> {
        let text = match from {
            KeySource::Env(name) => match std::env::var(name) {
                Ok(text) if !text.trim().is_empty() => text,
                Ok(_) | Err(std::env::VarError::NotPresent) => {
                    return Err(key_error(
                        from,
                        "it is not set; set it to the PEM of an ECDSA P-256 private key, or pass --signing-key FILE",
                    ));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(key_error(from, "it is not text; set it to a PEM key"));
                }
            },
            KeySource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                key_error(
                    from,
                    &format!(
                        "cannot read it ({}); check the path",
                        e.kind().to_string().to_lowercase()
                    ),
                )
            })?,
        };
        SigningKey::from_pem(&text, from.clone())
    }

    /// A key from PEM text: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`).
    pub fn from_pem(text: &str, from: KeySource) -> Result<SigningKey, Error> {
        let text = text.trim();
        let label = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("-----BEGIN "))
            .and_then(|l| l.strip_suffix("-----"))
            .unwrap_or("");
        let key = match label {
            "PRIVATE KEY" => p256::ecdsa::SigningKey::from_pkcs8_pem(text).map_err(|_| {
                key_error(
                    &from,
                    "it is a PKCS#8 key but not an ECDSA P-256 one; make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`",
                )
            })?,
            "EC PRIVATE KEY" => p256::SecretKey::from_sec1_pem(text)
                .map(p256::ecdsa::SigningKey::from)
                .map_err(|_| {
                    key_error(
                        &from,
                        "it is an EC key but not an unencrypted P-256 one; convert it with `openssl pkcs8 -topk8 -nocrypt`",
                    )
                })?,
            "ENCRYPTED PRIVATE KEY" | "ENCRYPTED SIGSTORE PRIVATE KEY" | "ENCRYPTED COSIGN PRIVATE KEY" => {
                return Err(key_error(
                    &from,
                    "it is encrypted; give the unencrypted PKCS#8 PEM (`openssl pkcs8 -topk8 -nocrypt`) and keep it in a CI secret",
                ));
            }
            _ => {
                return Err(key_error(
                    &from,
                    "it is not a PEM private key (-----BEGIN PRIVATE KEY-----); give an ECDSA P-256 key",
                ));
            }
        };
        Ok(SigningKey { key, from })
    }

    /// Where the key came from.
    pub fn source(&self) -> &KeySource {
        &self.from
    }

    /// The public key as PEM (`BEGIN PUBLIC KEY`), what `cosign verify --key` takes.
    pub fn public_key_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("a P-256 public key always encodes")
    }

    /// The bundle's key hint: the SHA-256 of the public key's DER, in base64.
    pub fn hint(&self) -> String {
        let der = self
            .key
            .verifying_key()
            .to_public_key_der()
            .expect("a P-256 public key always encodes");
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(der.as_bytes()))
    }

    /// An ASN.1 DER ECDSA signature of `message` (SHA-256), deterministic (RFC 6979).
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

fn key_error(from: &KeySource, message: &str) -> Error {
    Error::SigningKey {
        from: from.to_string(),
        message: message.to_owned(),
    }
}

/// DSSE's pre-authentication encoding of a payload: what is actually signed.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The signature of `subject` as an artifact to attach: a sigstore bundle whose DSSE
/// envelope holds an in-toto statement naming the digest. `created` (Unix seconds, the
/// commit's time for a reproducible build) becomes the manifest's creation annotation.
pub fn signature(key: &SigningKey, subject: &Digest, created: Option<u64>) -> Artifact {
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"digest": {"sha256": subject.hex()}}],
        "predicateType": SIGNATURE_PREDICATE,
        "predicate": {},
    });
    let payload = serde_json::to_vec(&statement).expect("a statement always serialises");
    let b64 = &base64::engine::general_purpose::STANDARD;
    let bundle = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.hint()}},
        "dsseEnvelope": {
            "payload": b64.encode(&payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": b64.encode(key.sign(&pae(PAYLOAD_TYPE, &payload)))}],
        },
    });
    let mut annotations = std::collections::BTreeMap::from([
        (
            "dev.sigstore.bundle.content".to_owned(),
            "dsse-envelope".to_owned(),
        ),
        (
            PREDICATE_ANNOTATION.to_owned(),
            SIGNATURE_PREDICATE.to_owned(),
        ),
    ]);
    if let Some(created) = created {
        annotations.insert(
            "org.opencontainers.image.created".to_owned(),
            crate::time::rfc3339(created),
        );
    }
    Artifact {
        artifact_type: BUNDLE_MEDIA_TYPE.to_owned(),
        media_type: BUNDLE_MEDIA_TYPE.to_owned(),
        bytes: serde_json::to_vec(&bundle).expect("a bundle always serialises"),
        annotations,
    }
}

/// Signs the image `subject` of repository `name`: attaches its signature, unless this key
/// signed it already.
pub fn sign(
    client: &RegistryClient,
    name: &str,
    subject: &Descriptor,
    key: &SigningKey,
    created: Option<u64>,
) -> Result<Attached, Error> {
    referrers::attach(
        client,
        name,
        subject,
        &signature(key, &subject.digest, created),
    )
}

/// A public key signatures are verified with: ECDSA P-256, from PEM (`BEGIN PUBLIC KEY`).
#[derive(Debug, Clone)]
pub struct PublicKey {
    key: p256::ecdsa::VerifyingKey,
}

impl PublicKey {
    /// Reads a `BEGIN PUBLIC KEY` PEM; `from` names where it came from, in errors.
    pub fn from_pem(text: &str, from: &str) -> Result<PublicKey, Error> {
        use p256::pkcs8::DecodePublicKey as _;
        p256::ecdsa::VerifyingKey::from_public_key_pem(text.trim())
            .map(|key| PublicKey { key })
            .map_err(|_| {
                Error::usage(format!(
                    "{from} is not an ECDSA P-256 public key PEM (-----BEGIN PUBLIC KEY-----); make one with `openssl pkey -in signing.pem -pubout`"
                ))
            })
    }

    /// A key from its SubjectPublicKeyInfo DER (a certificate's, a transparency log's).
    pub fn from_der(der: &[u8]) -> Option<PublicKey> {
        use p256::pkcs8::DecodePublicKey as _;
        p256::ecdsa::VerifyingKey::from_public_key_der(der)
            .ok()
            .map(|key| PublicKey { key })
    }

    /// Whether `signature` (ASN.1 DER) is this key's ECDSA signature over `message`'s SHA-256.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| self.key.verify(message, &sig).is_ok())
    }

    /// The public half of a signing key.
    pub fn of(key: &SigningKey) -> PublicKey {
        PublicKey {
            key: *key.key.verifying_key(),
        }
    }
}

/// Why a sigstore bundle does not vouch for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// Not a DSSE bundle this crate reads (a message signature, a certificate only).
    Unreadable(String),
    /// The signature does not verify with the key.
    OtherKey,
    /// It verifies, but its statement names another image.
    OtherDigest(String),
}

/// Checks a sigstore bundle (v0.3, a DSSE envelope holding an in-toto statement, as this
/// module and `cosign sign` v3 write it) against `key` and the image `subject`: the
/// envelope's signature over DSSE's pre-authentication encoding, then the statement's
/// subject and predicate type. Offline: no transparency log entry is looked for.
pub fn verify_bundle(bytes: &[u8], key: &PublicKey, subject: &Digest) -> Result<(), Unverified> {
    use p256::ecdsa::signature::Verifier as _;
    let unreadable = |what: &str| Unverified::Unreadable(what.to_owned());
    let bundle: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| unreadable("the bundle is not JSON"))?;
    let envelope = bundle
        .get("dsseEnvelope")
        .ok_or_else(|| unreadable("the bundle holds no DSSE envelope"))?;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let payload_type = envelope["payloadType"].as_str().unwrap_or_default();
    let payload = envelope["payload"]
        .as_str()
        .and_then(|p| b64.decode(p).ok())
        .ok_or_else(|| unreadable("the envelope's payload is not base64"))?;
    let message = pae(payload_type, &payload);
    let verified = envelope["signatures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["sig"].as_str().and_then(|sig| b64.decode(sig).ok()))
        .filter_map(|der| p256::ecdsa::Signature::from_der(&der).ok())
        .any(|sig| key.key.verify(&message, &sig).is_ok());
    if !verified {
        return Err(Unverified::OtherKey);
    }
    if payload_type != PAYLOAD_TYPE {
        return Err(unreadable(
            "the envelope does not hold an in-toto statement",
        ));
    }
    let statement: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|_| unreadable("the signed statement is not JSON"))?;
    if statement["predicateType"] != SIGNATURE_PREDICATE {
        return Err(unreadable("the signed statement is not an image signature"));
    }
    let names: Vec<&str> = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["digest"]["sha256"].as_str())
        .collect();
    if names.contains(&subject.hex()) {
        Ok(())
    } else {
        Err(Unverified::OtherDigest(
            names
                .first()
                .map_or_else(String::new, |n| format!("sha256:{n}")),
        ))
    }
}

/// Whether images of one repository have a cosign signature: a `sha256-<hex>.sig` tag, or
/// a sigstore bundle referrer not marked as another kind of attestation. Present, not
/// verified: `cosign verify` does that. Reads the repository's tag list once, asks for
/// referrers through the API until the registry shows it has none, then reads a referrers
/// tag only where one exists.
pub struct Signatures<'a> {
    client: &'a RegistryClient,
    name: &'a str,
    tags: std::collections::HashSet<String>,
    api: Option<bool>,
}

impl<'a> Signatures<'a> {
    /// `tags`: the repository's tags, as listed.
    pub fn new(client: &'a RegistryClient, name: &'a str, tags: &[String]) -> Signatures<'a> {
        Signatures {
            client,
            name,
            tags: tags.iter().cloned().collect(),
            api: None,
        }
    }

    /// Whether the image `subject` is signed.
    pub fn signed(&mut self, subject: &Digest) -> Result<bool, Error> {
        if self.has_signature_tag(subject) {
            return Ok(true);
        }
        Ok(self.referrers(subject)?.iter().any(is_signature))
    }

    /// Whether cosign's older `sha256-<hex>.sig` tag of `subject` is listed.
    pub fn has_signature_tag(&self, subject: &Digest) -> bool {
        self.tags
            .contains(&format!("{}.sig", referrers::tag_of(subject)))
    }

    /// The referrers of `subject`: from the API while the registry has one, else from its
    /// referrers tag where that tag is listed (none otherwise, without a request).
    pub fn referrers(&mut self, subject: &Digest) -> Result<Vec<Descriptor>, Error> {
        if self.api != Some(false) {
            match self.client.referrers_api(self.name, subject, None)? {
                Some(found) => {
                    self.api = Some(true);
                    return Ok(found);
                }
                None => self.api = Some(false),
            }
        }
        if !self.tags.contains(&referrers::tag_of(subject)) {
            return Ok(Vec::new());
        }
        referrers::list_from_tag(self.client, self.name, subject, None)
    }
}

/// A sigstore bundle referrer that is a signature (or says nothing of its predicate).
pub fn is_signature(descriptor: &Descriptor) -> bool {
    artifact_type_of(descriptor)
        .is_some_and(|t| t.starts_with("application/vnd.dev.sigstore.bundle"))
        && descriptor
            .annotations
            .get(PREDICATE_ANNOTATION)
            .is_none_or(|p| p == SIGNATURE_PREDICATE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier as _;
    use p256::pkcs8::EncodePrivateKey as _;

    // A throwaway key made with `openssl genpkey -algorithm EC -pkeyopt
    // ec_paramgen_curve:P-256` for these tests only.
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUtBMO3c44pKoDGhU
NlVAIf3A/BfhTRpVMgYlS5IaJuyhRANCAARvv8LBo2xls/hGGO2II30wNHNN3ezM
IZUAK73yjJ7GumssVSZi8ov33upzN6qRAfVpFLDjqWgaCKA7kXRCZZdN
-----END PRIVATE KEY-----
";

    fn key() -> SigningKey {
        SigningKey::from_pem(PKCS8, KeySource::Env("TEST_KEY".into())).unwrap()
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("application/vnd.in-toto+json", b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
        );
    }

    #[test]
    fn a_signature_verifies_and_is_deterministic() {
        let key = key();
        let digest = Digest::of(b"image");
        let artifact = signature(&key, &digest, Some(0));
        assert_eq!(artifact, signature(&key, &digest, Some(0)));
        let bundle: serde_json::Value = serde_json::from_slice(&artifact.bytes).unwrap();
        let b64 = &base64::engine::general_purpose::STANDARD;
        let envelope = &bundle["dsseEnvelope"];
        let payload = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
        let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(statement["subject"][0]["digest"]["sha256"], digest.hex());
        let sig = b64
            .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        let sig = p256::ecdsa::Signature::from_der(&sig).unwrap();
        key.key
            .verifying_key()
            .verify(&pae(PAYLOAD_TYPE, &payload), &sig)
            .unwrap();
        assert_eq!(
            artifact.annotations["org.opencontainers.image.created"],
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn bad_keys_say_where_they_came_from_and_never_what_they_hold() {
        let from = KeySource::File("/secrets/key.pem".into());
        for text in [
            "not a key at all SECRETSTUFF",
            "-----BEGIN PRIVATE KEY-----\nU0VDUkVUU1RVRkY=\n-----END PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nU0VDUkVU\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----",
        ] {
            let err = SigningKey::from_pem(text, from.clone()).unwrap_err();
            let shown = err.to_string();
            assert!(shown.starts_with("cannot sign with the key from file /secrets/key.pem: "));
            assert!(
                !shown.contains("SECRET") && !shown.contains("U0VD"),
                "{shown}"
            );
            assert_eq!(err.exit_code(), crate::exit_codes::USAGE);
        }
        let debug = format!("{:?}", key());
        assert!(
            !debug.contains("MIGH") && debug.contains("TEST_KEY"),
            "{debug}"
        );
    }

    #[test]
    fn bundles_verify_only_with_their_key_and_for_their_digest() {
        let key = key();
        let digest = Digest::of(b"image");
        let bundle = signature(&key, &digest, None).bytes;
        let public = PublicKey::of(&key);
        assert_eq!(verify_bundle(&bundle, &public, &digest), Ok(()));
        // The genuine signature on another image: it names the first one.
        let other = Digest::of(b"other image");
        assert_eq!(
            verify_bundle(&bundle, &public, &other),
            Err(Unverified::OtherDigest(digest.to_string()))
        );
        // Another key's public half does not verify it.
        let stranger = PublicKey::from_pem(
            &SigningKey::from_pem(
                &p256::SecretKey::from_slice(&[7u8; 32])
                    .unwrap()
                    .to_pkcs8_pem(LineEnding::LF)
                    .unwrap(),
                KeySource::Env("K".into()),
            )
            .unwrap()
            .public_key_pem(),
            "a test key",
        )
        .unwrap();
        assert_eq!(
            verify_bundle(&bundle, &stranger, &digest),
            Err(Unverified::OtherKey)
        );
        // A payload changed after signing fails too.
        let mut tampered: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
        let b64 = &base64::engine::general_purpose::STANDARD;
        let forged = serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": [{"digest": {"sha256": other.hex()}}],
            "predicateType": SIGNATURE_PREDICATE,
            "predicate": {},
        });
        tampered["dsseEnvelope"]["payload"] = b64.encode(forged.to_string()).into();
        let tampered = serde_json::to_vec(&tampered).unwrap();
        assert_eq!(
            verify_bundle(&tampered, &public, &other),
            Err(Unverified::OtherKey)
        );
        assert!(PublicKey::from_pem("nope", "file x.pub").is_err());
    }

    #[test]
    fn sec1_keys_are_read_too() {
        let sec1 = p256::SecretKey::from_pkcs8_pem(PKCS8)
            .unwrap()
            .to_sec1_pem(LineEnding::LF)
            .unwrap();
        let from_sec1 = SigningKey::from_pem(&sec1, KeySource::Env("K".into())).unwrap();
        assert_eq!(from_sec1.public_key_pem(), key().public_key_pem());
        assert_eq!(from_sec1.hint(), key().hint());
    }
}
