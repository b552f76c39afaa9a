//! Keyless signatures verified offline against a Sigstore trusted root: a sigstore bundle
//! whose verification material is a Fulcio certificate. The certificate must chain to one of
//! the trusted root's certificate authorities, name the expected identity and OIDC issuer, and
//! have been valid when the transparency log took the entry. The entry itself is checked
//! three ways: the log's signed promise (SET), its inclusion proof up to a checkpoint the log
//! signed, and its body, which must record this very envelope. What the envelope signs is
//! `sign`'s to check; the certificate's embedded SCTs are not checked (the log entry is).

use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{self, Decode as _, Encode as _};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::error::Error;
use crate::supply::sign::PublicKey;

/// Fulcio's OIDC issuer extension (a DER UTF8String), and its first form (raw text).
const ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// What a keyless signature must name.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate's subject (a SAN URI or e-mail) must match this, whole.
    pub identity: regex::Regex,
    /// The OIDC issuer that vouched for the identity, exactly.
    pub issuer: String,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        self.identity.as_str() == other.identity.as_str() && self.issuer == other.issuer
    }
}

impl Eq for Identity {}

/// Why a keyless bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No certificate authority of the trusted root issued the certificate.
    Untrusted(String),
    /// The certificate names someone else.
    OtherIdentity(String),
    /// The transparency log entry is missing or does not check out.
    Log(String),
    /// The bundle cannot be read as a keyless bundle.
    Unreadable(String),
}

/// A Sigstore trusted root (`trusted_root.json`, as `cosign trusted-root create` writes it and
/// `cosign verify --trusted-root` reads it): the certificate authorities and transparency
/// logs a keyless signature is checked against.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    authorities: Vec<Authority>,
    logs: Vec<Log>,
}

#[derive(Debug, Clone)]
struct Authority {
    /// Issuer first, root last, each as DER.
    chain: Vec<Vec<u8>>,
    valid: (u64, Option<u64>),
}

#[derive(Debug, Clone)]
struct Log {
    key_id: Vec<u8>,
    key: PublicKey,
    key_der: Vec<u8>,
    valid: (u64, Option<u64>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    cert_chain: RawChain,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    public_key: RawLogKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogKey {
    raw_bytes: String,
    key_details: Option<String>,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawValidity {
    start: Option<String>,
    end: Option<String>,
}

fn b64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

impl TrustedRoot {
    /// Reads `path`; an error names the file and what is wrong with it.
    pub fn read(path: &Path) -> Result<TrustedRoot, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            what: format!("the Sigstore trusted root {}", path.display()),
            source,
        })?;
        TrustedRoot::parse(&bytes).map_err(|message| {
            Error::usage(format!(
                "{} is not a Sigstore trusted root: {message}; use the trusted_root.json of Sigstore's TUF repository, or one `cosign trusted-root create` wrote",
                path.display()
            ))
        })
    }

    pub fn parse(bytes: &[u8]) -> Result<TrustedRoot, String> {
        let raw: RawRoot =
            serde_json::from_slice(bytes).map_err(|e| format!("not its JSON ({e})"))?;
        let validity = |v: &Option<RawValidity>| -> Result<(u64, Option<u64>), String> {
            let time = |t: &Option<String>| {
                t.as_deref()
                    .map(|t| crate::time::parse_rfc3339(t).ok_or(format!("`{t}` is not a time")))
                    .transpose()
            };
            Ok(match v {
                Some(v) => (time(&v.start)?.unwrap_or(0), time(&v.end)?),
                None => (0, None),
            })
        };
        let mut authorities = Vec::new();
        for authority in &raw.certificate_authorities {
            let chain = authority
                .cert_chain
                .certificates
                .iter()
                .map(|c| b64(&c.raw_bytes).ok_or("a certificate is not base64".to_owned()))
                .collect::<Result<Vec<_>, _>>()?;
            for der in &chain {
                Certificate::from_der(der).map_err(|e| {
                    format!("a certificate authority's certificate is not DER: {e}")
                })?;
            }
            if chain.is_empty() {
                return Err("a certificate authority has no certificate".to_owned());
            }
            authorities.push(Authority {
                chain,
                valid: validity(&authority.valid_for)?,
            });
        }
        let mut logs = Vec::new();
        for log in &raw.tlogs {
            if let Some(details) = &log.public_key.key_details
                && details != "PKIX_ECDSA_P256_SHA_256"
            {
                // Logs with other keys (Ed25519) are not read; those signed with P-256 are.
                continue;
            }
            let key_der =
                b64(&log.public_key.raw_bytes).ok_or("a log key is not base64".to_owned())?;
            let key = PublicKey::from_der(&key_der)
                .ok_or("a log key is not an ECDSA P-256 public key".to_owned())?;
            logs.push(Log {
                key_id: b64(&log.log_id.key_id).ok_or("a log id is not base64".to_owned())?,
                key,
                key_der,
                valid: validity(&log.public_key.valid_for)?,
            });
        }
        if authorities.is_empty() {
            return Err("it lists no certificate authority".to_owned());
        }
        Ok(TrustedRoot { authorities, logs })
    }
}

