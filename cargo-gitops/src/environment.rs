//! Environments: which git refs each one tracks, the methodology's defaults, and choosing the
//! environment of a ref (first match, in configured order). Tag text itself is `tags`' job.

use std::collections::BTreeMap;
use std::fmt;

use globset::GlobMatcher;

use crate::tags::{Placeholder, RenderError, TagFormat, TagValues};

/// A git reference as pushed: a branch, a tag, or anything else (pull request refs, notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    Branch(String),
    Tag(String),
    Other(String),
}

impl GitRef {
    /// Reads a full ref name (`refs/heads/main`, `refs/tags/v1.2.3`, `refs/pull/1/merge`).
    pub fn from_full(full: &str) -> GitRef {
        if let Some(branch) = full.strip_prefix("refs/heads/") {
            GitRef::Branch(branch.to_owned())
        } else if let Some(tag) = full.strip_prefix("refs/tags/") {
            GitRef::Tag(tag.to_owned())
        } else {
            GitRef::Other(full.to_owned())
        }
    }

    pub fn full(&self) -> String {
        match self {
            GitRef::Branch(name) => format!("refs/heads/{name}"),
            GitRef::Tag(name) => format!("refs/tags/{name}"),
            GitRef::Other(full) => full.clone(),
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

/// Reads a tag name as SemVer: an optional leading `v`, then strict SemVer (so `v01.2.3` is not).
pub fn parse_semver_tag(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// The version as it appears in a tag: no `v`, and `+` (not allowed in tags) written as `_`.
pub fn version_for_tag(version: &semver::Version) -> String {
    version.to_string().replace('+', "_")
}

/// Which tags an environment tracks.
#[derive(Debug, Clone)]
pub enum TagSelector {
    /// SemVer `MAJOR.MINOR.PATCH` with no pre-release (build metadata allowed).
    SemverStable,
    /// SemVer whose pre-release starts with the channel name (`1.1.0-alpha1` for `alpha`).
    SemverChannel(String),
    /// Any tag whose whole name matches the expression.
    Regex(regex::Regex),
}

impl TagSelector {
    fn matches(&self, tag: &str) -> Option<Option<semver::Version>> {
        match self {
            TagSelector::SemverStable => {
                parse_semver_tag(tag).filter(|v| v.pre.is_empty()).map(Some)
            }
            TagSelector::SemverChannel(channel) => parse_semver_tag(tag)
                .filter(|v| v.pre.as_str().starts_with(channel.as_str()))
                .map(Some),
            TagSelector::Regex(re) => re.is_match(tag).then(|| parse_semver_tag(tag)),
        }
    }

    pub fn is_semver(&self) -> bool {
        !matches!(self, TagSelector::Regex(_))
    }
}

/// A branch pattern: a glob in GitHub's filter syntax (`*` stops at `/`, `**` does not).
#[derive(Debug, Clone)]
pub struct BranchPattern {
    source: String,
    matcher: GlobMatcher,
}

impl BranchPattern {
    /// Takes `*`, `**` and `[...]` only: the syntax GitHub's branch filters and globs share, so
    /// that generated workflow triggers and the matcher agree.
    pub fn new(source: &str) -> Result<BranchPattern, String> {
        if let Some(c) = source
            .chars()
            .find(|c| matches!(c, '?' | '+' | '{' | '}' | '!' | '\\'))
        {
            return Err(format!(
                "`{c}` means different things to git globs and GitHub filters; use only * ** and [...]"
            ));
        }
        if source.is_empty() {
            return Err("the pattern is empty".to_owned());
        }
        let glob = globset::GlobBuilder::new(source)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(BranchPattern {
            source: source.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn has_wildcard(&self) -> bool {
        self.source.contains(['*', '['])
    }

    pub fn matches(&self, branch: &str) -> bool {
        self.matcher.is_match(branch)
    }

    /// `{name}`: the branch without the pattern's fixed prefix (`test/*` on `test/uat1` →
    /// `uat1`); for a pattern with no wildcard, the whole branch.
    fn name_of<'b>(&self, branch: &'b str) -> &'b str {
        let fixed = self
            .source
            .find(['*', '['])
            .map_or("", |end| &self.source[..end]);
        branch
            .strip_prefix(fixed)
            .filter(|rest| !rest.is_empty())
            .unwrap_or(branch)
    }
}

/// What `latest` tag an environment moves with each deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Latest {
    Off,
    /// `{prefix}latest`, the prefix being the format up to its first per-deploy value.
    FromFormat,
    /// A format of its own (`prd-alpha-latest`), so channels do not move production's tag.
    Format(TagFormat),
}

/// One deployment environment: its name, the refs it tracks and how its images are tagged.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub branches: Vec<BranchPattern>,
    pub tags: Option<TagSelector>,
    pub format: TagFormat,
    pub latest: Latest,
    pub build_args: BTreeMap<String, String>,
    /// An image repository of its own (`app-staging`), else the configured image.
    pub image: Option<String>,
    /// Branches its glob patterns never take (`exclude-branches`): branches that cannot build
    /// or deploy, such as GitHub Pages' and the update bots', which push with read-only tokens.
    pub exclude_branches: Vec<BranchPattern>,
}

/// The branches no glob-tracking environment takes unless `exclude-branches` says otherwise.
pub const DEFAULT_EXCLUDED_BRANCHES: [&str; 3] = ["gh-pages", "dependabot/**", "renovate/**"];

/// [`DEFAULT_EXCLUDED_BRANCHES`] as patterns.
pub fn default_excluded_branches() -> Vec<BranchPattern> {
    DEFAULT_EXCLUDED_BRANCHES
        .iter()
        .map(|b| BranchPattern::new(b).expect("default patterns are valid"))
        .collect()
}

/// The environment a ref resolved to, with the values taken from the ref.
#[derive(Debug, Clone)]
pub struct Match<'e> {
    pub environment: &'e Environment,
    pub branch: Option<String>,
    pub name: Option<String>,
    pub version: Option<semver::Version>,
}

impl Environment {
    /// The moving tag a deploy also pushes (`stg-latest`), if the environment has one.
    pub fn latest_tag(&self, values: &TagValues<'_>) -> Option<Result<String, RenderError>> {
        match &self.latest {
            Latest::Off => None,
            Latest::FromFormat => Some(self.format.render_latest(values)),
            Latest::Format(format) => Some(format.render(values)),
        }
    }

    /// Whether this environment tracks `git_ref`, and the values the ref gives its format.
    pub fn matches(&self, git_ref: &GitRef) -> Option<Match<'_>> {
        match git_ref {
            GitRef::Branch(branch) => {
                let pattern = self.branches.iter().find(|p| p.matches(branch))?;
                if pattern.has_wildcard() && self.exclude_branches.iter().any(|p| p.matches(branch))
                {
                    return None;
                }
                Some(Match {
                    environment: self,
                    branch: Some(branch.clone()),
                    name: Some(pattern.name_of(branch).to_owned()),
                    version: None,
                })
            }
            GitRef::Tag(tag) => {
                let version = self.tags.as_ref()?.matches(tag)?;
                Some(Match {
                    environment: self,
                    branch: None,
                    name: None,
                    version,
                })
            }
            GitRef::Other(_) => None,
        }
    }

    /// Checks that the format can identify the commit and be ordered, and only uses values the
    /// tracked refs have. The error says why, in a sentence that can follow the key's name.
    pub fn check_format(&self) -> Result<(), String> {
        let format = &self.format;
        let tracks_branches = !self.branches.is_empty();
        let semver_tags = self.tags.as_ref().is_some_and(TagSelector::is_semver);
        if tracks_branches
            && self.tags.is_some()
            && let Some(p) = format.placeholders().find(|p| {
                matches!(
                    p,
                    Placeholder::Branch | Placeholder::Name | Placeholder::Version
                )
            })
        {
            return Err(format!(
                "`{format}` uses {{{}}}, but environment `{}` tracks both branches and tags; use only {{sha}} {{sha40}} {{timestamp}} {{env}}",
                p.name(),
                self.name
            ));
        }
        if !tracks_branches
            && let Some(p) = format
                .placeholders()
                .find(|p| matches!(p, Placeholder::Branch | Placeholder::Name))
        {
            return Err(format!(
                "`{format}` uses {{{}}}, but environment `{}` tracks no branches",
                p.name(),
                self.name
            ));
        }
        if self.tags.is_none() && format.uses(Placeholder::Version) {
            return Err(format!(
                "`{format}` uses {{version}}, but environment `{}` tracks no tags",
                self.name
            ));
        }
        if self.latest == Latest::FromFormat {
            let sample = TagValues {
                branch: Some("b"),
                name: Some("n"),
                sha40: "0000000000000000000000000000000000000000",
                timestamp: 1_000_000_000,
                version: Some("1.0.0"),
                env: &self.name,
            };
            if format.render_latest(&sample).as_deref() == Ok("latest") {
                return Err(format!(
                    "`{format}` starts with a value that changes each deploy, so its latest tag would be a bare `latest` shared with other environments; set `latest = \"{}-latest\"` or `latest = false`",
                    self.name
                ));
            }
        }
        let has_sha = format.uses(Placeholder::Sha) || format.uses(Placeholder::Sha40);
        let has_version = format.uses(Placeholder::Version);
        if !has_sha && !has_version {
            return Err(format!(
                "`{format}` cannot identify the commit: add {{sha}} (or {{version}} for a SemVer-tag environment)"
            ));
        }
        let ordered = format.uses(Placeholder::Timestamp) || (has_version && semver_tags);
        if !ordered {
            return Err(format!(
                "`{format}` cannot be ordered: add {{timestamp}}{}",
                if self.tags.is_some() {
                    " (or track SemVer tags and use {version})"
                } else {
                    ""
                }
            ));
        }
        if !has_sha && has_version && !semver_tags {
            return Err(format!(
                "`{format}` identifies commits by {{version}}, which only SemVer tags give: add {{sha}}"
            ));
        }
        Ok(())
    }
}

/// Picks the first environment, in order, that tracks `git_ref`.
pub fn resolve<'e>(environments: &'e [Environment], git_ref: &GitRef) -> Option<Match<'e>> {
    environments.iter().find_map(|env| env.matches(git_ref))
}

