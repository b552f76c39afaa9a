//! The signature gate on keyless signatures: a sigstore bundle (v0.3, DSSE) whose certificate
//! a test certificate authority issued (made by the real `openssl`, with Fulcio's identity
//! and issuer extensions), logged by a test transparency log (a signed entry timestamp, an
//! inclusion proof and a signed checkpoint), checked against a Sigstore trusted root that
//! lists both; the real `cosign verify --trusted-root` is the oracle. Tampered cases: another
//! identity, another issuer, a certificate of an authority the root does not list, a forged
//! log entry, a signature made outside the certificate's validity, a signature of another
//! image; each refused with nothing moved.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::affected::push_image;
use crate::signing::tool;
use crate::support::{Dir, Registry, TestCommand, printed};

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const IDENTITY: &str =
    "https://github.com/acme/app/.github/workflows/gitops-pipeline.yml@refs/tags/v1.0.0";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (.ci/test installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", printed(&out));
}

fn der_of_pem(dir: &Path, pem: &str) -> Vec<u8> {
    let der = format!("{pem}.der");
    openssl(dir, &["x509", "-in", pem, "-outform", "DER", "-out", &der]);
    std::fs::read(dir.join(der)).unwrap()
}

/// A P-256 (or P-384) key in `name`, PKCS#8 PEM.
fn key(dir: &Path, name: &str, curve: &str) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            name,
        ],
    );
}

/// A certificate authority: a self-signed root and an intermediate it issued, both P-384.
fn authority(dir: &Path, prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let ca = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
    std::fs::write(dir.join("ca.ext"), ca).unwrap();
    key(dir, &format!("{prefix}-root.key"), "P-384");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{prefix}-root.key"),
            "-sha384",
            "-subj",
            &format!("/O={prefix}/CN={prefix} root"),
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &format!("{prefix}-root.pem"),
        ],
    );
    key(dir, &format!("{prefix}-mid.key"), "P-384");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{prefix}-mid.key"),
            "-subj",
            &format!("/O={prefix}/CN={prefix} intermediate"),
            "-out",
            &format!("{prefix}-mid.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{prefix}-mid.csr"),
            "-sha384",
            "-CA",
            &format!("{prefix}-root.pem"),
            "-CAkey",
            &format!("{prefix}-root.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "ca.ext",
            "-out",
            &format!("{prefix}-mid.pem"),
        ],
    );
    (
        der_of_pem(dir, &format!("{prefix}-mid.pem")),
        der_of_pem(dir, &format!("{prefix}-root.pem")),
    )
}

