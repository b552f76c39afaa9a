//! An environment's history: the images it has received, newest first, read from the registry's
//! tags. Which tags are the environment's, and how they order, is `flux`'s tag filter, so the
//! history and the CD tool agree; the commit of each image comes from the `commit-<sha40>`
//! lookup tag that names the same digest; whether it is signed, from cosign's signature tag or
//! a signature referrer (`supply::sign`); which gates it passed, from the gate record its
//! promotion attached (`gates::record`). The HTTP is `registry`'s.

use std::collections::HashMap;

use serde::Serialize;

use crate::config::Config;
use crate::delivery::flux::{
    self, BranchChoice, Order, SHA_GROUP, SHA40_GROUP, TIMESTAMP_GROUP, TagFilter,
};
use crate::environment::Environment;
use crate::error::Error;
use crate::registry::client::{Digest, RegistryClient, Repository, Scope};

/// One image the environment received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// What orders it: the timestamp or the version, as text.
    pub order: String,
    /// `{timestamp}`, for timestamp-ordered environments.
    pub timestamp: Option<u64>,
    /// `{version}`, for version-ordered environments.
    pub version: Option<String>,
    pub tag: String,
    /// The full commit when a lookup tag names the same image, else the short sha the tag
    /// carries, else `None`.
    pub commit: Option<String>,
    pub digest: Option<String>,
    /// Whether a cosign signature is attached (present, not verified); `None` without a
    /// digest.
    pub signed: Option<bool>,
    /// What the promotion gates of this environment recorded on the image, one record per
    /// distinct outcome (a promotion that skipped a gate leaves one of its own): the gates
    /// passed, those skipped and why. Empty when none is attached.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<crate::gates::Record>,
}

/// What to list.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub environment: &'a Environment,
    /// Only this branch's images, for environments that tag per branch.
    pub branch: Option<(&'a str, &'a str)>,
    /// At most this many entries (and as many digest requests).
    pub limit: usize,
}

/// `--branch` for an environment that tags per branch: the branch and its `{name}`.
pub fn branch_of(
    environment: &Environment,
    branch: Option<&str>,
) -> Result<Option<(String, String)>, Error> {
    let Some(branch) = branch else {
        return Ok(None);
    };
    if !environment.format.is_per_branch() {
        return Err(Error::usage(format!(
            "environment `{}` does not tag per branch (`{}`); drop --branch",
            environment.name, environment.format
        )));
    }
    let found = environment
        .matches(&crate::environment::GitRef::Branch(branch.to_owned()))
        .ok_or_else(|| {
            Error::usage(format!(
                "branch `{branch}` is not one of environment `{}`'s",
                environment.name
            ))
        })?;
    Ok(Some((
        branch.to_owned(),
        found.name.unwrap_or_else(|| branch.to_owned()),
    )))
}

pub(crate) enum Key {
    Timestamp(u64),
    Version(semver::Version),
}

/// A tag of the environment, with what orders it and the sha it carries.
pub(crate) struct Found {
    pub(crate) key: Key,
    pub(crate) tag: String,
    pub(crate) sha: Option<String>,
}

/// Lists the environment's images in `repository`, newest first: one tag listing, one `HEAD`
/// per entry shown, and one `HEAD` per lookup tag compared (each at most once).
pub fn list(
    client: &RegistryClient,
    repository: &Repository,
    query: &Query<'_>,
) -> Result<Vec<Entry>, Error> {
    let choice = match query.branch {
        Some((branch, name)) => BranchChoice::Exact { branch, name },
        None => BranchChoice::Any,
    };
    let filter = flux::tag_filter(query.environment, choice)?;
    let regex = regex::Regex::new(&filter.pattern).map_err(|e| {
        Error::usage(format!(
            "cannot use the tag pattern `{}`: {e}; please report this",
            filter.pattern
        ))
    })?;
    let tags = client.list_tags(&repository.name)?;
    let mut found = environment_tags(&filter, &regex, &tags);
    found.truncate(query.limit);

    let mut commits = LookupCommits {
        client,
        repository: &repository.name,
        scope: Scope::pull(&repository.name),
        lookups: tags
            .iter()
            .filter_map(|tag| crate::tags::lookup_commit(tag).map(|sha| (tag.as_str(), sha)))
            .collect(),
        digests: HashMap::new(),
    };
    let mut signatures = crate::supply::sign::Signatures::new(client, &repository.name, &tags);
    let mut entries = Vec::with_capacity(found.len());
    for Found { key, tag, sha } in found {
        let digest = client.manifest_digest(&repository.name, &tag, &commits.scope)?;
        let commit = match &digest {
            Some(digest) => commits.commit_of(digest, sha.as_deref())?,
            None => None,
        };
        let (signed, gates) = match &digest {
            Some(digest) => {
                let attached = signatures.referrers(digest)?;
                let signed = signatures.has_signature_tag(digest)
                    || attached.iter().any(crate::supply::sign::is_signature);
                let gates = attached
                    .iter()
                    .filter_map(crate::gates::Record::from_descriptor)
                    .filter(|r| r.environment == query.environment.name)
                    .collect();
                (Some(signed), gates)
            }
            None => (None, Vec::new()),
        };
        let (order, timestamp, version) = match key {
            Key::Timestamp(ts) => (ts.to_string(), Some(ts), None),
            Key::Version(v) => (v.to_string(), None, Some(v.to_string())),
        };
        entries.push(Entry {
            order,
            timestamp,
            version,
            tag,
            commit: commit.or(sha),
            digest: digest.map(String::from),
            signed,
            gates,
        });
    }
    Ok(entries)
}

