//! Image tags, every rule about them in one place: the Docker tag grammar, how a git name
//! appears in a tag (readable, and never the same for two names), tag formats with their
//! placeholders and `latest` tags, and the `commit-<sha40>` lookup tag. It does not decide which
//! environment a ref belongs to (`environment`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Docker limits a tag to 128 characters.
pub const MAX_TAG_LEN: usize = 128;

/// Whether `tag` matches Docker's tag grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_alphanumeric() || *first == b'_' => {}
        _ => return false,
    }
    bytes.len() <= MAX_TAG_LEN && bytes.iter().all(|b| is_tag_byte(*b))
}

fn is_tag_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Makes a git name usable inside a tag: each run of characters outside `[A-Za-z0-9_.-]`
/// becomes one `-`, and leading `.` and `-` are dropped. Case is kept.
pub fn sanitise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if c.is_ascii() && is_tag_byte(c as u8) {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out.trim_start_matches(['.', '-']).to_owned()
}

/// Hex digits of the hash that tells apart git names whose readable form is ambiguous.
const NAME_HASH_LEN: usize = 8;

/// A git name as it goes into a tag, before any shortening.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GitName {
    /// Read back unambiguously: the name with each `/` written `--`.
    Readable(String),
    /// Sanitised text that another name could also give, and the hash of the original name.
    Hashed { text: String, hash: String },
}

impl GitName {
    /// The encoding is injective: a readable name contains no `--` of its own and never ends
    /// like a hash suffix, so it decodes back (`--` → `/`); every other name carries the hash of
    /// its original text (`feature/a` → `feature--a`, `feature-a` stays, `#` → `1b2c3d4e`).
    fn of(name: &str) -> GitName {
        let readable = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && name.bytes().all(|b| is_tag_byte(b) || b == b'/')
            && !["--", "-/", "/-", "//"].iter().any(|s| name.contains(s))
            && !name.ends_with('/');
        let text = name.replace('/', "--");
        if readable && !ends_like_hash(&text) {
            GitName::Readable(text)
        } else {
            GitName::Hashed {
                text: sanitise(name),
                hash: short_hash(name.as_bytes()),
            }
        }
    }

    /// The text within `cap` characters. A name that must be cut keeps its hash, so that names
    /// equal up to the cut still differ.
    fn render(&self, cap: usize) -> String {
        let (text, hash) = match self {
            GitName::Readable(text) if text.len() <= cap => return text.clone(),
            GitName::Readable(text) => (text, short_hash(text.replace("--", "/").as_bytes())),
            GitName::Hashed { text, hash } => (text, hash.clone()),
        };
        let keep = text.len().min(cap.saturating_sub(NAME_HASH_LEN + 1));
        if keep == 0 {
            hash
        } else {
            // Sanitised and readable text is ASCII, so any byte index is a char boundary.
            format!("{}-{hash}", &text[..keep])
        }
    }
}