/// A Fulcio-like certificate for `identity` and `issuer`, issued by `prefix`'s intermediate
/// to a fresh P-256 key (`leaf.key`), valid from now for `days`.
fn leaf(dir: &Path, prefix: &str, identity: &str, issuer: &str, code_signing: bool) -> Vec<u8> {
    key(dir, "leaf.key", "P-256");
    let usage = if code_signing {
        "codeSigning"
    } else {
        "emailProtection"
    };
    std::fs::write(
        dir.join("leaf.ext"),
        format!(
            "subjectAltName=critical,URI:{identity}\nkeyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:{issuer}\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/O=sigstore.dev",
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-sha384",
            "-CA",
            &format!("{prefix}-mid.pem"),
            "-CAkey",
            &format!("{prefix}-mid.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
    der_of_pem(dir, "leaf.pem")
}

fn pem(der: &[u8]) -> String {
    let text = b64(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out + "-----END CERTIFICATE-----\n"
}

fn signing_key(dir: &Path, name: &str) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_pkcs8_pem(&std::fs::read_to_string(dir.join(name)).unwrap())
        .unwrap()
}

fn sign(key: &p256::ecdsa::SigningKey, message: &[u8]) -> Vec<u8> {
    let signature: p256::ecdsa::Signature = key.sign(message);
    signature.to_der().as_bytes().to_vec()
}

/// The test transparency log: its key, the DER of its public half and its id.
struct TestLog {
    key: p256::ecdsa::SigningKey,
    public_der: Vec<u8>,
}

impl TestLog {
    fn new(dir: &Path) -> TestLog {
        key(dir, "log.key", "P-256");
        openssl(
            dir,
            &[
                "pkey",
                "-in",
                "log.key",
                "-pubout",
                "-outform",
                "DER",
                "-out",
                "log.pub.der",
            ],
        );
        TestLog {
            key: signing_key(dir, "log.key"),
            public_der: std::fs::read(dir.join("log.pub.der")).unwrap(),
        }
    }

    fn id(&self) -> Vec<u8> {
        Sha256::digest(&self.public_der).to_vec()
    }

    /// The log entry of `body` at index 0 of a tree of one: its promise, inclusion proof and
    /// checkpoint, signed with the log's key.
    fn entry(&self, body: &[u8], integrated_time: u64) -> Value {
        let body_b64 = b64(body);
        let log_id = self.id();
        let promise = format!(
            "{{\"body\":\"{body_b64}\",\"integratedTime\":{integrated_time},\"logID\":\"{}\",\"logIndex\":0}}",
            hex(&log_id)
        );
        let mut leaf = vec![0u8];
        leaf.extend_from_slice(body);
        let root = Sha256::digest(&leaf).to_vec();
        let note = format!("test-log - 1\n1\n{}\n", b64(&root));
        let mut signature = log_id[..4].to_vec();
        signature.extend(sign(&self.key, note.as_bytes()));
        let checkpoint = format!("{note}\n\u{2014} test-log {}\n", b64(&signature));
        json!({
            "logIndex": "0",
            "logId": {"keyId": b64(&log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": integrated_time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": b64(&sign(&self.key, promise.as_bytes()))},
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": b64(&root),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": body_b64,
        })
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A Sigstore trusted root listing the authority (intermediate, root) and the log.
fn trusted_root(chain: &[&[u8]], log: &TestLog) -> Value {
    json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": "https://log.test",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(&log.public_der),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            },
            "logId": {"keyId": b64(&log.id())},
        }],
        "certificateAuthorities": [{
            "subject": {"organization": "trusted", "commonName": "trusted"},
            "uri": "https://ca.test",
            "certChain": {"certificates": chain.iter().map(|der| json!({"rawBytes": b64(der)})).collect::<Vec<_>>()},
            "validFor": {"start": "2020-01-01T00:00:00Z"},
        }],
        "ctlogs": [],
        "timestampAuthorities": [],
    })
}

/// How a scenario's bundle departs from an honest one.
#[derive(Default)]
struct Tamper {
    identity: Option<&'static str>,
    issuer: Option<&'static str>,
    /// The certificate comes from an authority the trusted root does not list.
    untrusted: bool,
    /// The log entry claims another time than the one its promise signs.
    forged_time: bool,
    /// The log took the entry this long after now (outside the certificate's one day).
    logged_later: Option<u64>,
    /// The statement names another digest.
    other_digest: bool,
    /// The inclusion proof claims another root than its leaf leads to.
    other_root: bool,
    /// The certificate is for e-mail, not code signing.
    not_for_code_signing: bool,
}

/// A repository releasing `v1.0.0` of image `app` from the registry `host`, production gated
/// by `gates`, its origin on github.com/acme/app.
fn release_repository(host: &str, gates: &str) -> Dir {
    let repo = Dir::git_repo();
    repo.create(
        "gitops.toml",
        format!(
            "registry = \"{host}/acme\"\nimage = \"app\"\nbuilder = \"podman\"\n\n[[environments]]\nname = \"production\"\ngates = {gates}\n\n[[environments]]\nname = \"staging\"\n"
        ),
    );
    repo.create("Dockerfile", "FROM scratch\n");
    repo.commit("the app");
    repo.git(["remote", "add", "origin", "https://github.com/acme/app.git"]);
    repo.git(["tag", "v1.0.0"]);
    repo
}

/// The staged image of the release's commit, signed by the scenario's bundle; returns the
/// image's digest.
fn signed_image(registry: &Registry, repo: &Dir, dir: &Path, tamper: &Tamper) -> String {
    let sha = repo.head();
    push_image(
        registry,
        "acme/app",
        &sha,
        &[format!("commit-{sha}"), "stg-latest".to_owned()],
    );
    let digest = registry
        .digest("acme/app", &format!("commit-{sha}"))
        .unwrap();
    let (bytes, media_type, _) = registry.manifest("acme/app", &digest).unwrap();

    let (mid, root) = authority(dir, "trusted");
    let issuer_prefix = if tamper.untrusted {
        authority(dir, "rogue");
        "rogue"
    } else {
        "trusted"
    };
    let leaf_der = leaf(
        dir,
        issuer_prefix,
        tamper.identity.unwrap_or(IDENTITY),
        tamper.issuer.unwrap_or(ISSUER),
        !tamper.not_for_code_signing,
    );
    let log = TestLog::new(dir);
    std::fs::write(
        dir.join("trusted_root.json"),
        serde_json::to_vec_pretty(&trusted_root(&[&mid, &root], &log)).unwrap(),
    )
    .unwrap();

    let subject = if tamper.other_digest {
        hex(&Sha256::digest(b"another image"))
    } else {
        digest.trim_start_matches("sha256:").to_owned()
    };
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": subject}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    });
    let payload = serde_json::to_vec(&statement).unwrap();
    let payload_type = "application/vnd.in-toto+json";
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    let envelope_signature = b64(&sign(&signing_key(dir, "leaf.key"), &pae));
    let envelope = json!({
        "payload": b64(&payload),
        "payloadType": payload_type,
        "signatures": [{"sig": envelope_signature}],
    });
    let body = serde_json::to_vec(&json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hex(&Sha256::digest(serde_json::to_vec(&envelope).unwrap()))},
            "payloadHash": {"algorithm": "sha256", "value": hex(&Sha256::digest(&payload))},
            "signatures": [{"signature": envelope_signature, "verifier": b64(pem(&leaf_der).as_bytes())}],
        },
    }))
    .unwrap();
    let logged = now() + tamper.logged_later.unwrap_or(0);
    let mut entry = log.entry(&body, logged);
    if tamper.other_root {
        entry["inclusionProof"]["rootHash"] = json!(b64(&Sha256::digest(b"another tree")));
    }
    if tamper.forged_time {
        entry["integratedTime"] = json!((logged + 60).to_string());
    }
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": b64(&leaf_der)},
            "tlogEntries": [entry],
        },
        "dsseEnvelope": envelope,
    });
    attach_bundle(registry, &digest, &media_type, bytes.len(), &bundle);
    digest
}