/// The tags of `environment` among `tags`, newest first, as `flux` selects them.
pub(crate) fn tags_in(environment: &Environment, tags: &[String]) -> Result<Vec<Found>, Error> {
    let filter = flux::tag_filter(environment, BranchChoice::Any)?;
    let regex = regex::Regex::new(&filter.pattern).map_err(|e| {
        Error::Internal(format!(
            "the tag pattern `{}` does not compile: {e}",
            filter.pattern
        ))
    })?;
    Ok(environment_tags(&filter, &regex, tags))
}

/// The tags the filter (compiled as `regex`) admits, newest first (ties broken by tag,
/// highest first).
pub(crate) fn environment_tags(
    filter: &TagFilter,
    regex: &regex::Regex,
    tags: &[String],
) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    for tag in tags {
        let Some(captures) = regex.captures(tag) else {
            continue;
        };
        let sha = captures
            .name(SHA40_GROUP)
            .or_else(|| captures.name(SHA_GROUP))
            .map(|m| m.as_str().to_owned());
        let key = match filter.order {
            Order::Timestamp => captures
                .name(TIMESTAMP_GROUP)
                .and_then(|m| m.as_str().parse().ok())
                .map(Key::Timestamp),
            Order::Semver { .. } => captures
                .name(flux::VERSION_GROUP)
                .and_then(|m| semver::Version::parse(m.as_str()).ok())
                .map(Key::Version),
        };
        if let Some(key) = key {
            found.push(Found {
                key,
                tag: tag.clone(),
                sha,
            });
        }
    }
    found.sort_by(|a, b| {
        let by_key = match (&a.key, &b.key) {
            (Key::Timestamp(x), Key::Timestamp(y)) => y.cmp(x),
            (Key::Version(x), Key::Version(y)) => y.cmp(x),
            _ => std::cmp::Ordering::Equal,
        };
        by_key.then_with(|| b.tag.cmp(&a.tag))
    });
    found
}

/// The repository's `commit-<sha40>` lookup tags, and the digests of those already asked for.
struct LookupCommits<'a> {
    client: &'a RegistryClient,
    repository: &'a str,
    scope: Scope,
    /// Each lookup tag, with the full commit it names.
    lookups: Vec<(&'a str, &'a str)>,
    digests: HashMap<&'a str, Option<Digest>>,
}

impl LookupCommits<'_> {
    /// The full commit whose lookup tag names `digest`. Only lookup tags of a matching commit
    /// are worth a request, when the tag says which (`sha`).
    fn commit_of(&mut self, digest: &Digest, sha: Option<&str>) -> Result<Option<String>, Error> {
        for &(lookup, full) in &self.lookups {
            if sha.is_some_and(|s| !full.starts_with(s)) {
                continue;
            }
            let lookup_digest = match self.digests.get(lookup) {
                Some(known) => known.clone(),
                None => {
                    let fetched =
                        self.client
                            .manifest_digest(self.repository, lookup, &self.scope)?;
                    self.digests.insert(lookup, fetched.clone());
                    fetched
                }
            };
            if lookup_digest.as_ref() == Some(digest) {
                return Ok(Some(full.to_owned()));
            }
        }
        Ok(None)
    }
}