/// The methodology's recommended environments, in matching order.
pub fn defaults() -> Vec<Environment> {
    let env = |name: &str, branches: &[&str], tags: Option<TagSelector>, format: &str, latest| {
        Environment {
            name: name.to_owned(),
            branches: branches
                .iter()
                .map(|b| BranchPattern::new(b).expect("default patterns are valid"))
                .collect(),
            tags,
            format: format.parse().expect("default formats are valid"),
            latest,
            build_args: BTreeMap::new(),
            image: None,
            exclude_branches: if branches.iter().any(|b| b.contains('*')) {
                default_excluded_branches()
            } else {
                Vec::new()
            },
        }
    };
    let channel_latest =
        |name: &str| Latest::Format(format!("prd-{name}-latest").parse().expect("valid"));
    vec![
        env(
            "production",
            &[],
            Some(TagSelector::SemverStable),
            "prd-{version}",
            Latest::FromFormat,
        ),
        env(
            "alpha",
            &[],
            Some(TagSelector::SemverChannel("alpha".into())),
            "prd-{version}",
            channel_latest("alpha"),
        ),
        env(
            "beta",
            &[],
            Some(TagSelector::SemverChannel("beta".into())),
            "prd-{version}",
            channel_latest("beta"),
        ),
        env(
            "testing",
            &["test/*"],
            None,
            "tst-{name}-{sha}-{timestamp}",
            Latest::FromFormat,
        ),
        env(
            "staging",
            &["main"],
            None,
            "stg-{sha}-{timestamp}",
            Latest::FromFormat,
        ),
        env(
            "development",
            &["**"],
            None,
            "dev-{branch}-{sha}-{timestamp}",
            Latest::FromFormat,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(git_ref: GitRef) -> Option<String> {
        let envs = defaults();
        resolve(&envs, &git_ref).map(|m| m.environment.name.clone())
    }

    #[test]
    fn default_routing() {
        let cases: &[(GitRef, Option<&str>)] = &[
            (GitRef::Tag("v1.2.3".into()), Some("production")),
            (GitRef::Tag("1.2.3".into()), Some("production")),
            (GitRef::Tag("v1.2.3+build.5".into()), Some("production")),
            (GitRef::Tag("v1.1.0-alpha1".into()), Some("alpha")),
            (GitRef::Tag("v1.0.3-beta2".into()), Some("beta")),
            (GitRef::Tag("v1.0.0-rc1".into()), None),
            (GitRef::Tag("v01.2.3".into()), None),
            (GitRef::Tag("release-1".into()), None),
            (GitRef::Tag("nightly".into()), None),
            (GitRef::Branch("main".into()), Some("staging")),
            (GitRef::Branch("test/uat1".into()), Some("testing")),
            (GitRef::Branch("test/uat/1".into()), Some("development")),
            (GitRef::Branch("test".into()), Some("development")),
            (GitRef::Branch("main-fix".into()), Some("development")),
            (GitRef::Branch("feature/login".into()), Some("development")),
            (GitRef::Other("refs/pull/4/merge".into()), None),
        ];
        for (git_ref, expected) in cases {
            assert_eq!(env_of(git_ref.clone()).as_deref(), *expected, "{git_ref}");
        }
    }

    #[test]
    fn name_is_the_part_after_the_fixed_prefix() {
        let envs = defaults();
        let m = resolve(&envs, &GitRef::Branch("test/uat1".into())).unwrap();
        assert_eq!(m.name.as_deref(), Some("uat1"));
    }

    #[test]
    fn defaults_pass_their_own_checks() {
        for env in defaults() {
            env.check_format().unwrap();
        }
    }

    #[test]
    fn format_checks_say_why() {
        let mut env = defaults().remove(4); // staging
        env.format = "stg-{timestamp}".parse().unwrap();
        assert!(
            env.check_format()
                .unwrap_err()
                .contains("cannot identify the commit")
        );
        env.format = "stg-{sha}".parse().unwrap();
        assert!(
            env.check_format()
                .unwrap_err()
                .contains("cannot be ordered")
        );
        env.format = "{sha}-{timestamp}".parse().unwrap();
        assert!(env.check_format().unwrap_err().contains("bare `latest`"));
        env.latest = Latest::Off;
        env.check_format().unwrap();
        env.format = "stg-{version}-{timestamp}".parse().unwrap();
        assert!(env.check_format().unwrap_err().contains("tracks no tags"));
        let mut prod = defaults().remove(0);
        prod.format = "prd-{branch}-{version}".parse().unwrap();
        assert!(
            prod.check_format()
                .unwrap_err()
                .contains("tracks no branches")
        );
    }
}