/// What a verified keyless bundle says: who signed, and the leaf's key that verifies the
/// envelope.
#[derive(Debug, Clone)]
pub struct Signer {
    pub identity: String,
    pub issuer: String,
    pub key: PublicKey,
}

/// Checks the keyless material of `bundle` (already parsed) against `root` and `expected`,
/// and returns the key the envelope must verify with.
pub fn verify(
    bundle: &serde_json::Value,
    root: &TrustedRoot,
    expected: &Identity,
) -> Result<Signer, Refused> {
    let unreadable = |what: &str| Refused::Unreadable(what.to_owned());
    let material = &bundle["verificationMaterial"];
    let leaf_b64 = material["certificate"]["rawBytes"]
        .as_str()
        .or_else(|| material["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str())
        .ok_or_else(|| unreadable("the bundle holds no certificate (it is not keyless)"))?;
    let leaf_der = b64(leaf_b64).ok_or_else(|| unreadable("the certificate is not base64"))?;
    let leaf = Certificate::from_der(&leaf_der)
        .map_err(|_| unreadable("the certificate is not DER X.509"))?;
    let entry = Entry::of(bundle, &leaf_der)?;
    let validity = leaf.tbs_certificate().validity();
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    let authority = root
        .authorities
        .iter()
        .find(|a| issued_by(&leaf, &a.chain) && within(entry.time, a.valid))
        .ok_or_else(|| {
            Refused::Untrusted(
                "its certificate was not issued by a certificate authority of the trusted root"
                    .to_owned(),
            )
        })?;
    chain_holds(&authority.chain)
        .map_err(|why| Refused::Untrusted(format!("the trusted root's chain is broken: {why}")))?;
    if entry.time < not_before || entry.time > not_after {
        return Err(Refused::Log(format!(
            "the log took the entry at {}, outside the certificate's validity ({} to {})",
            crate::time::rfc3339(entry.time),
            crate::time::rfc3339(not_before),
            crate::time::rfc3339(not_after)
        )));
    }
    entry.check(root)?;
    if !signs_code(&leaf) {
        return Err(Refused::Untrusted(
            "its certificate is not for code signing (no extended key usage codeSigning)"
                .to_owned(),
        ));
    }
    let (identity, issuer) = names(&leaf)?;
    if !identity.iter().any(|i| expected.identity.is_match(i)) {
        return Err(Refused::OtherIdentity(format!(
            "the certificate names {}, which does not match `{}`",
            identity.join(", "),
            expected.identity.as_str()
        )));
    }
    if issuer != expected.issuer {
        return Err(Refused::OtherIdentity(format!(
            "the identity was vouched for by {issuer}, not {}",
            expected.issuer
        )));
    }
    let spki = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|_| unreadable("the certificate's key cannot be read"))?;
    let key = PublicKey::from_der(&spki)
        .ok_or_else(|| unreadable("the certificate's key is not ECDSA P-256"))?;
    Ok(Signer {
        identity: identity.join(", "),
        issuer,
        key,
    })
}

fn within(time: u64, (start, end): (u64, Option<u64>)) -> bool {
    time >= start && end.is_none_or(|end| time <= end)
}

/// Whether `cert` was issued by the first certificate of `chain`: the names agree and the
/// signature verifies with its key.
fn issued_by(cert: &Certificate, chain: &[Vec<u8>]) -> bool {
    let Some(issuer) = chain
        .first()
        .and_then(|der| Certificate::from_der(der).ok())
    else {
        return false;
    };
    cert.tbs_certificate().issuer() == issuer.tbs_certificate().subject()
        && signature_holds(cert, &issuer)
}

/// Each certificate of the chain is issued by the next; the last by itself.
fn chain_holds(chain: &[Vec<u8>]) -> Result<(), String> {
    let certs = chain
        .iter()
        .map(|der| Certificate::from_der(der).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    for (index, cert) in certs.iter().enumerate() {
        let issuer = certs.get(index + 1).unwrap_or(cert);
        if !signature_holds(cert, issuer) {
            return Err(format!("certificate {index} is not signed by the next"));
        }
    }
    Ok(())
}

/// Whether `issuer`'s key signed `cert` (ECDSA with SHA-256 or SHA-384, on P-256 or P-384).
fn signature_holds(cert: &Certificate, issuer: &Certificate) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use p256::pkcs8::DecodePublicKey as _;
    let (Ok(tbs), Ok(spki)) = (
        cert.tbs_certificate().to_der(),
        issuer.tbs_certificate().subject_public_key_info().to_der(),
    ) else {
        return false;
    };
    let Some(signature) = cert.signature().as_bytes() else {
        return false;
    };
    let algorithm = cert.signature_algorithm().oid.to_string();
    let digest = match algorithm.as_str() {
        "1.2.840.10045.4.3.2" => Sha256::digest(&tbs).to_vec(),
        "1.2.840.10045.4.3.3" => sha2::Sha384::digest(&tbs).to_vec(),
        _ => return false,
    };
    if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(&spki) {
        return p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok());
    }
    if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(&spki) {
        return p384::ecdsa::Signature::from_der(signature)
            .is_ok_and(|sig| key.verify_prehash(&digest, &sig).is_ok());
    }
    false
}

