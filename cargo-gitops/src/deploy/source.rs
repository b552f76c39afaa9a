//! What a deploy writes for one image: the digest the registry holds under the commit's
//! lookup tag (the image `build` made or retagged), and the environment tag that names that
//! digest. The tags come from the same rules as `build` (`deployment`, `tags`); with a
//! timestamp in the tag, the one `build` pushed is found among the registry's tags, since a
//! later job cannot know the time it was built at. Writing manifests is not this module's job.

use crate::delivery::history::{self, Key};
use crate::deployment::Deployment;
use crate::environment::Environment;
use crate::error::Error;
use crate::registry::client::{RegistryClient, Repository, Scope};

use super::edit::Image;

/// The image of `deployment` in `repository`: its environment tag and digest.
pub fn image_of(
    client: &RegistryClient,
    repository: &Repository,
    environment: &Environment,
    deployment: &Deployment,
    timestamp_given: bool,
) -> Result<Image, Error> {
    let scope = Scope::pull(&repository.name);
    let Some(digest) = client.manifest_digest(&repository.name, &deployment.lookup_tag, &scope)?
    else {
        // No image of its own: a service `build --reuse-unchanged` found unchanged got this
        // commit's tags on the image it already had.
        return kept_image(client, repository, environment, deployment).and_then(|kept| {
            kept.ok_or_else(|| {
                Error::Deploy(format!(
                    "{repository}:{} does not exist and no tag of environment `{}` names commit {}: it has no image yet; run `cargo gitops build` for it first",
                    deployment.lookup_tag, environment.name, deployment.sha
                ))
            })
        });
    };
    let primary = deployment.tags.first().ok_or_else(|| {
        Error::Internal(format!("environment `{}` gave no tag", environment.name))
    })?;
    let image = |tag: &str| Image {
        name: repository.to_string(),
        tag: tag.to_owned(),
        digest: digest.to_string(),
    };
    // A versioned tag, or the time given as --timestamp: the tag is known.
    if client
        .manifest_digest(&repository.name, primary, &scope)?
        .as_ref()
        == Some(&digest)
    {
        return Ok(image(primary));
    }
    if timestamp_given {
        return Err(Error::Deploy(format!(
            "{repository}:{primary} does not name the image of commit {}; give `--timestamp` the time `build` used, or drop it",
            deployment.sha
        )));
    }
    for found in environment_tags(client, repository, environment)? {
        if !found
            .sha
            .as_deref()
            .is_some_and(|sha| deployment.sha.starts_with(sha))
        {
            continue;
        }
        if matches!(found.key, Key::Version(_)) {
            continue;
        }
        if client
            .manifest_digest(&repository.name, &found.tag, &scope)?
            .as_ref()
            == Some(&digest)
        {
            return Ok(image(&found.tag));
        }
    }
    Err(Error::Deploy(format!(
        "no tag of environment `{}` in {repository} names the image of commit {} ({digest}); run `cargo gitops build` for this ref first",
        environment.name, deployment.sha
    )))
}

/// The image this commit's environment tag names when the commit has no lookup tag of its own
/// (`build --reuse-unchanged` gave its tags to an earlier commit's image): the versioned tag,
/// or the newest tag of the environment that carries this commit.
fn kept_image(
    client: &RegistryClient,
    repository: &Repository,
    environment: &Environment,
    deployment: &Deployment,
) -> Result<Option<Image>, Error> {
    let scope = Scope::pull(&repository.name);
    let image = |tag: &str, digest: String| Image {
        name: repository.to_string(),
        tag: tag.to_owned(),
        digest,
    };
    if let Some(primary) = deployment.tags.first()
        && let Some(digest) = client.manifest_digest(&repository.name, primary, &scope)?
    {
        return Ok(Some(image(primary, digest.to_string())));
    }
    for found in environment_tags(client, repository, environment)? {
        if found
            .sha
            .as_deref()
            .is_some_and(|sha| deployment.sha.starts_with(sha))
            && let Some(digest) = client.manifest_digest(&repository.name, &found.tag, &scope)?
        {
            return Ok(Some(image(&found.tag, digest.to_string())));
        }
    }
    Ok(None)
}

/// The environment's tags in `repository`, newest first, as `flux` and `history` read them.
fn environment_tags(
    client: &RegistryClient,
    repository: &Repository,
    environment: &Environment,
) -> Result<Vec<history::Found>, Error> {
    history::tags_in(environment, &client.list_tags(&repository.name)?)
}
