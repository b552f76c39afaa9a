//! Keeping tags where they belong once images exist: the lookup tag is claimed, never
//! overwritten (the first complete image of a commit wins); every environment tag is brought
//! onto the digest the lookup tag names; and a versioned tag never moves to another commit,
//! which is told from the image's revision label or from the `commit-*` tag that names it.
//! No tag is moved onto an image before `check_commit` has read it by digest (so its bytes
//! are checked against the digest the registry gave) and found this commit as its revision.
//! What the steps are is `plan`'s business; the registry operations are the retagger's.

use serde_json::Value;

use crate::build::labels::REVISION;
use crate::build::retag::Retagger;
use crate::error::Error;
use crate::registry::client::{RegistryClient, Repository, Scope};
use crate::registry::oci::Parsed;

/// How many times the tags are brought back onto the lookup tag's digest when concurrent
/// runs for the same commit keep moving them.
const CONVERGE_ROUNDS: usize = 5;

/// How many `commit-*` tags are compared with a digest to find its commit, at most.
const MAX_LOOKUP_TAGS: usize = 200;

/// Points `tag` in `target` at `digest` of `source` unless `tag` exists already. Returns the
/// digest `tag` names afterwards: this run's image, or the one an earlier run claimed.
///
/// A claim is a read then a write, so two runs that both find the tag free may both write;
/// the image is complete before either write, and `converge` moves each run's tags onto
/// whatever the lookup tag names once it runs.
/// An existing tag naming another digest (an earlier run's image) is taken only once
/// `check_commit` finds that image to be `sha`'s.
pub fn claim(
    retagger: &Retagger,
    source: &Repository,
    digest: &str,
    target: &Repository,
    tag: &str,
    sha: &str,
) -> Result<String, Error> {
    if let Some(existing) = retagger.lookup(target, tag)? {
        if existing != digest {
            check_commit(retagger, target, tag, &existing, sha)?;
        }
        return Ok(existing);
    }
    retagger.retag(source, digest, target, &[tag.to_owned()])?;
    Ok(digest.to_owned())
}

/// Refuses when `tag` already names an image of a commit other than `sha`. An image with
/// the `allowed` digest, or whose commit is `sha`, may keep or take the tag.
pub fn guard(
    retagger: &Retagger,
    repository: &Repository,
    tag: &str,
    sha: &str,
    allowed: Option<&str>,
) -> Result<(), Error> {
    match retagger.lookup(repository, tag)? {
        None => Ok(()),
        Some(digest) if Some(digest.as_str()) == allowed => Ok(()),
        Some(digest) => refuse_other_commit(retagger, repository, tag, &digest, sha),
    }
}

fn refuse_other_commit(
    retagger: &Retagger,
    repository: &Repository,
    tag: &str,
    digest: &str,
    sha: &str,
) -> Result<(), Error> {
    match commit_of(retagger, repository, digest)? {
        Some(commit) if commit == sha => Ok(()),
        commit => Err(Error::ImmutableTag {
            image: repository.with_tag(tag),
            commit: commit.unwrap_or_else(|| {
                format!("unknown (image {digest} has no revision label and no commit-* tag)")
            }),
        }),
    }
}

/// Makes every one of `tags` name the digest the lookup tag names, and returns that digest.
/// Runs for the same commit may race; each ends by checking, so the last leaves one digest.
/// A digest not among `verified` (those this run built or checked) is checked with
/// `check_commit` before any tag moves onto it.
pub fn converge(
    retagger: &Retagger,
    repository: &Repository,
    lookup_tag: &str,
    tags: &[String],
    immutable: &[String],
    sha: &str,
    verified: &mut Vec<String>,
) -> Result<String, Error> {
    for _ in 0..CONVERGE_ROUNDS {
        let digest = retagger
            .lookup(repository, lookup_tag)?
            .ok_or_else(|| Error::Registry {
                registry: repository.registry.clone(),
                step: "check".to_owned(),
                message: format!(
                    "{} is missing right after it was pushed; check the registry, then run again",
                    repository.with_tag(lookup_tag)
                ),
            })?;
        let mut stale = Vec::new();
        for tag in tags {
            let current = retagger.lookup(repository, tag)?;
            if current.as_deref() == Some(digest.as_str()) {
                continue;
            }
            if let Some(current) = current.filter(|_| immutable.contains(tag)) {
                refuse_other_commit(retagger, repository, tag, &current, sha)?;
            }
            stale.push(tag.clone());
        }
        if stale.is_empty() {
            // A run that found the lookup tag free at the same moment as this one may have
            // written it since: read it once more, and follow it if it moved.
            if retagger.lookup(repository, lookup_tag)?.as_deref() == Some(digest.as_str()) {
                return Ok(digest);
            }
            continue;
        }
        if !verified.contains(&digest) {
            check_commit(retagger, repository, lookup_tag, &digest, sha)?;
            verified.push(digest.clone());
        }
        retagger.retag(repository, &digest, repository, &stale)?;
    }
    Err(Error::Registry {
        registry: repository.registry.clone(),
        step: "check".to_owned(),
        message: format!(
            "the tags of {repository} kept moving; another job for the same commit may be running, run again once it ends"
        ),
    })
}

