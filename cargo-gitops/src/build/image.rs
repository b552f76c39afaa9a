//! OCI images made by the tool itself: a deterministic layer from files, the image config and
//! manifest, an index over platforms, and where they go (an OCI image layout directory, or a
//! registry through the built-in client). Compiling what goes in them is `native`'s job.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::error::Error;
use crate::files::write_whole;
use crate::registry::client::{
    Descriptor, Manifest, RegistryClient, Repository, Scope, sha256_digest,
};
use crate::registry::referrers::{Artifact, EMPTY, EMPTY_MEDIA_TYPE};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A content-addressed blob held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_owned(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    pub fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len() })
    }
}

/// A file to put in a layer.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// Path inside the image, without a leading `/` (`usr/local/bin/demo-app`).
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// A gzip-compressed tar layer that depends only on its files and `epoch`: entries sorted,
/// parent folders listed, owner 0:0, fixed modes, mtime `epoch`, no user or host names.
/// Returns the compressed blob and the digest of the uncompressed tar (the config's diff id).
pub fn deterministic_layer(files: &[LayerFile], epoch: u64) -> Result<(Blob, String), Error> {
    let mut entries: BTreeMap<String, Option<&LayerFile>> = BTreeMap::new();
    for file in files {
        let mut parent = Path::new(&file.path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            entries.insert(format!("{}/", dir.display()), None);
            parent = dir.parent();
        }
        entries.insert(file.path.clone(), Some(file));
    }
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    let io = |source: std::io::Error| Error::Write {
        what: "the image layer".to_owned(),
        source,
    };
    for (path, file) in &entries {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(epoch);
        match file {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                header.set_cksum();
                tar.append_data(&mut header, path, std::io::empty())
                    .map_err(io)?;
            }
            Some(file) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(file.mode);
                header.set_size(file.contents.len() as u64);
                header.set_cksum();
                tar.append_data(&mut header, path, file.contents.as_slice())
                    .map_err(io)?;
            }
        }
    }
    let uncompressed = tar.into_inner().map_err(io)?;
    let diff_id = sha256_digest(&uncompressed);
    // Fixed level, no file name, mtime 0: the same tar always compresses to the same bytes.
    let mut gzip = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    gzip.write_all(&uncompressed).map_err(io)?;
    let compressed = gzip.finish().map_err(io)?;
    Ok((Blob::new(OCI_LAYER_GZIP, compressed), diff_id))
}

/// What the image config says about running the image.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    /// The entrypoint's arguments; empty leaves `Cmd` out.
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub exposed_ports: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// An image for one platform: its config, its layers and its manifest.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub config: Blob,
    /// Layers the tool made; base layers stay where they are until pushed or written.
    pub layers: Vec<Blob>,
    pub base_layers: Vec<Descriptor>,
    pub manifest: Blob,
}

/// The pieces of a base image (an existing image whose layers go first).
#[derive(Debug, Clone)]
pub struct Base {
    pub repository: Repository,
    pub config: Value,
    pub layers: Vec<Descriptor>,
}

