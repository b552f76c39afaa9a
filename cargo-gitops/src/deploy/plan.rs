//! The plan of one environment's deploy, made from the manifests as they are in a clone: which
//! files change and how (the exact unified diff), every place that names each image and what
//! happens to it, and the commit message. The same plan is printed by `--dry-run` and committed
//! by a run. Cloning and pushing are `repository`'s; finding the spans is the editors'.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::config::HelmValues;
use crate::error::Error;

use super::edit::{Edited, Image, Occurrence, Ours, Verdict};
use super::repository::DIGEST_TRAILER;
use super::{flux_markers, helm, kustomize, yaml};

/// One image to write, and where its manifests are.
#[derive(Debug, Clone)]
pub struct Request {
    pub image: Image,
    /// The folder, relative to the repository's root (`.` for the root).
    pub path: String,
    /// The Flux policy (`NAMESPACE:NAME`) whose markers stand for the image.
    pub flux_policy: String,
    pub helm: Option<HelmValues>,
}

/// A place a manifest names an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    pub file: String,
    #[serde(flatten)]
    pub occurrence: Occurrence,
}

/// What happens to one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImagePlan {
    pub image: String,
    pub tag: String,
    pub digest: String,
    /// What the first place that names the image said before.
    pub old_tag: Option<String>,
    pub old_digest: Option<String>,
    pub places: Vec<Place>,
}

/// A file the deploy rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Relative to the repository's root, `/`-separated.
    pub path: String,
    pub before: String,
    pub after: String,
}

/// One environment's deploy.
#[derive(Debug, Clone)]
pub struct Plan {
    pub environment: String,
    pub source_ref: String,
    pub source_sha: String,
    pub images: Vec<ImagePlan>,
    pub files: Vec<FileChange>,
    /// What the promotion gates said, one line per image (`Gates:` lines of the message).
    pub gates: Vec<String>,
}

impl Plan {
    /// The exact change, as a unified diff with `a/` and `b/` paths.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for file in &self.files {
            let diff = similar::TextDiff::from_lines(&file.before, &file.after)
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{}", file.path), &format!("b/{}", file.path))
                .to_string();
            out.push_str(&diff);
        }
        out
    }

    /// The commit message: environment, source commit, each image's old and new tag and
    /// digest, and one trailer per digest written.
    pub fn message(&self) -> String {
        let written: Vec<&ImagePlan> = self
            .images
            .iter()
            .filter(|i| {
                i.places
                    .iter()
                    .any(|p| p.occurrence.verdict == Verdict::Write)
            })
            .collect();
        let short = &self.source_sha[..self.source_sha.len().min(7)];
        let mut message = format!(
            "deploy {}: {} image{} of {short}\n\nEnvironment: {}\nSource commit: {} ({})\n\n",
            self.environment,
            written.len(),
            if written.len() == 1 { "" } else { "s" },
            self.environment,
            self.source_sha,
            self.source_ref
        );
        for image in &written {
            message.push_str(&format!(
                "{}: {} -> {}@{}\n",
                image.image,
                old_reference(image),
                image.tag,
                image.digest
            ));
        }
        message.push('\n');
        for gates in &self.gates {
            message.push_str(&format!("Gates: {gates}\n"));
        }
        if !self.gates.is_empty() {
            message.push('\n');
        }
        for image in &written {
            message.push_str(&format!("{DIGEST_TRAILER}: {}\n", image.digest));
        }
        message
    }

    /// Whether anything is to be committed.
    pub fn changes(&self) -> bool {
        !self.files.is_empty()
    }
}

/// `tag@digest` as it was, with `(none)` for what was not there.
pub fn old_reference(image: &ImagePlan) -> String {
    match (&image.old_tag, &image.old_digest) {
        (None, None) => "(none)".to_owned(),
        (tag, digest) => format!(
            "{}@{}",
            tag.as_deref().unwrap_or("(none)"),
            digest
                .as_deref()
                .filter(|d| !d.is_empty())
                .unwrap_or("(none)")
        ),
    }
}

