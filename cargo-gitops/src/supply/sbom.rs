//! The SBOM of a native build's binary as an SPDX 2.3 JSON document: one package per crate
//! linked into it (see `crates`), the binary's own package described by the document, and a
//! DEPENDS_ON relationship per dependency edge.
//!
//! Owns the SPDX rendering only; which crates are linked is `crates`' job, and attaching the
//! document to an image is the registry's. The bytes are a function of the crates, the
//! subject's name and the commit time: `created` is the commit's time and the namespace a hash
//! of the content, so one commit always gives the same document.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::error::Error;
use crate::supply::crates::{Crate, LinkedCrates, Source};

/// SPDX 2.3 JSON, as `artifactType` and as the layer's media type.
pub const MEDIA_TYPE: &str = "application/spdx+json";

/// SPDX's word for "the document makes no claim here".
const NOASSERTION: &str = "NOASSERTION";

/// The crates of one binary for one target, ready to write as SPDX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    pub crates: LinkedCrates,
    pub bin: String,
    pub triple: String,
}

impl Sbom {
    /// Asks cargo which crates `bin` of `package` links for `triple` (see `crates`).
    pub fn for_binary(
        manifest: &Path,
        package: &str,
        bin: &str,
        triple: &str,
    ) -> Result<Sbom, Error> {
        Ok(Sbom::from_crates(
            LinkedCrates::resolve(manifest, package, triple)?,
            bin,
            triple,
        ))
    }

    /// For crates already resolved (the same list the binary embeds).
    pub fn from_crates(crates: LinkedCrates, bin: &str, triple: &str) -> Sbom {
        Sbom {
            crates,
            bin: bin.to_owned(),
            triple: triple.to_owned(),
        }
    }

    /// The SPDX 2.3 JSON document, named `subject_name` (the image or binary it describes),
    /// created at `commit_time` (Unix seconds).
    pub fn to_spdx_json(&self, subject_name: &str, commit_time: u64) -> Vec<u8> {
        let ids = spdx_ids(&self.crates.crates);
        let packages: Vec<Package<'_>> = self
            .crates
            .crates
            .iter()
            .zip(&ids)
            .enumerate()
            .map(|(index, (krate, id))| package(krate, id, index == 0, self))
            .collect();
        let mut relationships = vec![Relationship {
            element: "SPDXRef-DOCUMENT".to_owned(),
            kind: "DESCRIBES",
            related: ids[0].clone(),
        }];
        for (krate, id) in self.crates.crates.iter().zip(&ids) {
            relationships.extend(krate.dependencies.iter().map(|&dep| Relationship {
                element: id.clone(),
                kind: "DEPENDS_ON",
                related: ids[dep].clone(),
            }));
        }
        let mut document = Document {
            spdx_version: "SPDX-2.3",
            data_license: "CC0-1.0",
            spdx_id: "SPDXRef-DOCUMENT",
            name: subject_name.to_owned(),
            document_namespace: String::new(),
            creation_info: CreationInfo {
                created: crate::time::rfc3339(commit_time),
                creators: vec![format!("Tool: cargo-gitops-{}", env!("CARGO_PKG_VERSION"))],
            },
            packages,
            relationships,
        };
        // SPDX wants a namespace unique to this document; a hash of everything else in it is
        // unique to its content and the same on every machine.
        let content = serde_json::to_vec(&document).unwrap_or_default();
        let hash = crate::supply::sha256_hex(&content);
        document.document_namespace = format!(
            "https://spdx.org/spdxdocs/{}-{}",
            id_safe(subject_name),
            uuid_shaped(&hash)
        );
        let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package<'a>>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package<'a> {
    name: &'a str,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    version_info: &'a str,
    download_location: String,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: String,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    external_refs: Vec<ExternalRef>,
    primary_package_purpose: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    #[serde(rename = "spdxElementId")]
    element: String,
    #[serde(rename = "relationshipType")]
    kind: &'static str,
    #[serde(rename = "relatedSpdxElement")]
    related: String,
}

fn package<'a>(krate: &'a Crate, id: &str, root: bool, sbom: &Sbom) -> Package<'a> {
    Package {
        name: &krate.name,
        spdx_id: id.to_owned(),
        version_info: &krate.version,
        download_location: download_location(krate),
        files_analyzed: false,
        license_concluded: NOASSERTION,
        license_declared: krate
            .license
            .as_deref()
            .and_then(spdx_license)
            .unwrap_or_else(|| NOASSERTION.to_owned()),
        copyright_text: NOASSERTION,
        checksums: krate
            .checksum
            .iter()
            .map(|sum| Checksum {
                algorithm: "SHA256",
                checksum_value: sum.clone(),
            })
            .collect(),
        external_refs: vec![ExternalRef {
            reference_category: "PACKAGE-MANAGER",
            reference_type: "purl",
            reference_locator: purl(krate),
        }],
        primary_package_purpose: if root { "APPLICATION" } else { "LIBRARY" },
        comment: root.then(|| {
            format!(
                "the binary `{}` of this package, built for {}",
                sbom.bin, sbom.triple
            )
        }),
    }
}

/// `SPDXRef-Package-crate-NAME-VERSION`, with a counter when two crates share both.
fn spdx_ids(crates: &[Crate]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    crates
        .iter()
        .map(|krate| {
            let base = format!(
                "SPDXRef-Package-crate-{}-{}",
                id_safe(&krate.name),
                id_safe(&krate.version)
            );
            let count = seen.entry(base.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                base
            } else {
                format!("{base}-{count}")
            }
        })
        .collect()
}