/// Whether the certificate's extended key usage allows code signing, as Fulcio's always do.
fn signs_code(cert: &Certificate) -> bool {
    const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
    cert.tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .filter(|e| e.extn_id.to_string() == "2.5.29.37")
        .any(|e| {
            x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                .is_ok_and(|usage| usage.0.iter().any(|oid| oid.to_string() == CODE_SIGNING))
        })
}

/// The certificate's subject names (SAN URIs and e-mails) and its OIDC issuer.
fn names(cert: &Certificate) -> Result<(Vec<String>, String), Refused> {
    let mut identities = Vec::new();
    let mut issuer = None;
    for extension in cert.tbs_certificate().extensions().into_iter().flatten() {
        let value = extension.extn_value.as_bytes();
        match extension.extn_id.to_string().as_str() {
            "2.5.29.17" => {
                let names = SubjectAltName::from_der(value)
                    .map_err(|_| Refused::Unreadable("the certificate's SAN is not DER".into()))?;
                for name in names.0 {
                    match name {
                        GeneralName::UniformResourceIdentifier(uri) => {
                            identities.push(uri.to_string())
                        }
                        GeneralName::Rfc822Name(mail) => identities.push(mail.to_string()),
                        _ => {}
                    }
                }
            }
            ISSUER_V2 => {
                issuer = der::asn1::Utf8StringRef::from_der(value)
                    .ok()
                    .map(|s| s.as_str().to_owned());
            }
            ISSUER_V1 if issuer.is_none() => {
                issuer = std::str::from_utf8(value).ok().map(str::to_owned);
            }
            _ => {}
        }
    }
    let issuer = issuer.ok_or_else(|| {
        Refused::Unreadable(
            "the certificate names no OIDC issuer (not a Fulcio certificate)".into(),
        )
    })?;
    if identities.is_empty() {
        return Err(Refused::Unreadable(
            "the certificate names no identity (no SAN URI or e-mail)".into(),
        ));
    }
    Ok((identities, issuer))
}

/// The bundle's transparency log entry, as far as it is checked.
struct Entry {
    log_index: i64,
    key_id: Vec<u8>,
    time: u64,
    body_b64: String,
    body: Vec<u8>,
    promise: Option<Vec<u8>>,
    proof: Option<serde_json::Value>,
}