/// Attaches `bundle` to the image as cosign v3 does: an OCI artifact whose subject it is.
fn attach_bundle(registry: &Registry, digest: &str, media_type: &str, size: usize, bundle: &Value) {
    let bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let layer = serde_json::to_vec(bundle).unwrap();
    let layer_digest = registry.put_blob("acme/app", &layer);
    let empty = registry.put_blob("acme/app", b"{}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": bundle_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": bundle_type, "digest": layer_digest, "size": layer.len()}],
        "subject": {"mediaType": media_type, "digest": digest, "size": size},
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
        },
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let reference = crate::support::sha256(&bytes);
    registry.put_manifest(
        "acme/app",
        &reference,
        &bytes,
        "application/vnd.oci.image.manifest.v1+json",
    );
}

/// `cosign verify` of the image against the scenario's trusted root, for `identity`.
fn cosign_verifies(dir: &Path, reference: &str, identity_regexp: &str) -> bool {
    let out = tool("cosign")
        .arg("verify")
        .arg("--trusted-root")
        .arg(dir.join("trusted_root.json"))
        .args(["--certificate-identity-regexp", identity_regexp])
        .args(["--certificate-oidc-issuer", ISSUER])
        .args(["--insecure-ignore-sct=true", "--allow-http-registry=true"])
        .arg(reference)
        .output()
        .expect("cosign must be installed: .ci/install-tools builds it");
    if !out.status.success() {
        eprintln!("cosign verify: {}", printed(&out));
    }
    out.status.success()
}

const GATES: &str = "{ signature = { trusted-root = \"keys/trusted_root.json\" } }";

/// One scenario: the release's promotion with the gate, and whether cosign agrees.
fn scenario(tamper: Tamper) -> (std::process::Output, bool, Registry) {
    scenario_with(tamper, GATES)
}

fn scenario_with(tamper: Tamper, gates: &str) -> (std::process::Output, bool, Registry) {
    let registry = Registry::start_olareg();
    let repo = release_repository(&registry.host(), gates);
    let keys: PathBuf = repo.create_dir("keys");
    let digest = signed_image(&registry, &repo, &keys, &tamper);
    let reference = format!("{}/acme/app@{digest}", registry.host());
    let cosign = cosign_verifies(
        &keys,
        &reference,
        "^https://github\\.com/acme/app/\\.github/workflows/.+$",
    );
    let output = TestCommand::new(repo.path())
        .timeout(Duration::from_secs(120))
        .args([
            "build",
            "-q",
            "--ref",
            "refs/tags/v1.0.0",
            "--retag-with",
            "builtin",
        ])
        .output();
    (output, cosign, registry)
}

