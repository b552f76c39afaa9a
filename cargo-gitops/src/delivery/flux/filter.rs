//! Flux tag filters: for one environment (and branch), the anchored pattern that admits its
//! tags and no other environment's, derived from its tag format, with the ordering that picks
//! the newest, checked against a tag the format really renders. It owns the patterns only:
//! object names and manifests are `flux`'s, YAML is `render`'s, and tag text is `tags`' job.

use std::collections::BTreeSet;

use crate::environment::{Environment, TagSelector};
use crate::error::Error;
use crate::tags::{self, Part, Placeholder, TagValues};

/// The capture group holding `{timestamp}`, which numerical policies extract.
pub const TIMESTAMP_GROUP: &str = "ts";
/// The capture group holding `{version}`, which SemVer policies extract.
pub const VERSION_GROUP: &str = "version";
/// The capture groups holding `{sha}` and `{sha40}`.
pub const SHA_GROUP: &str = "sha";
pub const SHA40_GROUP: &str = "sha40";

/// Values used to render example tags; any value of the same length gives the same shape.
const EXAMPLE_SHA40: &str = "b4b9fda0123456789abcdef0123456789abcdef0";
const EXAMPLE_TIMESTAMP: u64 = 1_654_880_868;

/// How an environment's tags are told apart from every other tag, and which one is newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    /// A regular expression anchored at both ends, in the syntax Go's RE2 (Flux) and the
    /// `regex` crate share.
    pub pattern: String,
    pub order: Order,
}

/// What makes one tag newer than another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// The largest `{timestamp}`, read as a number.
    Timestamp,
    /// The highest `{version}` that satisfies `range` (Masterminds semantics: a pre-release
    /// is only admitted by a range that names one).
    Semver { range: String },
}

impl TagFilter {
    /// Flux's `filterTags.extract`: the capture group the ordering reads.
    pub fn extract(&self) -> String {
        match self.order {
            Order::Timestamp => format!("${TIMESTAMP_GROUP}"),
            Order::Semver { .. } => format!("${VERSION_GROUP}"),
        }
    }
}

/// The branch a per-branch format (`{branch}`, `{name}`) is made for.
#[derive(Debug, Clone, Copy)]
pub enum BranchChoice<'a> {
    /// One branch, with its `{name}` (the branch without the pattern's fixed prefix).
    Exact { branch: &'a str, name: &'a str },
    /// Any branch of the environment, for listing its whole history.
    Any,
}

/// Tag text is `[A-Za-z0-9_.-]`, where `.` is the only regex metacharacter; anything else
/// that is not a word character or `-` is escaped too, which RE2 and `regex` both read as
/// the character itself.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const NUMBER: &str = "(?:0|[1-9][0-9]*)";
const IDENTIFIER: &str = "[0-9A-Za-z-]+";

/// `{version}` as it appears in tags, without build metadata: what Flux can parse as SemVer.
fn version_pattern(selector: Option<&TagSelector>) -> String {
    let core = format!(r"{NUMBER}\.{NUMBER}\.{NUMBER}");
    let dotted = format!(r"(?:\.{IDENTIFIER})*");
    match selector {
        Some(TagSelector::SemverStable) => core,
        // The selector's rule: the pre-release starts with the channel name.
        Some(TagSelector::SemverChannel(channel)) => {
            format!("{core}-{}[0-9A-Za-z-]*{dotted}", escape(channel))
        }
        _ => format!("{core}(?:-{IDENTIFIER}{dotted})?"),
    }
}

/// Build metadata, written `_…` in tags because `+` is not allowed there. It stays outside
/// the captured version: Flux's strict SemVer parser would not read `_`.
fn build_suffix() -> String {
    format!(r"(?:_{IDENTIFIER}(?:\.{IDENTIFIER})*)?")
}

/// The filter that admits exactly the tags `env` gives (for one branch, or for any), never its
/// `latest` tag, its lookup tags, or another environment's tags.
pub fn tag_filter(env: &Environment, branch: BranchChoice<'_>) -> Result<TagFilter, Error> {
    let format = &env.format;
    let pieces = format.parts();
    let per_branch = format.is_per_branch();
    let exact = match branch {
        BranchChoice::Exact { branch, name } if per_branch => {
            Some(shortened_branch(env, pieces, branch, name)?)
        }
        _ => None,
    };
    let mut pattern = String::from("^");
    // Go's RE2 rejects a group name used twice; only the first use of a value is captured.
    let mut named = BTreeSet::new();
    let mut group = |name: &'static str, inner: &str| {
        if named.insert(name) {
            format!("(?P<{name}>{inner})")
        } else {
            format!("(?:{inner})")
        }
    };
    for piece in pieces {
        let part = match piece {
            Part::Literal(text) => escape(text),
            Part::Placeholder(p) => match p {
                Placeholder::Sha => group(SHA_GROUP, "[0-9a-f]{7}"),
                Placeholder::Sha40 => group(SHA40_GROUP, "[0-9a-f]{40}"),
                // Timestamps are 10 digits (`deployment` enforces it).
                Placeholder::Timestamp => group(TIMESTAMP_GROUP, "[0-9]{10}"),
                Placeholder::Version => {
                    let inner = version_pattern(env.tags.as_ref());
                    group(VERSION_GROUP, &inner) + &build_suffix()
                }
                Placeholder::Env => escape(&tags::sanitise(&env.name)),
                Placeholder::Branch | Placeholder::Name => match &exact {
                    Some((branch, name)) => escape(if *p == Placeholder::Branch {
                        branch
                    } else {
                        name
                    }),
                    None => "[A-Za-z0-9_.-]*".to_owned(),
                },
            },
        };
        pattern.push_str(&part);
    }
    pattern.push('$');

    let semver_selector = env.tags.as_ref().is_some_and(TagSelector::is_semver);
    let order = if semver_selector && format.uses(Placeholder::Version) {
        Order::Semver {
            range: match &env.tags {
                Some(TagSelector::SemverChannel(channel)) => format!(">=0.0.0-{channel}"),
                _ => ">=0.0.0".to_owned(),
            },
        }
    } else {
        Order::Timestamp
    };
    let filter = TagFilter { pattern, order };
    self_check(env, &filter, exact.is_some().then_some(branch))?;
    Ok(filter)
}