/// SPDX identifiers allow letters, digits, `.` and `-` only.
fn id_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The first 128 bits of a hash, written as a UUID is (8-4-4-4-12).
fn uuid_shaped(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn download_location(krate: &Crate) -> String {
    match &krate.source {
        Source::CratesIo => format!(
            "https://crates.io/api/v1/crates/{}/{}/download",
            krate.name, krate.version
        ),
        // SPDX's VCS form: `git+URL@REVISION`.
        Source::Git { url, commit } if !commit.is_empty() => {
            format!("git+{url}@{commit}")
        }
        Source::Git { url, .. } => format!("git+{url}"),
        // Another registry's download URL is in its index's config, which is not read here.
        Source::Registry { .. } | Source::Path => NOASSERTION.to_owned(),
    }
}

/// `pkg:cargo/NAME@VERSION`, the version's `+` percent-encoded as the purl spec requires.
pub fn purl(krate: &Crate) -> String {
    format!(
        "pkg:cargo/{}@{}",
        krate.name,
        krate.version.replace('+', "%2B")
    )
}

/// Cargo's `license` field as a valid SPDX expression: legacy `MIT/Apache-2.0` becomes
/// `MIT OR Apache-2.0`, lowercase operators are raised; anything that still is not an SPDX
/// expression of listed licences is `None` (NOASSERTION), never passed on unchecked.
pub fn spdx_license(field: &str) -> Option<String> {
    let canonical = match spdx::Expression::canonicalize(field) {
        Ok(Some(changed)) => changed,
        Ok(None) => field.to_owned(),
        Err(_) => return None,
    };
    spdx::Expression::parse(&canonical)
        .ok()
        .map(|_| canonical.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(name: &str, version: &str, source: Source, license: Option<&str>) -> Crate {
        Crate {
            name: name.into(),
            version: version.into(),
            source,
            license: license.map(str::to_owned),
            checksum: None,
            dependencies: Vec::new(),
        }
    }

    #[test]
    fn cargo_licences_become_spdx_expressions_or_noassertion() {
        assert_eq!(
            spdx_license("MIT/Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            spdx_license("MIT OR Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            spdx_license("(MIT OR Apache-2.0) AND Unicode-3.0").as_deref(),
            Some("(MIT OR Apache-2.0) AND Unicode-3.0")
        );
        assert_eq!(
            spdx_license("Apache-2.0 with LLVM-exception").as_deref(),
            Some("Apache-2.0 WITH LLVM-exception")
        );
        assert_eq!(spdx_license("Proprietary, all rights reserved"), None);
        assert_eq!(spdx_license("MIT AND"), None);
    }

    #[test]
    fn locations_and_purls_follow_the_source() {
        let registry = krate("memchr", "2.8.3", Source::CratesIo, None);
        assert_eq!(
            download_location(&registry),
            "https://crates.io/api/v1/crates/memchr/2.8.3/download"
        );
        let git = krate(
            "g",
            "0.1.0+meta",
            Source::Git {
                url: "https://example.com/g.git".into(),
                commit: "0123abc".into(),
            },
            None,
        );
        assert_eq!(
            download_location(&git),
            "git+https://example.com/g.git@0123abc"
        );
        assert_eq!(purl(&git), "pkg:cargo/g@0.1.0%2Bmeta");
        assert_eq!(
            download_location(&krate("p", "1.0.0", Source::Path, None)),
            NOASSERTION
        );
    }

    #[test]
    fn same_crates_same_bytes_and_the_namespace_follows_the_content() {
        let mut root = krate("app", "1.0.0", Source::Path, Some("MIT"));
        root.dependencies = vec![1];
        let crates = LinkedCrates {
            crates: vec![root, krate("memchr", "2.8.3", Source::CratesIo, None)],
        };
        let sbom = Sbom::from_crates(crates.clone(), "app", "x86_64-unknown-linux-gnu");
        let a = sbom.to_spdx_json("app", 1_654_880_868);
        assert_eq!(a, sbom.to_spdx_json("app", 1_654_880_868));
        let doc: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(doc["creationInfo"]["created"], "2022-06-10T17:07:48Z");
        assert_eq!(doc["packages"][0]["licenseDeclared"], "MIT");
        assert_eq!(doc["packages"][1]["licenseDeclared"], NOASSERTION);
        let later: serde_json::Value =
            serde_json::from_slice(&sbom.to_spdx_json("app", 1_654_880_869)).unwrap();
        assert_ne!(doc["documentNamespace"], later["documentNamespace"]);
        assert_eq!(
            doc["relationships"][1],
            serde_json::json!({
                "spdxElementId": "SPDXRef-Package-crate-app-1.0.0",
                "relationshipType": "DEPENDS_ON",
                "relatedSpdxElement": "SPDXRef-Package-crate-memchr-2.8.3"
            })
        );
    }

    #[test]
    fn crates_sharing_name_and_version_get_distinct_ids() {
        let crates = [
            krate("a", "1.0.0", Source::CratesIo, None),
            krate("a", "1.0.0", Source::Path, None),
        ];
        assert_eq!(
            spdx_ids(&crates),
            [
                "SPDXRef-Package-crate-a-1.0.0",
                "SPDXRef-Package-crate-a-1.0.0-2"
            ]
        );
    }
}