impl Entry {
    /// The first log entry of `bundle`, whose body must record the bundle's envelope signed
    /// by the certificate `leaf_der`.
    fn of(bundle: &serde_json::Value, leaf_der: &[u8]) -> Result<Entry, Refused> {
        let log = |what: &str| Refused::Log(what.to_owned());
        let raw = &bundle["verificationMaterial"]["tlogEntries"][0];
        if raw.is_null() {
            return Err(log(
                "the bundle holds no transparency log entry, so when it was signed cannot be told",
            ));
        }
        let number = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| v.as_i64())
        };
        let body_b64 = raw["canonicalizedBody"]
            .as_str()
            .ok_or_else(|| log("the log entry has no body"))?
            .to_owned();
        let entry = Entry {
            log_index: number(&raw["logIndex"]).ok_or_else(|| log("the log entry has no index"))?,
            key_id: raw["logId"]["keyId"]
                .as_str()
                .and_then(b64)
                .ok_or_else(|| log("the log entry names no log"))?,
            time: number(&raw["integratedTime"])
                .and_then(|t| u64::try_from(t).ok())
                .ok_or_else(|| log("the log entry has no time"))?,
            body: b64(&body_b64).ok_or_else(|| log("the log entry's body is not base64"))?,
            body_b64,
            promise: raw["inclusionPromise"]["signedEntryTimestamp"]
                .as_str()
                .and_then(b64),
            proof: Some(raw["inclusionProof"].clone()).filter(|p| !p.is_null()),
        };
        entry.records(bundle, leaf_der)?;
        Ok(entry)
    }

    /// The body is a `dsse` entry of this envelope: its payload's hash, and its signature with
    /// this certificate as the verifier.
    fn records(&self, bundle: &serde_json::Value, leaf_der: &[u8]) -> Result<(), Refused> {
        let log = |what: String| Refused::Log(what);
        let body: serde_json::Value = serde_json::from_slice(&self.body)
            .map_err(|_| log("the log entry's body is not JSON".into()))?;
        if body["kind"] != "dsse" {
            return Err(log(format!(
                "the log entry is of kind {}, and only `dsse` entries (cosign v3's) are read",
                body["kind"]
            )));
        }
        let envelope = &bundle["dsseEnvelope"];
        let payload = envelope["payload"]
            .as_str()
            .and_then(b64)
            .ok_or_else(|| log("the bundle's envelope has no payload".into()))?;
        let payload_hash: String = Sha256::digest(&payload)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if body["spec"]["payloadHash"]["value"].as_str() != Some(payload_hash.as_str()) {
            return Err(log(
                "the log entry records another payload than the bundle's".into(),
            ));
        }
        let signature = envelope["signatures"][0]["sig"]
            .as_str()
            .unwrap_or_default();
        let leaf_pem = pem(leaf_der);
        let recorded = body["spec"]["signatures"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| {
                s["signature"].as_str() == Some(signature)
                    && s["verifier"]
                        .as_str()
                        .and_then(b64)
                        .is_some_and(|v| String::from_utf8_lossy(&v).trim() == leaf_pem.trim())
            });
        if !recorded {
            return Err(log(
                "the log entry records another signature or certificate than the bundle's".into(),
            ));
        }
        Ok(())
    }

    /// The log's promise (SET) and inclusion proof verify with a log of `root`.
    fn check(&self, root: &TrustedRoot) -> Result<(), Refused> {
        let log = root
            .logs
            .iter()
            .find(|l| l.key_id == self.key_id && within(self.time, l.valid))
            .ok_or_else(|| {
                Refused::Log(
                    "the entry is in a transparency log the trusted root does not list with an ECDSA P-256 key (Rekor v2's Ed25519 logs are not read yet)".into(),
                )
            })?;
        let promise = self
            .promise
            .as_ref()
            .ok_or_else(|| {
                Refused::Log(
                    "the log entry has no signed entry timestamp (a Rekor v2 entry, timed by a timestamp authority, which this gate does not read yet)".into(),
                )
            })?;
        let hex: String = self.key_id.iter().map(|b| format!("{b:02x}")).collect();
        // RFC 8785 canonical JSON of these four keys: sorted, no spaces.
        let signed = format!(
            "{{\"body\":{},\"integratedTime\":{},\"logID\":\"{hex}\",\"logIndex\":{}}}",
            serde_json::Value::String(self.body_b64.clone()),
            self.time,
            self.log_index
        );
        if !log.key.verifies(signed.as_bytes(), promise) {
            return Err(Refused::Log(
                "the log's signed entry timestamp does not verify with its key".into(),
            ));
        }
        let proof = self
            .proof
            .as_ref()
            .ok_or_else(|| Refused::Log("the log entry has no inclusion proof".into()))?;
        inclusion_holds(proof, &self.body, log).map_err(Refused::Log)
    }
}