/// Where one service of a repository that ships several stands in an environment: its newest
/// image there, and the commit that image was built from (which differs from the commit the
/// tag names when `build --reuse-unchanged` kept an earlier commit's image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placed {
    pub package: String,
    /// `None` when the environment has no image of the service yet.
    pub newest: Option<Entry>,
    pub built_from: Option<String>,
}

impl Placed {
    /// The newest image of `package` in `repository` for `query` (its limit is ignored).
    pub fn read(
        client: &RegistryClient,
        repository: &Repository,
        query: &Query<'_>,
        package: &str,
    ) -> Result<Placed, Error> {
        let newest = list(client, repository, &Query { limit: 1, ..*query })?
            .into_iter()
            .next();
        let built_from = match newest.as_ref().and_then(|e| e.digest.as_deref()) {
            Some(digest) => crate::build::converge::revision_label(client, repository, digest)?,
            None => None,
        };
        Ok(Placed {
            package: package.to_owned(),
            newest,
            built_from,
        })
    }
}

/// The service set as an aligned table: each service's newest tag, the commit it names, the
/// commit its image was built from, and the digest.
pub fn service_table(placed: &[Placed]) -> String {
    let short = |sha: Option<&str>| {
        sha.map_or_else(|| "-".to_owned(), |s| s.get(..7).unwrap_or(s).to_owned())
    };
    let mut rows = vec![[
        "SERVICE".to_owned(),
        "TAG".to_owned(),
        "COMMIT".to_owned(),
        "BUILT FROM".to_owned(),
        "DIGEST".to_owned(),
    ]];
    for service in placed {
        let entry = service.newest.as_ref();
        rows.push([
            service.package.clone(),
            entry.map_or_else(|| "(none yet)".to_owned(), |e| e.tag.clone()),
            short(entry.and_then(|e| e.commit.as_deref())),
            short(service.built_from.as_deref()),
            entry
                .and_then(|e| e.digest.clone())
                .unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let line = format!(
                "{:<a$}  {:<b$}  {:<c$}  {:<d$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                a = widths[0],
                b = widths[1],
                c = widths[2],
                d = widths[3]
            );
            format!("{}\n", line.trim_end())
        })
        .collect()
}

/// The image repository an environment's images are in.
pub fn repository_of(config: &Config, environment: &Environment) -> Result<Repository, Error> {
    let image = config.image_for(Some(environment)).ok_or(Error::NoImage)?;
    Repository::parse(&image)
}

/// The entries as an aligned table: when the tag was pushed (its `{timestamp}`, UTC; a retag
/// pushes too) or the version, tag, short commit, digest, whether a signature is there, and,
/// when any image carries a gate record of the environment, the gates it passed.
pub fn table(entries: &[Entry]) -> String {
    let text = signed_table(entries);
    if entries.iter().all(|e| e.gates.is_empty()) {
        return text;
    }
    let width = text.lines().map(str::len).max().unwrap_or(0);
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let gates = match i {
            0 => "GATES".to_owned(),
            _ if entries[i - 1].gates.is_empty() => "-".to_owned(),
            _ => entries[i - 1]
                .gates
                .iter()
                .map(crate::gates::Record::summary)
                .collect::<Vec<_>>()
                .join("; "),
        };
        out.push_str(&format!("{line:<width$}  {gates}\n"));
    }
    out
}

fn signed_table(entries: &[Entry]) -> String {
    let first = if entries.iter().any(|e| e.version.is_some()) {
        "VERSION"
    } else {
        "DEPLOYED (UTC)"
    };
    let mut rows = vec![[
        first.to_owned(),
        "TAG".to_owned(),
        "COMMIT".to_owned(),
        "DIGEST".to_owned(),
        "SIGNED".to_owned(),
    ]];
    for entry in entries {
        let when = match (entry.timestamp, &entry.version) {
            (Some(ts), _) => crate::time::rfc3339(ts),
            (None, Some(version)) => version.clone(),
            (None, None) => entry.order.clone(),
        };
        let commit = entry
            .commit
            .as_deref()
            .map_or("-".to_owned(), |c| c.get(..7).unwrap_or(c).to_owned());
        rows.push([
            when,
            entry.tag.clone(),
            commit,
            entry.digest.clone().unwrap_or_else(|| "-".to_owned()),
            match entry.signed {
                Some(true) => "yes".to_owned(),
                Some(false) => "no".to_owned(),
                None => "-".to_owned(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