/// Assembles config and manifest around `layer` (on top of `base`, if any).
pub fn assemble(
    platform: (&str, &str, Option<&str>),
    run: &RunConfig,
    layer: (Blob, String),
    base: Option<&Base>,
    created: &str,
) -> PlatformImage {
    let (os, architecture, variant) = platform;
    let (layer, diff_id) = layer;
    let mut config = base.map(|b| b.config.clone()).unwrap_or_else(|| json!({}));
    let env = merged_env(&config, run);
    let mut labels: BTreeMap<String, String> =
        serde_json::from_value(config["config"]["Labels"].clone()).unwrap_or_default();
    labels.extend(run.labels.clone());
    let ports: BTreeMap<String, Value> = run
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), json!({})))
        .collect();
    let mut diff_ids: Vec<Value> = config["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    diff_ids.push(json!(diff_id));
    let mut history: Vec<Value> = config["history"].as_array().cloned().unwrap_or_default();
    history.push(
        json!({ "created": created, "created_by": "cargo gitops build --build-with native" }),
    );
    config["architecture"] = json!(architecture);
    config["os"] = json!(os);
    if let Some(variant) = variant {
        config["variant"] = json!(variant);
    }
    config["created"] = json!(created);
    config["config"] = json!({
        "Entrypoint": run.entrypoint,
        "User": run.user,
        "Env": env,
        "Labels": labels,
        "ExposedPorts": ports,
        "WorkingDir": run.working_dir,
    });
    if !run.cmd.is_empty() {
        config["config"]["Cmd"] = json!(run.cmd);
    }
    config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
    config["history"] = json!(history);
    let config = Blob::new(
        OCI_CONFIG,
        serde_json::to_vec(&config).expect("a config always serialises"),
    );
    let base_layers = base.map(|b| b.layers.clone()).unwrap_or_default();
    let mut layer_descriptors: Vec<Value> = base_layers
        .iter()
        .map(|d| serde_json::to_value(d).expect("a descriptor always serialises"))
        .collect();
    layer_descriptors.push(layer.descriptor());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": layer_descriptors,
        "annotations": { "org.opencontainers.image.created": created },
    });
    PlatformImage {
        os: os.to_owned(),
        architecture: architecture.to_owned(),
        variant: variant.map(str::to_owned),
        config,
        layers: vec![layer],
        base_layers,
        manifest: Blob::new(
            OCI_MANIFEST,
            serde_json::to_vec(&manifest).expect("a manifest always serialises"),
        ),
    }
}