fn ends_like_hash(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() > NAME_HASH_LEN
        && bytes[bytes.len() - NAME_HASH_LEN - 1] == b'-'
        && bytes[bytes.len() - NAME_HASH_LEN..]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn short_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..NAME_HASH_LEN / 2])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` is a full commit id (40 hex digits, either case).
pub fn is_sha40(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The immutable tag through which a later pipeline finds the image of a commit in one
/// request: `commit-<sha40>`, with a hash of the build arguments when the environment has any,
/// so an image is only reused by pipelines that would build the same thing.
pub fn lookup_tag(sha40: &str, build_args: &BTreeMap<String, String>) -> String {
    if build_args.is_empty() {
        return format!("commit-{sha40}");
    }
    // Each key and value is length-prefixed, so no two sets of arguments share an encoding.
    let mut hasher = Sha256::new();
    for (key, value) in build_args {
        for text in [key, value] {
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        }
    }
    // 64 bits: a collision among the argument sets of one commit stays negligible (n²/2⁶⁵).
    format!(
        "commit-{sha40}-{}",
        hex(&hasher.finalize()[..BUILD_ARGS_HASH_HEX / 2])
    )
}

/// An environment's build arguments with their placeholders filled in: `{sha}` the full
/// commit, `{ref}` the branch or tag name, `{version}` the SemVer of a release tag (without
/// `v`, build metadata kept), empty on any other ref. Other text is left as written.
pub fn build_args(
    configured: &BTreeMap<String, String>,
    sha40: &str,
    ref_name: &str,
    version: Option<&semver::Version>,
) -> BTreeMap<String, String> {
    let version = version.map(ToString::to_string).unwrap_or_default();
    configured
        .iter()
        .map(|(key, value)| {
            let filled = value
                .replace("{sha}", sha40)
                .replace("{ref}", ref_name)
                .replace("{version}", &version);
            (key.clone(), filled)
        })
        .collect()
}

/// Hex digits of the build-arguments hash in a lookup tag.
const BUILD_ARGS_HASH_HEX: usize = 16;

/// Hex digits of the build-arguments hash in the lookup tags of earlier versions: still read
/// as naming their commit, never looked up by a build (README, "Migration").
const OLD_BUILD_ARGS_HASH_HEX: usize = 8;

/// The commit a lookup tag names: `commit-<sha40>`, or `commit-<sha40>-<hex>` with the 16
/// hex digits of `lookup_tag` or the 8 of earlier versions.
pub fn lookup_commit(tag: &str) -> Option<&str> {
    let rest = tag.strip_prefix("commit-")?;
    let sha = rest.get(..40)?;
    let suffix = &rest[40..];
    let suffix_ok = suffix.is_empty()
        || (suffix.starts_with('-')
            && [BUILD_ARGS_HASH_HEX, OLD_BUILD_ARGS_HASH_HEX].contains(&(suffix.len() - 1))
            && suffix[1..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    (suffix_ok && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(sha)
}

/// A value a tag format can refer to as `{placeholder}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// The branch name, sanitised.
    Branch,
    /// The part of the branch after the tracking pattern's fixed prefix (`test/*` → `uat1`).
    Name,
    /// The first 7 hex digits of the commit.
    Sha,
    /// The full 40-hex commit id.
    Sha40,
    /// Unix seconds at build time.
    Timestamp,
    /// The SemVer of the tag, without `v`, `+` written as `_`.
    Version,
    /// The environment's name.
    Env,
}

impl Placeholder {
    pub const ALL: [Placeholder; 7] = [
        Placeholder::Branch,
        Placeholder::Name,
        Placeholder::Sha,
        Placeholder::Sha40,
        Placeholder::Timestamp,
        Placeholder::Version,
        Placeholder::Env,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Branch => "branch",
            Placeholder::Name => "name",
            Placeholder::Sha => "sha",
            Placeholder::Sha40 => "sha40",
            Placeholder::Timestamp => "timestamp",
            Placeholder::Version => "version",
            Placeholder::Env => "env",
        }
    }

    /// Values that change with each deploy: the `latest` tag keeps what comes before them.
    fn varies_per_deploy(self) -> bool {
        matches!(
            self,
            Placeholder::Sha | Placeholder::Sha40 | Placeholder::Timestamp | Placeholder::Version
        )
    }
}

/// One piece of a format: literal text, or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Placeholder(Placeholder),
}

/// A parsed tag format such as `dev-{branch}-{sha}-{timestamp}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFormat {
    source: String,
    parts: Vec<Part>,
}

/// Why a tag format does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("format is empty")]
    Empty,
    #[error(
        "unknown placeholder `{{{0}}}`; use one of {{branch}} {{name}} {{sha}} {{sha40}} {{timestamp}} {{version}} {{env}}"
    )]
    UnknownPlaceholder(String),
    #[error("`{{` at byte {0} is never closed")]
    Unclosed(usize),
    #[error("character {0:?} is not allowed in a tag; literal text may use only A-Z a-z 0-9 _ . -")]
    BadCharacter(char),
    #[error("a tag must start with a letter, a digit or `_`, not {0:?}")]
    BadStart(char),
}

impl FromStr for TagFormat {
    type Err = FormatError;