/// The certificate as PEM, as Rekor records a verifier.
fn pem(der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// RFC 9162's inclusion proof of the leaf `body` up to the proof's root, and the checkpoint
/// that the log signed for that root and size.
fn inclusion_holds(proof: &serde_json::Value, body: &[u8], log: &Log) -> Result<(), String> {
    let number = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .or_else(|| v.as_u64())
    };
    let index = number(&proof["logIndex"]).ok_or("the inclusion proof has no index")?;
    let size = number(&proof["treeSize"]).ok_or("the inclusion proof has no tree size")?;
    let root = proof["rootHash"]
        .as_str()
        .and_then(b64)
        .ok_or("the inclusion proof has no root hash")?;
    let hashes = proof["hashes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| h.as_str().and_then(b64).ok_or("a proof hash is not base64"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut leaf = vec![0u8];
    leaf.extend_from_slice(body);
    let computed = root_from_proof(index, size, Sha256::digest(&leaf).to_vec(), &hashes)
        .ok_or("the inclusion proof does not lead to a root")?;
    if computed != root {
        return Err("the inclusion proof does not lead to its root hash".into());
    }
    let envelope = proof["checkpoint"]["envelope"]
        .as_str()
        .ok_or("the inclusion proof has no checkpoint")?;
    let (note, signatures) = envelope
        .split_once("\n\n")
        .ok_or("the checkpoint is not a signed note")?;
    let note = format!("{note}\n");
    let mut lines = note.lines().skip(1);
    let (Some(checkpoint_size), Some(checkpoint_root)) = (lines.next(), lines.next()) else {
        return Err("the checkpoint is not a signed note".into());
    };
    if checkpoint_size.parse::<u64>().ok() != Some(size) || b64(checkpoint_root) != Some(root) {
        return Err("the checkpoint is for another tree than the inclusion proof".into());
    }
    let hint = &Sha256::digest(&log.key_der)[..4];
    let signed = signatures.lines().any(|line| {
        line.strip_prefix("\u{2014} ")
            .and_then(|rest| rest.rsplit_once(' '))
            .and_then(|(_, sig)| b64(sig))
            .filter(|sig| sig.len() > 4 && &sig[..4] == hint)
            .is_some_and(|sig| log.key.verifies(note.as_bytes(), &sig[4..]))
    });
    if signed {
        Ok(())
    } else {
        Err("the checkpoint is not signed by the log's key".into())
    }
}

/// The root an inclusion proof leads to from `leaf` at `index` in a tree of `size` leaves.
fn root_from_proof(index: u64, size: u64, leaf: Vec<u8>, proof: &[Vec<u8>]) -> Option<Vec<u8>> {
    if index >= size {
        return None;
    }
    let node = |left: &[u8], right: &[u8]| {
        let mut hasher = Sha256::new();
        hasher.update([1u8]);
        hasher.update(left);
        hasher.update(right);
        hasher.finalize().to_vec()
    };
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in proof {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(bytes: &[u8]) -> Vec<u8> {
        Sha256::digest(bytes).to_vec()
    }

    fn leaf(n: u8) -> Vec<u8> {
        h(&[0, n])
    }

    fn node(l: &[u8], r: &[u8]) -> Vec<u8> {
        let mut v = vec![1];
        v.extend_from_slice(l);
        v.extend_from_slice(r);
        h(&v)
    }

    #[test]
    fn inclusion_proofs_of_every_leaf_of_small_trees_lead_to_their_root() {
        // Three leaves: root = node(node(l0, l1), l2).
        let (l0, l1, l2) = (leaf(0), leaf(1), leaf(2));
        let root = node(&node(&l0, &l1), &l2);
        assert_eq!(
            root_from_proof(0, 3, l0.clone(), &[l1.clone(), l2.clone()]),
            Some(root.clone())
        );
        assert_eq!(
            root_from_proof(1, 3, l1.clone(), &[l0.clone(), l2.clone()]),
            Some(root.clone())
        );
        assert_eq!(
            root_from_proof(2, 3, l2.clone(), &[node(&l0, &l1)]),
            Some(root.clone())
        );
        assert_eq!(root_from_proof(0, 1, l0.clone(), &[]), Some(l0.clone()));
        // A wrong sibling, an index outside the tree, a proof too short or too long.
        assert_ne!(
            root_from_proof(0, 3, l0.clone(), &[l2.clone(), l1.clone()]),
            Some(root.clone())
        );
        assert_eq!(root_from_proof(3, 3, l0.clone(), &[]), None);
        assert_eq!(
            root_from_proof(0, 3, l0.clone(), std::slice::from_ref(&l1)),
            None
        );
        assert_eq!(root_from_proof(0, 1, l0, &[l1]), None);
    }
}
