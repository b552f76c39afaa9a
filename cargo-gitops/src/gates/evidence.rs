//! The gates that read what is attached to the image: `signature` (a sigstore bundle that
//! verifies with the key and names this digest), `provenance` (an SLSA statement for this
//! digest, repository and commit) and `sbom` (an SBOM, without denied crates). The image's
//! referrers are listed once for all three; each document is read only when a gate needs it.
//! What the documents mean is `supply`'s; the requests are `registry`'s.

use crate::error::{Error, quote_external};
use crate::gates::Answer;
use crate::gates::spec::{Gates, SignatureKey};
use crate::registry::client::{Descriptor, Digest, Parsed, RegistryClient, Repository, Scope};
use crate::registry::referrers::{self, artifact_type_of};
use crate::supply::keyless::{self, Identity, Refused, TrustedRoot};
use crate::supply::sign::{self, PublicKey, SigningKey, Unverified};

/// The CycloneDX JSON media type: an SBOM other tools attach.
const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// The largest document read for a gate.
const MAX_DOCUMENT: u64 = 16 << 20;

/// What `signature` verifies with, and how refusals name it.
pub(crate) enum Verifier {
    Key(PublicKey, String),
    Keyless {
        root: TrustedRoot,
        identity: Identity,
    },
}

/// The verifier of the `signature` gate: a key, or for keyless signatures the trusted root
/// and the identity (by default the repository's own GitHub workflows, from `source_url`).
pub(crate) fn verifier(
    gates: &Gates,
    signing_key: Option<&SigningKey>,
    source_url: Option<&str>,
) -> Result<Verifier, Error> {
    match &gates.signature {
        Some(SignatureKey::File(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                what: format!("the signature gate's public key {}", path.display()),
                source,
            })?;
            let from = format!("the key {}", path.display());
            Ok(Verifier::Key(PublicKey::from_pem(&text, &from)?, from))
        }
        Some(SignatureKey::Keyless(keyless)) => {
            let pattern = match &keyless.identity {
                Some(pattern) => pattern.clone(),
                None => own_workflows(source_url)?,
            };
            let identity = crate::gates::spec::anchored(&pattern)
                .map_err(|m| Error::usage(format!("the signature gate's identity: {m}")))?;
            Ok(Verifier::Keyless {
                root: TrustedRoot::read(&keyless.trusted_root)?,
                identity: Identity {
                    identity,
                    issuer: keyless.issuer.clone(),
                },
            })
        }
        Some(SignatureKey::SigningKey) | None => match signing_key {
            Some(key) => Ok(Verifier::Key(
                PublicKey::of(key),
                format!("the public half of the signing key from {}", key.source()),
            )),
            None => Err(Error::usage(
                "the signature gate verifies with the signing key (sign = \"key\"), which this run did not read; set its variable, or give the gate a public key: signature = { key = \"cosign.pub\" }",
            )),
        },
    }
}

/// The identity of this repository's GitHub workflows, as Fulcio writes it in a certificate:
/// `https://github.com/OWNER/REPO/.github/workflows/FILE@REF`, any file and ref.
fn own_workflows(source_url: Option<&str>) -> Result<String, Error> {
    let repository = source_url
        .map(normalize_repository)
        .filter(|r| r.starts_with("github.com/") && r.matches('/').count() == 2)
        .ok_or_else(|| {
            Error::usage(
                "the signature gate checks keyless signatures of this repository's own GitHub workflows by default, and this repository's origin is not on github.com; set signature.identity to the signer's identity (a regular expression)",
            )
        })?;
    // GitHub's names are case-insensitive, and Fulcio writes them as GitHub spells them.
    Ok(format!(
        "https://(?i:{})/\\.github/workflows/[^@]+@refs/.+",
        regex::escape(&repository)
    ))
}

/// The image's referrers, read once, and what they hold.
pub(crate) struct Attached<'a> {
    client: &'a RegistryClient,
    name: &'a str,
    digest: &'a Digest,
    referrers: Option<Vec<Descriptor>>,
}