    fn from_str(source: &str) -> Result<Self, FormatError> {
        if source.is_empty() {
            return Err(FormatError::Empty);
        }
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(after_brace) = rest.strip_prefix('{') {
                let offset = source.len() - rest.len();
                let end = after_brace.find('}').ok_or(FormatError::Unclosed(offset))?;
                let name = &after_brace[..end];
                let placeholder = Placeholder::ALL
                    .into_iter()
                    .find(|p| p.name() == name)
                    .ok_or_else(|| FormatError::UnknownPlaceholder(name.to_owned()))?;
                parts.push(Part::Placeholder(placeholder));
                rest = &after_brace[end + 1..];
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let literal = &rest[..end];
                if let Some(bad) = literal
                    .chars()
                    .find(|c| !c.is_ascii() || !is_tag_byte(*c as u8))
                {
                    return Err(FormatError::BadCharacter(bad));
                }
                parts.push(Part::Literal(literal.to_owned()));
                rest = &rest[end..];
            }
        }
        if let Some(Part::Literal(first)) = parts.first() {
            let c = first.chars().next().expect("literals are never empty");
            if !(c.is_ascii_alphanumeric() || c == '_') {
                return Err(FormatError::BadStart(c));
            }
        }
        Ok(TagFormat {
            source: source.to_owned(),
            parts,
        })
    }
}

impl fmt::Display for TagFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The values a format is rendered with. Git names are sanitised here, not by the caller.
#[derive(Debug, Clone, Default)]
pub struct TagValues<'a> {
    pub branch: Option<&'a str>,
    pub name: Option<&'a str>,
    pub sha40: &'a str,
    pub timestamp: u64,
    pub version: Option<&'a str>,
    pub env: &'a str,
}

/// Why a format could not be rendered for a given ref.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("format `{format}` uses {{{placeholder}}}, which this ref does not have")]
    Missing {
        format: String,
        placeholder: &'static str,
    },
    #[error(
        "format `{format}` gives `{tag}`, which is not a valid tag (start with a letter, digit or `_`; at most 128 characters)"
    )]
    Invalid { format: String, tag: String },
}

impl TagFormat {
    /// The format, piece by piece, as parsed.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    pub fn uses(&self, placeholder: Placeholder) -> bool {
        self.parts.contains(&Part::Placeholder(placeholder))
    }

    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Placeholder(p) => Some(*p),
            Part::Literal(_) => None,
        })
    }

    /// Renders the tag. When the result would pass 128 characters, only the values that come
    /// from git names (`{branch}`, `{name}`) are shortened: the sha, timestamp and version never are.
    pub fn render(&self, values: &TagValues<'_>) -> Result<String, RenderError> {
        self.render_parts(&self.parts, values, None)
    }

    /// The moving `latest` tag: the format up to its first per-deploy value, then `latest`
    /// (`stg-{sha}-{timestamp}` → `stg-latest`, `tst-{name}-{sha}` → `tst-uat1-latest`).
    pub fn render_latest(&self, values: &TagValues<'_>) -> Result<String, RenderError> {
        self.render_parts(self.latest_parts(), values, Some("latest"))
    }

    /// The parts a latest tag keeps, before `latest`: those before the first per-deploy value.
    pub fn latest_parts(&self) -> &[Part] {
        let end = self
            .parts
            .iter()
            .position(|part| matches!(part, Part::Placeholder(p) if p.varies_per_deploy()))
            .unwrap_or(self.parts.len());
        &self.parts[..end]
    }

    /// Whether the format names the branch (`{branch}` or `{name}`): one series per branch.
    pub fn is_per_branch(&self) -> bool {
        self.uses(Placeholder::Branch) || self.uses(Placeholder::Name)
    }

    /// The rendered text of each part of the format, in order, as `render` joins them: what a
    /// tag filter needs to match a given branch exactly.
    pub fn render_pieces(&self, values: &TagValues<'_>) -> Result<Vec<String>, RenderError> {
        let mut pieces = self.pieces(&self.parts, values, None)?;
        pieces.truncate(self.parts.len());
        Ok(pieces)
    }

    fn render_parts(
        &self,
        parts: &[Part],
        values: &TagValues<'_>,
        suffix: Option<&str>,
    ) -> Result<String, RenderError> {
        let tag = self.pieces(parts, values, suffix)?.concat();
        if is_valid_tag(&tag) {
            Ok(tag)
        } else {
            Err(RenderError::Invalid {
                format: self.source.clone(),
                tag,
            })
        }
    }

    /// Each part's text, git names shortened (with their hash) just enough for the whole tag
    /// to fit 128 characters.
    fn pieces(
        &self,
        parts: &[Part],
        values: &TagValues<'_>,
        suffix: Option<&str>,
    ) -> Result<Vec<String>, RenderError> {
        enum Piece {
            Fixed(String),
            Name(GitName),
        }
        let missing = |placeholder: Placeholder| RenderError::Missing {
            format: self.source.clone(),
            placeholder: placeholder.name(),
        };
        let mut pieces = Vec::with_capacity(parts.len() + 1);
        for part in parts {
            pieces.push(match part {
                Part::Literal(text) => Piece::Fixed(text.clone()),
                Part::Placeholder(p) => match p {
                    Placeholder::Branch => {
                        Piece::Name(GitName::of(values.branch.ok_or_else(|| missing(*p))?))
                    }
                    Placeholder::Name => {
                        Piece::Name(GitName::of(values.name.ok_or_else(|| missing(*p))?))
                    }
                    Placeholder::Sha => {
                        Piece::Fixed(values.sha40.get(..7).unwrap_or(values.sha40).to_owned())
                    }
                    Placeholder::Sha40 => Piece::Fixed(values.sha40.to_owned()),
                    Placeholder::Timestamp => Piece::Fixed(values.timestamp.to_string()),
                    Placeholder::Version => {
                        Piece::Fixed(values.version.ok_or_else(|| missing(*p))?.to_owned())
                    }
                    Placeholder::Env => Piece::Fixed(sanitise(values.env)),
                },
            });
        }
        if let Some(suffix) = suffix {
            pieces.push(Piece::Fixed(suffix.to_owned()));
        }
        let render = |cap: usize| -> Vec<String> {
            pieces
                .iter()
                .map(|piece| match piece {
                    Piece::Fixed(text) => text.clone(),
                    Piece::Name(name) => name.render(cap),
                })
                .collect()
        };
        let whole = render(usize::MAX);
        if whole.iter().map(String::len).sum::<usize>() <= MAX_TAG_LEN {
            return Ok(whole);
        }
        // The largest per-name length at which the tag fits; shorter names never grow.
        let longest = whole.iter().map(String::len).max().unwrap_or(0);
        let cap = (0..longest)
            .rev()
            .find(|cap| render(*cap).iter().map(String::len).sum::<usize>() <= MAX_TAG_LEN)
            .unwrap_or(0);
        Ok(render(cap))
    }
}