fn refused(tamper: Tamper, says: &str) {
    let (output, cosign, registry) = scenario(tamper);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{}", printed(&output));
    assert!(
        stderr.contains("error: the gates of `production` refused sha256:")
            && stderr.contains("so no tag moved"),
        "{stderr}"
    );
    assert!(stderr.contains(says), "{says}: {stderr}");
    assert!(!registry.tags("acme/app").contains(&"prd-1.0.0".to_owned()));
    assert!(!cosign, "cosign verified what the gate refused ({says})");
}

#[test]
fn an_honest_keyless_signature_passes_the_gate_and_cosign() {
    let (output, cosign, registry) = scenario(Tamper::default());
    assert!(output.status.success(), "{}", printed(&output));
    assert!(cosign, "cosign refused the honest keyless signature");
    assert!(registry.tags("acme/app").contains(&"prd-1.0.0".to_owned()));
}

#[test]
fn a_keyless_signature_of_another_identity_or_issuer_is_refused() {
    refused(
        Tamper {
            identity: Some("https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main"),
            ..Tamper::default()
        },
        "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main, which does not match",
    );
    refused(
        Tamper {
            issuer: Some("https://accounts.google.com"),
            ..Tamper::default()
        },
        "vouched for by https://accounts.google.com",
    );
}

#[test]
fn a_certificate_of_an_authority_the_root_does_not_list_or_not_for_code_signing_is_refused() {
    refused(
        Tamper {
            untrusted: true,
            ..Tamper::default()
        },
        "not issued by a certificate authority of the trusted root",
    );
    refused(
        Tamper {
            not_for_code_signing: true,
            ..Tamper::default()
        },
        "not for code signing",
    );
}

#[test]
fn a_forged_log_entry_or_one_outside_the_certificates_validity_is_refused() {
    refused(
        Tamper {
            forged_time: true,
            ..Tamper::default()
        },
        "signed entry timestamp does not verify",
    );
    refused(
        Tamper {
            other_root: true,
            ..Tamper::default()
        },
        "the inclusion proof does not lead to its root hash",
    );
    refused(
        Tamper {
            logged_later: Some(3 * 86_400),
            ..Tamper::default()
        },
        "outside the certificate's validity",
    );
}

#[test]
fn a_keyless_signature_of_another_image_is_refused() {
    refused(
        Tamper {
            other_digest: true,
            ..Tamper::default()
        },
        "it signs another image",
    );
}

#[test]
fn a_configured_identity_and_issuer_replace_the_defaults() {
    let gates = "{ signature = { identity = 'https://github\\.com/acme/app/\\.github/workflows/gitops-pipeline\\.yml@refs/tags/v.+', issuer = 'https://token.actions.githubusercontent.com', trusted-root = 'keys/trusted_root.json' } }";
    let (output, _, registry) = scenario_with(Tamper::default(), gates);
    assert!(output.status.success(), "{}", printed(&output));
    assert!(registry.tags("acme/app").contains(&"prd-1.0.0".to_owned()));
    // The same identity signed in another workflow of the repository: refused.
    let (output, _, _) = scenario_with(
        Tamper {
            identity: Some(
                "https://github.com/acme/app/.github/workflows/other.yml@refs/tags/v1.0.0",
            ),
            ..Tamper::default()
        },
        gates,
    );
    assert_eq!(output.status.code(), Some(1), "{}", printed(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("other.yml@refs/tags/v1.0.0, which does not match"),
        "{}",
        printed(&output)
    );
}

#[test]
fn the_default_identity_takes_the_repositorys_name_as_github_spells_it() {
    // Fulcio writes the repository as GitHub spells it; the origin remote says acme/app.
    let (output, _, registry) = scenario(Tamper {
        identity: Some(
            "https://github.com/Acme/App/.github/workflows/gitops-pipeline.yml@refs/tags/v1.0.0",
        ),
        ..Tamper::default()
    });
    assert!(output.status.success(), "{}", printed(&output));
    assert!(registry.tags("acme/app").contains(&"prd-1.0.0".to_owned()));
}