/// The base config's `Env` with the run's variables over it, as `KEY=value`, sorted.
fn merged_env(config: &Value, run: &RunConfig) -> Vec<String> {
    let mut merged: BTreeMap<String, String> = config["config"]["Env"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|v| {
                    v.as_str()?
                        .split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    merged.extend(run.env.clone());
    merged
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

impl PlatformImage {
    /// The platform, as an index or a layout's `index.json` names it.
    fn platform(&self) -> Value {
        let mut platform = json!({ "os": self.os, "architecture": self.architecture });
        if let Some(variant) = &self.variant {
            platform["variant"] = json!(variant);
        }
        platform
    }
}

/// The image as pushed or written: one platform's manifest, or an index over several.
#[derive(Debug, Clone)]
pub struct Image {
    pub platforms: Vec<PlatformImage>,
    pub index: Option<Blob>,
    pub base: Option<Repository>,
}

impl Image {
    pub fn new(platforms: Vec<PlatformImage>, base: Option<Repository>) -> Image {
        let index = (platforms.len() > 1).then(|| {
            let manifests: Vec<Value> = platforms
                .iter()
                .map(|p| {
                    let mut descriptor = p.manifest.descriptor();
                    descriptor["platform"] = p.platform();
                    descriptor
                })
                .collect();
            let index =
                json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
            Blob::new(
                OCI_INDEX,
                serde_json::to_vec(&index).expect("an index always serialises"),
            )
        });
        Image {
            platforms,
            index,
            base,
        }
    }

    /// The top-level manifest: the index when there is one.
    pub fn top(&self) -> &Blob {
        self.index.as_ref().unwrap_or(&self.platforms[0].manifest)
    }

    pub fn digest(&self) -> &str {
        &self.top().digest
    }

    /// Pushes blobs (those already there are skipped), platform manifests by digest, then the
    /// top manifest under `tag`. Base layers are brought over from the base's registry.
    pub fn push(
        &self,
        client: &RegistryClient,
        base_client: Option<&RegistryClient>,
        target: &Repository,
        tag: &str,
    ) -> Result<(), Error> {
        let push = Scope::push(&target.name);
        for platform in &self.platforms {
            if let (Some(base), Some(base_client)) = (&self.base, base_client) {
                for layer in &platform.base_layers {
                    client.copy_blob(base_client, &base.name, &target.name, layer)?;
                }
            }
            for blob in platform
                .layers
                .iter()
                .chain(std::iter::once(&platform.config))
            {
                client.upload_blob(&target.name, &blob.digest, &blob.bytes)?;
            }
            if self.index.is_some() {
                client.put_manifest(
                    &target.name,
                    &platform.manifest.digest,
                    &as_manifest(&platform.manifest),
                    &push,
                )?;
            }
        }
        client.put_manifest(&target.name, tag, &as_manifest(self.top()), &push)
    }

    /// Writes an OCI image layout at `dir`, the top manifest named by each of `tags`, and
    /// each of `referrers` (an artifact with the manifest it is attached to) listed in
    /// `index.json` untagged, as the image layout specification places referrers.
    pub fn write_layout(
        &self,
        dir: &Path,
        tags: &[String],
        base_client: Option<&RegistryClient>,
        referrers: &[(Descriptor, Artifact)],
    ) -> Result<(), Error> {
        let blobs = dir.join("blobs").join("sha256");
        let write_blob = |blob: &Blob| -> Result<(), Error> {
            let path = blobs.join(blob.digest.trim_start_matches("sha256:"));
            write_whole(&path, &blob.bytes)
        };
        for platform in &self.platforms {
            if let (Some(base), Some(base_client)) = (&self.base, base_client) {
                for layer in &platform.base_layers {
                    let path = blobs.join(layer.digest.hex());
                    if !path.is_file() {
                        download_into(base_client, &base.name, layer, &path)?;
                    }
                }
            }
            for blob in platform
                .layers
                .iter()
                .chain([&platform.config, &platform.manifest])
            {
                write_blob(blob)?;
            }
        }
        if let Some(index) = &self.index {
            write_blob(index)?;
        }
        let top = self.top();
        let mut manifests: Vec<Value> = tags
            .iter()
            .map(|tag| {
                let mut descriptor = top.descriptor();
                descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
                // Tools that pick an image by platform (syft, for one) skip the untagged
                // referrers below only when the image says which platform it is.
                if let ([platform], None) = (self.platforms.as_slice(), &self.index) {
                    descriptor["platform"] = platform.platform();
                }
                descriptor
            })
            .collect();
        for (subject, artifact) in referrers {
            let manifest = artifact.manifest(subject);
            for blob in [
                Blob::new(EMPTY_MEDIA_TYPE, EMPTY.to_vec()),
                Blob::new(&artifact.media_type, artifact.bytes.clone()),
                Blob::new(&manifest.media_type, manifest.bytes.clone()),
            ] {
                write_blob(&blob)?;
            }
            let mut descriptor = Blob::new(&manifest.media_type, manifest.bytes).descriptor();
            descriptor["artifactType"] = json!(artifact.artifact_type);
            manifests.push(descriptor);
        }
        let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
        let layout = dir.join("oci-layout");
        write_whole(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let index_path = dir.join("index.json");
        // index.json last: a layout is only usable once everything it names is there.
        write_whole(
            &index_path,
            &serde_json::to_vec(&index).expect("an index always serialises"),
        )
    }
}

fn as_manifest(blob: &Blob) -> Manifest {
    Manifest::new(blob.bytes.clone(), &blob.media_type)
}

/// Streams a base layer from its registry into `path` (through a temporary file beside it,
/// checked against the descriptor before it is renamed into place).
fn download_into(
    client: &RegistryClient,
    name: &str,
    layer: &Descriptor,
    path: &Path,
) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let write_error = |source| Error::Write {
        what: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let mut temporary = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
    client.download_blob(name, layer, temporary.as_file_mut())?;
    temporary.persist(path).map_err(|e| write_error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<LayerFile> {
        vec![LayerFile {
            path: "usr/local/bin/app".into(),
            contents: b"binary".to_vec(),
            mode: 0o755,
        }]
    }

    #[test]
    fn layers_depend_only_on_files_and_epoch() {
        let (a, diff_a) = deterministic_layer(&files(), 1_654_880_868).unwrap();
        let (b, diff_b) = deterministic_layer(&files(), 1_654_880_868).unwrap();
        assert_eq!((a.digest.clone(), diff_a.clone()), (b.digest, diff_b));
        let (c, _) = deterministic_layer(&files(), 1_654_880_869).unwrap();
        assert_ne!(a.digest, c.digest);
    }

    #[test]
    fn layer_lists_parents_with_fixed_owner_and_modes() {
        let (blob, _) = deterministic_layer(&files(), 7).unwrap();
        let tar = flate2::read::GzDecoder::new(blob.bytes.as_slice());
        let mut archive = tar::Archive::new(tar);
        let entries: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("usr/".to_owned(), 0o755, 0, 7),
                ("usr/local/".to_owned(), 0o755, 0, 7),
                ("usr/local/bin/".to_owned(), 0o755, 0, 7),
                ("usr/local/bin/app".to_owned(), 0o755, 0, 7),
            ]
        );
    }
}