/// What a tag of one environment's format carries, once matched (`TagFormat::matcher`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// `{sha}` (7 hex digits) or `{sha40}`, whichever the format has.
    pub sha: Option<String>,
    pub timestamp: Option<u64>,
    pub version: Option<String>,
}

/// Recognises the tags a format gives (never its `latest` tag, nor lookup tags), for one
/// commit or for any.
#[derive(Debug, Clone)]
pub struct Matcher {
    regex: regex::Regex,
}

impl TagFormat {
    /// The matcher of the tags this format gives in environment `env`; with `sha40`, only
    /// for that commit. Branch and version values match any tag characters.
    pub fn matcher(&self, env: &str, sha40: Option<&str>) -> Matcher {
        let mut pattern = String::from("^");
        let mut named = std::collections::BTreeSet::new();
        for part in &self.parts {
            let piece = match part {
                Part::Literal(text) => regex::escape(text),
                Part::Placeholder(p) => {
                    let (group, inner) = match p {
                        Placeholder::Sha => (
                            "sha",
                            sha40.map_or("[0-9a-f]{7}".to_owned(), |s| {
                                regex::escape(s.get(..7).unwrap_or(s))
                            }),
                        ),
                        Placeholder::Sha40 => (
                            "sha",
                            sha40.map_or("[0-9a-f]{40}".to_owned(), regex::escape),
                        ),
                        Placeholder::Timestamp => ("timestamp", "[0-9]{10}".to_owned()),
                        Placeholder::Version => ("version", "[A-Za-z0-9_.-]+".to_owned()),
                        Placeholder::Env => ("", regex::escape(&sanitise(env))),
                        Placeholder::Branch | Placeholder::Name => {
                            ("", "[A-Za-z0-9_.-]*".to_owned())
                        }
                    };
                    if !group.is_empty() && named.insert(group) {
                        format!("(?P<{group}>{inner})")
                    } else {
                        format!("(?:{inner})")
                    }
                }
            };
            pattern.push_str(&piece);
        }
        pattern.push('$');
        Matcher {
            regex: regex::Regex::new(&pattern).expect("escaped parts always make a valid pattern"),
        }
    }
}

