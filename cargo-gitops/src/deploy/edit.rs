//! What every manifest editor shares: the image being written, what was found where, and the
//! one rule that decides whether a value is written, already right, pinned, or not this tool's
//! to change. The editors (`kustomize`, `flux_markers`, `helm`) find the spans; choosing files
//! and committing them is `plan`'s.

use serde::Serialize;

use super::yaml::Splice;

/// The image a deploy writes: its repository (no tag), tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    /// `registry/name`, as the tags are pushed to.
    pub name: String,
    pub tag: String,
    pub digest: String,
}

impl Image {
    /// `name:tag@digest`: what runs is exactly what was built, and the tag says which.
    pub fn reference(&self) -> String {
        format!("{}:{}@{}", self.name, self.tag, self.digest)
    }
}

/// What happens to one place a manifest names the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Verdict {
    /// Written with the new tag and digest.
    Write,
    /// Already names this tag and digest.
    Unchanged,
    /// Marked `# gitops:pinned`: kept.
    Pinned,
    /// Names a digest no deploy of this tool wrote (set by hand, a rollback): kept.
    NotOurs,
}

/// One place a manifest names the image, and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    /// 1-based line.
    pub line: usize,
    /// What kind of reference it is (`kustomize images`, `flux marker`, `helm values`).
    pub kind: &'static str,
    pub old_tag: Option<String>,
    pub old_digest: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// What an editor found in one file: the splices to make and every occurrence.
#[derive(Debug, Default, Clone)]
pub struct Edited {
    pub splices: Vec<Splice>,
    pub occurrences: Vec<Occurrence>,
}

impl Edited {
    pub fn extend(&mut self, other: Edited) {
        self.splices.extend(other.splices);
        self.occurrences.extend(other.occurrences);
    }
}

/// Whether a digest is one a deploy of this tool wrote (asked of the manifests' history).
pub type Ours<'a> = &'a dyn Fn(&str) -> bool;

/// The rule every editor applies, in this order: a value already right is left as it is; a
/// pinned value is kept; a digest this tool never wrote is kept (someone set it on purpose);
/// anything else is written.
pub fn verdict(
    image: &Image,
    pinned: bool,
    old_tag: Option<&str>,
    old_digest: Option<&str>,
    ours: Ours<'_>,
) -> Verdict {
    if old_tag == Some(image.tag.as_str()) && old_digest == Some(image.digest.as_str()) {
        return Verdict::Unchanged;
    }
    if pinned {
        return Verdict::Pinned;
    }
    match old_digest.filter(|d| !d.is_empty()) {
        Some(digest) if digest != image.digest && !ours(digest) => Verdict::NotOurs,
        _ => Verdict::Write,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::Image;

    pub fn image() -> Image {
        Image {
            name: "127.0.0.1:5000/app".to_owned(),
            tag: "stg-b4b9fda-1654880868".to_owned(),
            digest: format!("sha256:{}", "a".repeat(64)),
        }
    }

    pub fn ours_digest() -> String {
        format!("sha256:{}", "0".repeat(64))
    }

    pub fn ours(digest: &str) -> bool {
        digest == ours_digest()
    }
}