/// The YAML files under `dir` (relative paths from `root`, sorted), not following symlinks
/// and skipping hidden folders.
fn yaml_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), Error> {
    let read_error = |source| Error::Read {
        what: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .collect::<Result<_, _>>()
        .map_err(read_error)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(read_error)?;
        let path = entry.path();
        if kind.is_dir() && !name.starts_with('.') {
            yaml_files(root, &path, out)?;
        } else if kind.is_file()
            && (name.ends_with(".yaml") || name.ends_with(".yml") || name == "Kustomization")
            && let Ok(relative) = path.strip_prefix(root)
        {
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Makes the plan of `requests` against the manifests at `root`.
pub fn make(
    root: &Path,
    environment: &str,
    source_ref: &str,
    source_sha: &str,
    requests: &[Request],
    ours: Ours<'_>,
) -> Result<Plan, Error> {
    let mut texts: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut images = Vec::new();
    for request in requests {
        let folder = if request.path == "." {
            root.to_path_buf()
        } else {
            root.join(&request.path)
        };
        let is_dir = std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir());
        if !is_dir {
            return Err(Error::Deploy(format!(
                "the manifests repository has no folder `{}` (deploy.path); create it with the manifests, or fix `deploy.path`",
                request.path
            )));
        }
        let mut files = Vec::new();
        yaml_files(root, &folder, &mut files)?;
        let helm_file = request.helm.as_ref().map(|helm| {
            if request.path == "." {
                helm.file.clone()
            } else {
                format!("{}/{}", request.path, helm.file)
            }
        });
        if let Some(file) = &helm_file
            && !files.contains(file)
        {
            return Err(Error::Deploy(format!(
                "the manifests repository has no Helm values file `{file}` (deploy.helm-values); add it, or fix `deploy.helm-values`"
            )));
        }
        let mut places = Vec::new();
        for file in files {
            let text = match texts.get(&file) {
                Some((_, now)) => now.clone(),
                None => match std::fs::read(root.join(&file)) {
                    Ok(bytes) => match String::from_utf8(bytes) {
                        Ok(text) => {
                            texts.insert(file.clone(), (text.clone(), text.clone()));
                            text
                        }
                        Err(_) => continue,
                    },
                    Err(source) => {
                        return Err(Error::Read {
                            what: file.clone(),
                            source,
                        });
                    }
                },
            };
            let name = file.rsplit('/').next().unwrap_or(&file);
            let cannot = |why: String| {
                Error::Deploy(format!("cannot edit {file}: {why}; nothing was changed"))
            };
            let mut now = text;
            let mut edited = Edited::default();
            for step in 0..3 {
                let result = match step {
                    0 if kustomize::FILE_NAMES.contains(&name) => {
                        kustomize::edit(&now, &request.image, ours)
                    }
                    1 if flux_markers::has_markers(&now) => {
                        flux_markers::edit(&now, &request.flux_policy, &request.image, ours)
                    }
                    2 if helm_file.as_deref() == Some(file.as_str()) => {
                        let helm = request.helm.as_ref().expect("helm_file comes from it");
                        helm::edit(&now, &helm.tag, &helm.digest, &request.image, ours)
                            .map_err(|why| format!("it {why}"))
                    }
                    _ => continue,
                };
                let found = result.map_err(cannot)?;
                now = yaml::apply(&now, &found.splices);
                edited.extend(found);
            }
            for occurrence in edited.occurrences {
                places.push(Place {
                    file: file.clone(),
                    occurrence,
                });
            }
            if let Some(entry) = texts.get_mut(&file) {
                entry.1 = now;
            }
        }
        if places.is_empty() {
            return Err(Error::Deploy(format!(
                "no manifest under `{}` names image {}: list it in a kustomization's `images:`, mark its value with # {{\"$imagepolicy\": \"{}\"}}, or set `deploy.helm-values`",
                request.path, request.image.name, request.flux_policy
            )));
        }
        let first = &places[0].occurrence;
        images.push(ImagePlan {
            image: request.image.name.clone(),
            tag: request.image.tag.clone(),
            digest: request.image.digest.clone(),
            old_tag: first.old_tag.clone(),
            old_digest: first.old_digest.clone(),
            places,
        });
    }
    let files = texts
        .into_iter()
        .filter(|(_, (before, after))| before != after)
        .map(|(path, (before, after))| FileChange {
            path,
            before,
            after,
        })
        .collect();
    Ok(Plan {
        environment: environment.to_owned(),
        source_ref: source_ref.to_owned(),
        source_sha: source_sha.to_owned(),
        images,
        files,
        gates: Vec::new(),
    })
}
