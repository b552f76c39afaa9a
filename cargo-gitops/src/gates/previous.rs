//! The gates that read the previous environment's tags: `previous` (its newest tag names
//! this digest now, so an image reaches production only as what staging runs) and `soak`
//! (this commit's tags there name this digest since at least that long, by the
//! `{timestamp}` each tag carries, which is when it was pushed: what `history` shows). One
//! tag listing of the previous environment's repository serves both; which tags are an
//! environment's is `tags`' rule.

use crate::environment::Environment;
use crate::error::Error;
use crate::gates::spec::{Gates, format_duration};
use crate::gates::{Answer, Promotion};
use crate::registry::client::{Digest, Repository, Scope};
use crate::tags::Matched;

/// The previous environment's tags, listed when first needed.
pub(crate) struct Previous<'a> {
    promotion: &'a Promotion<'a>,
    digest: &'a Digest,
    listed: Option<Listed>,
}

struct Listed {
    environment: Environment,
    repository: Repository,
    /// Its tags, with what each carries.
    tags: Vec<(String, Matched)>,
}

impl<'a> Previous<'a> {
    pub(crate) fn new(promotion: &'a Promotion<'a>, digest: &'a Digest) -> Previous<'a> {
        Previous {
            promotion,
            digest,
            listed: None,
        }
    }

    fn listed(&mut self, gates: &Gates) -> Result<&Listed, Error> {
        if self.listed.is_none() {
            let name = gates.previous.as_deref().unwrap_or_default();
            let config = self.promotion.config;
            let environment = config
                .environments
                .iter()
                .find(|e| e.name == name)
                .cloned()
                .ok_or_else(|| {
                    Error::Internal(format!(
                        "the previous environment `{name}` is not configured"
                    ))
                })?;
            let image = config.image_for(Some(&environment)).ok_or(Error::NoImage)?;
            let repository = Repository::parse(&image)?;
            let client = (self.promotion.clients)(&repository.registry)?;
            let matcher = environment.format.matcher(&environment.name, None);
            let tags = client
                .list_tags(&repository.name)?
                .into_iter()
                .filter_map(|tag| matcher.matches(&tag).map(|m| (tag, m)))
                .collect();
            self.listed = Some(Listed {
                environment,
                repository,
                tags,
            });
        }
        Ok(self.listed.as_ref().expect("listed just now"))
    }

    fn digest_of(&self, repository: &Repository, tag: &str) -> Result<Option<Digest>, Error> {
        let client = (self.promotion.clients)(&repository.registry)?;
        client.manifest_digest(&repository.name, tag, &Scope::pull(&repository.name))
    }

    /// `previous`: the previous environment's newest tag names this digest.
    pub(crate) fn runs_it(&mut self, gates: &Gates) -> Result<Answer, Error> {
        let listed = self.listed(gates)?;
        let newest = listed.tags.iter().max_by(|(a_tag, a), (b_tag, b)| {
            let by_version = match (&a.version, &b.version) {
                (Some(x), Some(y)) => {
                    match (semver::Version::parse(x), semver::Version::parse(y)) {
                        (Ok(x), Ok(y)) => x.cmp(&y),
                        _ => std::cmp::Ordering::Equal,
                    }
                }
                _ => std::cmp::Ordering::Equal,
            };
            a.timestamp
                .cmp(&b.timestamp)
                .then(by_version)
                .then_with(|| a_tag.cmp(b_tag))
        });
        let name = listed.environment.name.clone();
        let repository = listed.repository.clone();
        let Some((tag, _)) = newest.cloned() else {
            return Ok(Err(format!(
                "`{name}` has received no image in {repository}; promote through `{name}` first"
            )));
        };
        let digest = self.digest;
        Ok(match self.digest_of(&repository, &tag)? {
            Some(now) if now == *digest => Ok(format!("`{name}` runs it now ({tag})")),
            Some(now) => Err(format!(
                "`{name}` runs {now} now ({repository}:{tag}), not {digest}; promote what `{name}` runs, or deploy this commit to `{name}` first"
            )),
            None => Err(format!(
                "`{name}`'s newest tag {tag} vanished while it was read; try again"
            )),
        })
    }

    /// `soak`: this commit's tags in the previous environment name this digest, the oldest
    /// of them pushed at least the soak time ago.
    pub(crate) fn soaked(&mut self, gates: &Gates) -> Result<Answer, Error> {
        let (needed, written) = gates.soak.clone().unwrap_or_default();
        let sha = self.promotion.sha.to_owned();
        let listed = self.listed(gates)?;
        let name = listed.environment.name.clone();
        let repository = listed.repository.clone();
        if !listed
            .environment
            .format
            .uses(crate::tags::Placeholder::Timestamp)
        {
            return Ok(Err(format!(
                "`{name}`'s tags (`{}`) carry no {{timestamp}}, so how long it ran the image is unknown; add {{timestamp}} to its format, or drop soak",
                listed.environment.format
            )));
        }
        let mut commit_tags: Vec<(String, u64)> = listed
            .tags
            .iter()
            .filter(|(_, m)| m.sha.as_deref().is_some_and(|s| sha.starts_with(s)))
            .filter_map(|(tag, m)| m.timestamp.map(|t| (tag.clone(), t)))
            .collect();
        commit_tags.sort_by_key(|(_, t)| *t);
        let digest = self.digest;
        for (tag, pushed) in commit_tags {
            if self.digest_of(&repository, &tag)?.as_ref() != Some(digest) {
                continue;
            }
            let age = self.promotion.now.saturating_sub(pushed);
            return Ok(if age >= needed {
                Ok(format!(
                    "in `{name}` for {} ({tag}), at least {written}",
                    format_duration(age)
                ))
            } else {
                Err(format!(
                    "the image has been in `{name}` for {} only ({tag}); it needs {} more of the {written} soak",
                    format_duration(age),
                    format_duration(needed - age)
                ))
            });
        }
        Ok(Err(format!(
            "no tag of `{name}` in {repository} names {digest} for commit {}; deploy it to `{name}` and let it soak {written}",
            &sha[..sha.len().min(7)]
        )))
    }
}
