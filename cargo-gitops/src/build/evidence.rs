//! The documents a build attaches to the image it makes: the SBOM of each platform's binary
//! (native builds) and the provenance statement of the image, prepared from the plan's inputs
//! before anything runs and completed with the image's digests once it exists. What the
//! documents say is `supply`'s business; attaching them (to a registry or into an image
//! layout) is `job`'s and `registry::referrers`'.

use std::collections::BTreeMap;

use crate::build::builder::BuildSpec;
use crate::build::job::Job;
use crate::build::native::{Binary, NativeSpec, Target};
use crate::config::BuilderKind;
use crate::error::Error;
use crate::registry::oci::{Descriptor, Digest};
use crate::registry::referrers::Artifact;
use crate::supply::crates::LinkedCrates;
use crate::supply::provenance::{
    BaseImage, BuildType, Builder, ExternalParameters, Provenance, SourceCommit, Subject,
};
use crate::supply::sbom::Sbom;

/// SPDX 2.3 JSON, as `artifactType` and as the layer's media type.
pub const SPDX_MEDIA_TYPE: &str = crate::supply::sbom::MEDIA_TYPE;
/// An in-toto statement in JSON.
pub const IN_TOTO_MEDIA_TYPE: &str = crate::supply::provenance::MEDIA_TYPE;

/// What a build attaches, before the image's digests are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Documents {
    /// One per platform of a native build, in the image's platform order: the crates its
    /// binary links. Empty when the SBOM is off or the builder makes none.
    pub sboms: Vec<Artifact>,
    /// The statement, its subject still empty.
    pub provenance: Option<Provenance>,
}

impl Documents {
    /// The documents of a native build of `binary` for `targets` (whose linked crates are
    /// `crates`, in the same order) into `image` (`registry/name`, no tag).
    pub fn native(
        job: &Job<'_>,
        spec: &NativeSpec,
        binary: &Binary,
        targets: &[Target],
        crates: &[LinkedCrates],
        image: &str,
    ) -> Documents {
        let config = job.config;
        // `crates` is empty when the SBOM is off.
        let sboms = targets
            .iter()
            .zip(crates)
            .map(|(target, crates)| {
                let sbom = Sbom::from_crates(crates.clone(), &binary.bin, &target.triple);
                artifact(SPDX_MEDIA_TYPE, sbom.to_spdx_json(image, job.epoch))
            })
            .collect();
        let provenance = config.build.provenance(BuilderKind::Native).then(|| {
            let lock = binary.workspace_root.join("Cargo.lock");
            let internal = BTreeMap::from([
                (
                    "targets".to_owned(),
                    serde_json::json!(targets.iter().map(|t| &t.triple).collect::<Vec<_>>()),
                ),
                ("sourceDateEpoch".to_owned(), serde_json::json!(job.epoch)),
            ]);
            Provenance {
                build_type: BuildType::Native,
                external: ExternalParameters {
                    command: "cargo gitops build --build-with native".to_owned(),
                    package: Some(binary.package.clone()),
                    bin: Some(binary.bin.clone()),
                    platforms: config.build.platforms.clone(),
                    ..ExternalParameters::default()
                },
                internal,
                base: spec.base.as_deref().map(base_image),
                cargo_lock: std::fs::read(&lock).ok(),
                ..statement(job)
            }
        });
        Documents { sboms, provenance }
    }

    /// The documents of a podman build of `spec`: its provenance, when on.
    pub fn podman(job: &Job<'_>, spec: &BuildSpec) -> Documents {
        let provenance = job.config.build.provenance(BuilderKind::Podman).then(|| {
            let relative = |path: &std::path::Path| {
                path.strip_prefix(&job.config.root_dir)
                    .unwrap_or(path)
                    .display()
                    .to_string()
            };
            Provenance {
                build_type: BuildType::Podman,
                external: ExternalParameters {
                    command: "cargo gitops build --build-with podman".to_owned(),
                    platforms: spec.platforms.clone(),
                    dockerfile: Some(relative(&spec.dockerfile)),
                    context: Some(relative(&spec.context)),
                    build_args: spec.build_args.clone(),
                    ..ExternalParameters::default()
                },
                ..statement(job)
            }
        });
        Documents {
            sboms: Vec::new(),
            provenance,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sboms.is_empty() && self.provenance.is_none()
    }

    /// The artifact types attached, for progress lines and the dry run.
    pub fn artifact_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.sboms.iter().map(|a| a.artifact_type.clone()).collect();
        if self.provenance.is_some() {
            types.push(IN_TOTO_MEDIA_TYPE.to_owned());
        }
        types
    }

    /// Each document with what it is attached to, now that the image exists: the SBOM of
    /// platform `i` to `platforms[i]` (the top manifest when the image has one platform), the
    /// provenance to `top`, naming `image` and `top`'s digest as its subject.
    pub fn attachments(
        &self,
        image: &str,
        top: &Descriptor,
        platforms: &[Descriptor],
    ) -> Result<Vec<(Descriptor, Artifact)>, Error> {
        let mut attachments = Vec::new();
        for (i, sbom) in self.sboms.iter().enumerate() {
            let subject = match platforms {
                [] | [_] => top,
                many => many.get(i).ok_or_else(|| {
                    Error::Internal(format!(
                        "an SBOM for platform {i} of an image with {} platforms",
                        many.len()
                    ))
                })?,
            };
            attachments.push((subject.clone(), sbom.clone()));
        }
        if let Some(provenance) = &self.provenance {
            let statement = Provenance {
                subjects: vec![Subject {
                    name: image.to_owned(),
                    digest: top.digest.to_string(),
                }],
                ..provenance.clone()
            };
            attachments.push((
                top.clone(),
                artifact(IN_TOTO_MEDIA_TYPE, statement.to_json()?),
            ));
        }
        Ok(attachments)
    }
}

/// A manifest's descriptor, as the subject of what is attached to it.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        urls: Vec::new(),
        platform: None,
        annotations: BTreeMap::new(),
        other: serde_json::Map::new(),
    }
}

fn artifact(media_type: &str, bytes: Vec<u8>) -> Artifact {
    Artifact {
        artifact_type: media_type.to_owned(),
        media_type: media_type.to_owned(),
        bytes,
        annotations: BTreeMap::new(),
    }
}

/// What every statement of this commit says, whatever the builder.
fn statement(job: &Job<'_>) -> Provenance {
    Provenance {
        subjects: Vec::new(),
        build_type: BuildType::Native,
        external: ExternalParameters::default(),
        internal: BTreeMap::new(),
        source: SourceCommit {
            repository: job.source_url.clone().unwrap_or_default(),
            commit: job.deployment.sha.clone(),
        },
        base: None,
        cargo_lock: None,
        builder: Builder::detect(&|key| std::env::var(key).ok()),
        commit_time: job.epoch,
    }
}

/// `registry/name@sha256:…` as the base image of a statement.
fn base_image(reference: &str) -> BaseImage {
    let (repository, digest) = reference.split_once('@').unwrap_or((reference, ""));
    BaseImage {
        repository: repository.to_owned(),
        digest: digest.to_owned(),
    }
}