impl Matcher {
    /// What `tag` carries, when it is one of the format's tags.
    pub fn matches(&self, tag: &str) -> Option<Matched> {
        if lookup_commit(tag).is_some() {
            return None;
        }
        let captures = self.regex.captures(tag)?;
        let text = |name: &str| captures.name(name).map(|m| m.as_str().to_owned());
        Some(Matched {
            sha: text("sha"),
            timestamp: text("timestamp").and_then(|t| t.parse().ok()),
            version: text("version"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "b4b9fda0123456789abcdef0123456789abcdef0";

    fn values(branch: &str) -> TagValues<'_> {
        TagValues {
            branch: Some(branch),
            name: None,
            sha40: SHA,
            timestamp: 1_654_880_868,
            version: None,
            env: "development",
        }
    }

    #[test]
    fn sanitise_table() {
        let cases = [
            ("feature/login", "feature-login"),
            ("feature//login", "feature-login"),
            ("Fix#12@home", "Fix-12-home"),
            ("café", "caf-"),
            ("-leading", "leading"),
            (".hidden", "hidden"),
            ("..-.x", "x"),
            ("UPPER", "UPPER"),
            ("a b\tc", "a-b-c"),
            ("###", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitise(input), expected, "sanitise({input:?})");
        }
    }

    #[test]
    fn grammar() {
        assert!(is_valid_tag("prd-1.2.3_build.5"));
        assert!(is_valid_tag("_x"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag("-x"));
        assert!(!is_valid_tag(".x"));
        assert!(!is_valid_tag("a+b"));
        assert!(is_valid_tag(&"a".repeat(128)));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn parse_errors() {
        let err = |s: &str| s.parse::<TagFormat>().unwrap_err();
        assert_eq!(err(""), FormatError::Empty);
        assert_eq!(
            err("x-{shaa}"),
            FormatError::UnknownPlaceholder("shaa".into())
        );
        assert_eq!(err("x-{sha"), FormatError::Unclosed(2));
        assert_eq!(err("x+{sha}"), FormatError::BadCharacter('+'));
        assert_eq!(err("-{sha}"), FormatError::BadStart('-'));
    }

    #[test]
    fn renders_and_shortens_only_the_branch() {
        let format: TagFormat = "dev-{branch}-{sha}-{timestamp}".parse().unwrap();
        assert_eq!(
            format.render(&values("feature/login")).unwrap(),
            "dev-feature--login-b4b9fda-1654880868"
        );
        let long = "x".repeat(250);
        let tag = format.render(&values(&long)).unwrap();
        assert_eq!(tag.len(), 128);
        assert!(tag.ends_with("-b4b9fda-1654880868"), "{tag}");
        assert_eq!(
            format.render_latest(&values("feature/login")).unwrap(),
            "dev-feature--login-latest"
        );
    }

    #[test]
    fn missing_value_is_an_error() {
        let format: TagFormat = "prd-{version}".parse().unwrap();
        assert!(matches!(
            format.render(&values("main")),
            Err(RenderError::Missing {
                placeholder: "version",
                ..
            })
        ));
    }

    #[test]
    fn lookup_tags_are_read_back() {
        let sha = "b4b9fda0123456789abcdef0123456789abcdef0";
        assert_eq!(lookup_tag(sha, &BTreeMap::new()), format!("commit-{sha}"));
        let args = BTreeMap::from([("A".to_owned(), "x".to_owned())]);
        let with_args = lookup_tag(sha, &args);
        assert_eq!(lookup_commit(&with_args), Some(sha));
        assert_eq!(lookup_commit(&format!("commit-{sha}")), Some(sha));
        assert_eq!(with_args.len(), "commit-".len() + 40 + 1 + 16);
        assert_eq!(lookup_commit(&format!("commit-{sha}-0a1b2c3d")), Some(sha));
        assert_eq!(
            lookup_commit(&format!("commit-{sha}-0a1b2c3d4e5f6a7b")),
            Some(sha)
        );
        assert_eq!(lookup_commit(&format!("commit-{sha}-0a1b")), None);
        assert_eq!(lookup_commit(&format!("commit-{sha}-0a1b2c3d4e")), None);
        assert_eq!(lookup_commit(&format!("commit-{sha}-0A1B2C3D")), None);
        assert_eq!(lookup_commit("commit-b4b9fda"), None);
        assert_eq!(lookup_commit(&format!("commit-{sha}x")), None);
        assert_eq!(lookup_commit("prd-1.2.3"), None);
        assert_eq!(
            lookup_commit(&format!("commit-{}", sha.to_uppercase())),
            None
        );
    }

    #[test]
    fn build_arguments_hash_unambiguously() {
        let sha = "b4b9fda0123456789abcdef0123456789abcdef0";
        let one = BTreeMap::from([("A".to_owned(), "x\nB=y".to_owned())]);
        let two = BTreeMap::from([
            ("A".to_owned(), "x".to_owned()),
            ("B".to_owned(), "y".to_owned()),
        ]);
        assert_ne!(lookup_tag(sha, &one), lookup_tag(sha, &two));
        let three = BTreeMap::from([("A=x".to_owned(), String::new())]);
        let four = BTreeMap::from([("A".to_owned(), "=x".to_owned())]);
        assert_ne!(lookup_tag(sha, &three), lookup_tag(sha, &four));
    }

    #[test]
    fn git_names_are_readable_and_never_shared() {
        let format: TagFormat = "dev-{branch}-{sha}-{timestamp}".parse().unwrap();
        let tag = |branch: &str| format.render(&values(branch)).unwrap();
        // Common names read as they are; `/` is written `--`.
        assert_eq!(tag("main"), "dev-main-b4b9fda-1654880868");
        assert_eq!(tag("fix-typo"), "dev-fix-typo-b4b9fda-1654880868");
        assert_eq!(
            tag("feature/login"),
            "dev-feature--login-b4b9fda-1654880868"
        );
        // Names that sanitising makes alike carry a hash of the original name.
        let pairs = [
            ("feature/a", "feature-a"),
            ("feature/a", "feature--a"),
            ("#", "###"),
            ("#", "\""),
            ("a-/b", "a/-b"),
            ("café", "caf-"),
            ("fix-0123abcd", "fix#0123abcd"),
        ];
        for (a, b) in pairs {
            assert_ne!(tag(a), tag(b), "{a:?} and {b:?}");
            assert!(is_valid_tag(&tag(a)) && is_valid_tag(&tag(b)));
        }
        assert!(tag("feature--a").starts_with("dev-feature--a-"));
        assert_ne!(tag("feature--a"), "dev-feature--a-b4b9fda-1654880868");
        // Two long names equal up to the cut still differ, and keep the sha and timestamp.
        let long = "x".repeat(200);
        let (one, two) = (format!("{long}-one"), format!("{long}-two"));
        assert_ne!(tag(&one), tag(&two));
        for name in [&one, &two] {
            assert_eq!(tag(name).len(), MAX_TAG_LEN);
            assert!(tag(name).ends_with("-b4b9fda-1654880868"));
        }
        // Latest tags follow the same rule.
        let latest = |branch: &str| format.render_latest(&values(branch)).unwrap();
        assert_eq!(latest("feature/login"), "dev-feature--login-latest");
        assert_ne!(latest("#"), latest("###"));
        assert_ne!(latest("feature/a"), latest("feature-a"));
    }

    #[test]
    fn matchers_recognise_an_environments_tags() {
        let sha = "b4b9fda0123456789abcdef0123456789abcdef0";
        let format: TagFormat = "stg-{sha}-{timestamp}".parse().unwrap();
        let any = format.matcher("staging", None);
        let matched = any.matches("stg-b4b9fda-1654880868").unwrap();
        assert_eq!(matched.sha.as_deref(), Some("b4b9fda"));
        assert_eq!(matched.timestamp, Some(1_654_880_868));
        assert!(any.matches("stg-latest").is_none());
        assert!(any.matches("prd-1.2.3").is_none());
        let this = format.matcher("staging", Some(sha));
        assert!(this.matches("stg-b4b9fda-1654880868").is_some());
        assert!(this.matches("stg-0000000-1654880868").is_none());
        let per_branch: TagFormat = "dev-{branch}-{sha}-{timestamp}".parse().unwrap();
        assert!(
            per_branch
                .matcher("development", Some(sha))
                .matches("dev-feature-login-b4b9fda-1654880868")
                .is_some()
        );
        let versioned: TagFormat = "prd-{version}".parse().unwrap();
        let matched = versioned
            .matcher("production", None)
            .matches("prd-1.2.3")
            .unwrap();
        assert_eq!(matched.version.as_deref(), Some("1.2.3"));
        assert!(
            versioned
                .matcher("production", None)
                .matches(&format!("commit-{sha}"))
                .is_none()
        );
    }
}