impl<'a> Attached<'a> {
    pub(crate) fn new(
        client: &'a RegistryClient,
        repository: &'a Repository,
        digest: &'a Digest,
    ) -> Attached<'a> {
        Attached {
            client,
            name: &repository.name,
            digest,
            referrers: None,
        }
    }

    fn referrers(&mut self) -> Result<Vec<Descriptor>, Error> {
        if self.referrers.is_none() {
            self.referrers = Some(referrers::list(self.client, self.name, self.digest, None)?);
        }
        Ok(self.referrers.clone().unwrap_or_default())
    }

    /// The one layer of the artifact manifest `referrer`, if it has one of a readable size.
    fn document(&self, referrer: &Descriptor) -> Result<Option<Vec<u8>>, Error> {
        let manifest = self.client.get_manifest(
            self.name,
            referrer.digest.as_str(),
            &Scope::pull(self.name),
        )?;
        let Ok(Parsed::Image(image)) = manifest.parse() else {
            return Ok(None);
        };
        match image.layers.first() {
            Some(layer) if layer.size <= MAX_DOCUMENT => {
                Ok(Some(self.client.get_blob(self.name, layer)?))
            }
            _ => Ok(None),
        }
    }

    /// `signature`: a sigstore bundle attached to the image verifies with `verifier` (a key,
    /// or a certificate of the trusted identity that chains to the trusted root) and names
    /// this digest.
    pub(crate) fn signature(&mut self, verifier: &Verifier) -> Result<Answer, Error> {
        let bundles: Vec<Descriptor> = self
            .referrers()?
            .into_iter()
            .filter(sign::is_signature)
            .collect();
        if bundles.is_empty() {
            let old_format = format!("{}.sig", referrers::tag_of(self.digest));
            let old = self
                .client
                .manifest_digest(self.name, &old_format, &Scope::pull(self.name))?
                .is_some();
            return Ok(Err(if old {
                format!(
                    "only cosign's older `{old_format}` signature is attached, which this gate does not read; sign with cosign v3's default (sigstore bundle) format or with sign = \"key\""
                )
            } else {
                format!(
                    "no signature is attached to {}; sign it (sign = \"key\", or `cosign sign --key`) before promoting",
                    self.digest
                )
            }));
        }
        let mut moved = None;
        let mut keyless_refusal: Option<Refused> = None;
        for bundle in &bundles {
            let Some(bytes) = self.document(bundle)? else {
                continue;
            };
            let (key, signer) = match verifier {
                Verifier::Key(key, from) => (key.clone(), from.clone()),
                Verifier::Keyless { root, identity } => {
                    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                        continue;
                    };
                    match keyless::verify(&json, root, identity) {
                        Ok(signer) => (
                            signer.key,
                            format!("{} (issuer {})", signer.identity, signer.issuer),
                        ),
                        Err(refused) => {
                            // The most telling refusal is kept: a certificate of another
                            // identity over one that is not keyless at all.
                            if keyless_refusal
                                .as_ref()
                                .is_none_or(|r| matches!(r, Refused::Unreadable(_)))
                            {
                                keyless_refusal = Some(refused);
                            }
                            continue;
                        }
                    }
                }
            };
            match sign::verify_bundle(&bytes, &key, self.digest) {
                Ok(()) => {
                    return Ok(Ok(match verifier {
                        Verifier::Key(..) => format!(
                            "signature {} verifies with {signer} (offline: no transparency log is consulted)",
                            bundle.digest
                        ),
                        Verifier::Keyless { .. } => format!(
                            "signature {} by {signer} verifies: its certificate chains to the trusted root and the transparency log's entry checks out (offline)",
                            bundle.digest
                        ),
                    }));
                }
                Err(Unverified::OtherDigest(other)) => moved = Some((other, signer)),
                Err(Unverified::OtherKey | Unverified::Unreadable(_)) => {}
            }
        }
        Ok(Err(match (moved, verifier, keyless_refusal) {
            (Some((other, signer)), _, _) => format!(
                "a signature by {signer} is attached, but it signs another image ({}): it was copied from there; sign {} itself",
                quote_external(&other),
                self.digest
            ),
            (None, Verifier::Key(_, from), _) => format!(
                "{} signature(s) attached, none verifies with {from}; sign the image with that key",
                bundles.len()
            ),
            (None, Verifier::Keyless { identity, .. }, refused) => {
                let why = match refused {
                    Some(
                        Refused::Untrusted(why)
                        | Refused::OtherIdentity(why)
                        | Refused::Log(why)
                        | Refused::Unreadable(why),
                    ) => quote_external(&why),
                    None => "its envelope does not verify with its certificate".to_owned(),
                };
                format!(
                    "{} signature(s) attached, none is a keyless signature by `{}` (issuer {}): {why}; sign the image in the trusted workflow",
                    bundles.len(),
                    identity.identity.as_str(),
                    identity.issuer
                )
            }
        }))
    }

    /// `provenance`: an SLSA v1 statement attached to the image names this digest as its
    /// subject, `source_url`'s repository and `sha` as its source.
    pub(crate) fn provenance(
        &mut self,
        sha: &str,
        source_url: Option<&str>,
    ) -> Result<Answer, Error> {
        let Some(expected) = source_url.map(normalize_repository) else {
            return Ok(Err(
                "cannot tell which repository this is (no CI variable names it, and git has no `origin` remote); add the remote, or run in CI".to_owned(),
            ));
        };
        let statements: Vec<Descriptor> = self
            .referrers()?
            .into_iter()
            .filter(|d| artifact_type_of(d) == Some(crate::supply::provenance::MEDIA_TYPE))
            .collect();
        let mut refusal = None;
        for descriptor in &statements {
            let Some(bytes) = self.document(descriptor)? else {
                continue;
            };
            let Ok(statement) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            if statement["predicateType"] != crate::supply::provenance::PREDICATE_TYPE {
                continue;
            }
            match judge_provenance(&statement, self.digest, sha, &expected) {
                Ok(()) => {
                    return Ok(Ok(format!(
                        "provenance {} names this image, {expected} and commit {sha}",
                        descriptor.digest
                    )));
                }
                Err(why) => refusal = refusal.or(Some(why)),
            }
        }
        Ok(Err(refusal.unwrap_or_else(|| {
            format!(
                "no SLSA provenance is attached to {}; build with provenance on (the default for native and podman builds)",
                self.digest
            )
        })))
    }

    /// `sbom`: an SBOM (SPDX or CycloneDX JSON) is attached to the image or to one of its
    /// platform manifests, and none attached lists a crate of `deny`.
    pub(crate) fn sbom(&mut self, deny: &[String]) -> Result<Answer, Error> {
        let listed = self.referrers()?;
        let mut found = sboms_of(listed);
        let manifest =
            self.client
                .get_manifest(self.name, self.digest.as_str(), &Scope::pull(self.name))?;
        if let Ok(Parsed::Index(index)) = manifest.parse() {
            for platform in &index.manifests {
                let listed = referrers::list(self.client, self.name, &platform.digest, None)?;
                found.extend(sboms_of(listed));
            }
        }
        if found.is_empty() {
            return Ok(Err(format!(
                "no SBOM is attached to {}; build natively (it attaches one per platform) or attach one with --attach application/spdx+json=FILE",
                self.digest
            )));
        }
        let mut denied = Vec::new();
        if !deny.is_empty() {
            for descriptor in &found {
                let Some(bytes) = self.document(descriptor)? else {
                    continue;
                };
                for name in listed_packages(&bytes) {
                    if deny.contains(&name) && !denied.contains(&name) {
                        denied.push(name);
                    }
                }
            }
        }
        if !denied.is_empty() {
            return Ok(Err(format!(
                "the SBOM lists denied crate(s) {}; remove them from the dependency tree",
                denied
                    .iter()
                    .map(|n| quote_external(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(Ok(format!(
            "{} SBOM(s) attached{}",
            found.len(),
            if deny.is_empty() {
                String::new()
            } else {
                format!(", none lists {}", deny.join(", "))
            }
        )))
    }
}

/// The SBOMs among `listed` referrers.
fn sboms_of(listed: Vec<Descriptor>) -> Vec<Descriptor> {
    listed
        .into_iter()
        .filter(|d| {
            matches!(
                artifact_type_of(d),
                Some(crate::supply::sbom::MEDIA_TYPE | CYCLONEDX_MEDIA_TYPE)
            )
        })
        .collect()
}

/// Whether a provenance statement vouches for `digest` built from `sha` of `repository`
/// (normalized); if not, the refusal.
fn judge_provenance(
    statement: &serde_json::Value,
    digest: &Digest,
    sha: &str,
    repository: &str,
) -> Result<(), String> {
    let subjects: Vec<&str> = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["digest"]["sha256"].as_str())
        .collect();
    if !subjects.contains(&digest.hex()) {
        return Err(format!(
            "the provenance attached describes another image ({}), not {digest}; it was copied from there",
            subjects
                .first()
                .map_or("no subject".to_owned(), |s| format!(
                    "sha256:{}",
                    quote_external(s)
                ))
        ));
    }
    let dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(source) = dependencies
        .iter()
        .find(|d| d["digest"]["gitCommit"].is_string())
    else {
        return Err(
            "the provenance names no source commit (gitCommit); rebuild with the tool".to_owned(),
        );
    };
    let commit = source["digest"]["gitCommit"].as_str().unwrap_or_default();
    if !commit.eq_ignore_ascii_case(sha) {
        return Err(format!(
            "the provenance says the image was built from commit {}, not {sha} being promoted",
            quote_external(commit)
        ));
    }
    match source["uri"].as_str().map(normalize_repository) {
        Some(named) if named == repository => Ok(()),
        Some(named) => Err(format!(
            "the provenance says the image was built from {}, not from this repository ({repository})",
            quote_external(&named)
        )),
        None => Err(
            "the provenance names no source repository; build where git has an `origin` remote"
                .to_owned(),
        ),
    }
}

/// A repository URL reduced to `host/path`, lowercase, without scheme, credentials or
/// `.git`: `git+https://user@GitHub.com/Acme/App.git` and `git@github.com:acme/app` agree.
pub(crate) fn normalize_repository(url: &str) -> String {
    let url = url.trim().strip_prefix("git+").unwrap_or(url.trim());
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_owned(),
        // scp-like `git@host:owner/repo`
        None => url.replacen(':', "/", 1),
    };
    let rest = match rest.split_once('/') {
        Some((authority, path)) => {
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{host}/{path}")
        }
        None => rest,
    };
    let rest = rest.trim_end_matches('/');
    rest.strip_suffix(".git")
        .unwrap_or(rest)
        .to_ascii_lowercase()
}

/// The package names an SPDX (`packages[].name`) or CycloneDX (`components[].name`) JSON
/// document lists.
fn listed_packages(bytes: &[u8]) -> Vec<String> {
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    ["packages", "components"]
        .iter()
        .filter_map(|key| document[key].as_array())
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repositories_compare_by_host_and_path() {
        for url in [
            "git+https://x-access-token:secret@GitHub.com/Acme/App.git",
            "https://github.com/acme/app",
            "git@github.com:acme/app.git",
            "ssh://git@github.com/acme/app/",
        ] {
            assert_eq!(normalize_repository(url), "github.com/acme/app", "{url}");
        }
        assert_ne!(
            normalize_repository("https://github.com/acme/other"),
            "github.com/acme/app"
        );
    }

    #[test]
    fn provenance_is_judged_on_subject_commit_and_repository() {
        let digest = Digest::of(b"image");
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let statement = |subject: &str, commit: &str, uri: &str| {
            json!({
                "subject": [{"name": "x", "digest": {"sha256": subject}}],
                "predicate": {"buildDefinition": {"resolvedDependencies": [
                    {"uri": uri, "digest": {"gitCommit": commit}},
                ]}},
            })
        };
        let repo = "github.com/acme/app";
        let good = statement(digest.hex(), sha, "git+https://github.com/acme/app.git");
        assert_eq!(judge_provenance(&good, &digest, sha, repo), Ok(()));
        let other_commit = statement(
            digest.hex(),
            &"f".repeat(40),
            "git+https://github.com/acme/app",
        );
        assert!(
            judge_provenance(&other_commit, &digest, sha, repo)
                .unwrap_err()
                .contains(&format!("from commit {}", "f".repeat(40)))
        );
        let other_repo = statement(digest.hex(), sha, "git+https://github.com/evil/app");
        assert!(
            judge_provenance(&other_repo, &digest, sha, repo)
                .unwrap_err()
                .contains("github.com/evil/app")
        );
        let other_image = statement(&"e".repeat(64), sha, "git+https://github.com/acme/app");
        assert!(
            judge_provenance(&other_image, &digest, sha, repo)
                .unwrap_err()
                .contains("describes another image")
        );
    }

    #[test]
    fn sbom_packages_of_both_formats() {
        let spdx = json!({"packages": [{"name": "serde"}, {"name": "openssl-sys"}]});
        let cdx = json!({"components": [{"name": "ring"}]});
        assert_eq!(
            listed_packages(spdx.to_string().as_bytes()),
            ["serde", "openssl-sys"]
        );
        assert_eq!(listed_packages(cdx.to_string().as_bytes()), ["ring"]);
        assert!(listed_packages(b"not json").is_empty());
    }
}