/// The branch and name exactly as they appear in this environment's tags, taken from the
/// tag the format renders, so the rule (readable names, hashes, shortening) lives in `tags`.
pub(super) fn shortened_branch(
    env: &Environment,
    pieces: &[Part],
    branch: &str,
    name: &str,
) -> Result<(String, String), Error> {
    let values = example_values(env, Some(branch), Some(name), None);
    let rendered = env
        .format
        .render_pieces(&values)
        .map_err(|source| Error::Tag {
            environment: env.name.clone(),
            source,
        })?;
    let piece_of = |wanted: Placeholder| {
        pieces
            .iter()
            .zip(&rendered)
            .find(|(part, _)| **part == Part::Placeholder(wanted))
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    };
    Ok((piece_of(Placeholder::Branch), piece_of(Placeholder::Name)))
}

pub(super) fn example_values<'a>(
    env: &'a Environment,
    branch: Option<&'a str>,
    name: Option<&'a str>,
    version: Option<&'a str>,
) -> TagValues<'a> {
    TagValues {
        branch,
        name,
        sha40: EXAMPLE_SHA40,
        timestamp: EXAMPLE_TIMESTAMP,
        version,
        env: &env.name,
    }
}

/// Checks the pattern against a tag the format really renders, so that a pattern that
/// cannot match its own environment is never written out.
fn self_check(
    env: &Environment,
    filter: &TagFilter,
    branch: Option<BranchChoice<'_>>,
) -> Result<(), Error> {
    let regex = regex::Regex::new(&filter.pattern)
        .map_err(|e| pattern_bug(env, &format!("`{}` does not compile: {e}", filter.pattern)))?;
    let version = match &env.tags {
        Some(TagSelector::SemverChannel(channel)) => format!("1.2.3-{channel}.1"),
        _ => "1.2.3".to_owned(),
    };
    let (branch, name) = match branch {
        Some(BranchChoice::Exact { branch, name }) => (Some(branch), Some(name)),
        _ => (Some("feature/example"), Some("example")),
    };
    let example = example_values(env, branch, name, Some(&version));
    match env.format.render(&example) {
        Ok(tag) if !regex.is_match(&tag) => Err(pattern_bug(
            env,
            &format!("`{}` does not match its own tag `{tag}`", filter.pattern),
        )),
        _ => Ok(()),
    }
}

fn pattern_bug(env: &Environment, detail: &str) -> Error {
    Error::usage(format!(
        "cannot derive a tag pattern for environment `{}` from `{}`: {detail}; please report this",
        env.name, env.format
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment;

    fn env(name: &str) -> Environment {
        environment::defaults()
            .into_iter()
            .find(|e| e.name == name)
            .unwrap()
    }

    #[test]
    fn default_patterns() {
        let dev = tag_filter(
            &env("development"),
            BranchChoice::Exact {
                branch: "feature/v1.2",
                name: "feature/v1.2",
            },
        )
        .unwrap();
        assert_eq!(
            dev.pattern,
            r"^dev-feature--v1\.2-(?P<sha>[0-9a-f]{7})-(?P<ts>[0-9]{10})$"
        );
        assert_eq!(dev.extract(), "$ts");
        let prod = tag_filter(&env("production"), BranchChoice::Any).unwrap();
        assert_eq!(
            prod.order,
            Order::Semver {
                range: ">=0.0.0".into()
            }
        );
        assert_eq!(prod.extract(), "$version");
        let alpha = tag_filter(&env("alpha"), BranchChoice::Any).unwrap();
        assert_eq!(
            alpha.order,
            Order::Semver {
                range: ">=0.0.0-alpha".into()
            }
        );
    }

    #[test]
    fn long_branches_are_cut_as_tags_are() {
        let long = "x".repeat(200);
        let filter = tag_filter(
            &env("development"),
            BranchChoice::Exact {
                branch: &long,
                name: &long,
            },
        )
        .unwrap();
        // What is cut keeps an 8-hex hash of the whole name: `-` and 8 characters.
        let kept = 128 - "dev-".len() - "-b4b9fda-1654880868".len() - 9;
        let hash = regex::Regex::new(&format!("dev-{}-[0-9a-f]{{8}}-", "x".repeat(kept))).unwrap();
        assert!(hash.is_match(&filter.pattern), "{}", filter.pattern);
        assert!(!filter.pattern.contains(&"x".repeat(kept + 1)));
    }
}