/// Refuses, before any tag moves, an image that `tag` names as `digest` but that is not the
/// image of commit `sha`: its manifest is read by digest (the client checks that the bytes
/// hash to it, so a registry or proxy cannot pass one image off as another), and its revision
/// (the manifest's `org.opencontainers.image.revision` annotation, else its config's label)
/// must be `sha`. Every image this tool builds carries that label.
pub fn check_commit(
    retagger: &Retagger,
    repository: &Repository,
    tag: &str,
    digest: &str,
    sha: &str,
) -> Result<(), Error> {
    let revision = revision_label(&*retagger.client(&repository.registry)?, repository, digest)?;
    if revision.as_deref() == Some(sha) {
        return Ok(());
    }
    let whose = match revision {
        Some(other) => format!(
            "the image of commit {}",
            crate::error::quote_external(&other)
        ),
        None => "an image with no revision label".to_owned(),
    };
    Err(Error::Registry {
        registry: repository.registry.clone(),
        step: "lookup".to_owned(),
        message: format!(
            "{} names {digest}, {whose}, not of commit {sha}; no tag was moved onto it: check the registry and anything between it and this machine (a proxy, a mirror)",
            repository.with_tag(tag)
        ),
    })
}

/// The commit an image was built from: its revision label, else the commit of a
/// `commit-<sha40>` tag that names the same digest. Read with the built-in client.
pub fn commit_of(
    retagger: &Retagger,
    repository: &Repository,
    digest: &str,
) -> Result<Option<String>, Error> {
    if let Some(revision) =
        revision_label(&*retagger.client(&repository.registry)?, repository, digest)?
    {
        return Ok(Some(revision));
    }
    let client = retagger.client(&repository.registry)?;
    let scope = Scope::pull(&repository.name);
    let lookup_tags = client
        .list_tags(&repository.name)?
        .into_iter()
        .filter(|tag| crate::tags::lookup_commit(tag).is_some())
        .take(MAX_LOOKUP_TAGS);
    for tag in lookup_tags {
        if client
            .manifest_digest(&repository.name, &tag, &scope)?
            .as_deref()
            == Some(digest)
        {
            return Ok(crate::tags::lookup_commit(&tag).map(str::to_owned));
        }
    }
    Ok(None)
}

/// `org.opencontainers.image.revision` of an image: the manifest's annotation, else its
/// config's label (of its first platform, for an index).
pub fn revision_label(
    client: &RegistryClient,
    repository: &Repository,
    digest: &str,
) -> Result<Option<String>, Error> {
    let scope = Scope::pull(&repository.name);
    let unreadable = |e: serde_json::Error| Error::Registry {
        registry: repository.registry.clone(),
        step: "read the image's labels".to_owned(),
        message: format!("the manifest of {digest} is not valid: {e}"),
    };
    let mut manifest = client.get_manifest(&repository.name, digest, &scope)?;
    let image = loop {
        let annotated = serde_json::from_slice::<Value>(&manifest.bytes)
            .ok()
            .and_then(|value| value["annotations"][REVISION].as_str().map(str::to_owned));
        if annotated.is_some() {
            return Ok(annotated);
        }
        match manifest.parse().map_err(unreadable)? {
            Parsed::Image(image) => break image,
            Parsed::Index(index) => {
                // Attestations are listed as the platform `unknown/unknown`: not an image.
                let Some(child) = index
                    .manifests
                    .iter()
                    .find(|m| m.platform.as_ref().is_none_or(|p| p.os != "unknown"))
                else {
                    return Ok(None);
                };
                manifest = client.get_manifest(&repository.name, &child.digest, &scope)?;
            }
        }
    };
    let config = client.get_blob(&repository.name, &image.config)?;
    let config: Value = serde_json::from_slice(&config).map_err(unreadable)?;
    Ok(config["config"]["Labels"][REVISION]
        .as_str()
        .map(str::to_owned))
}
