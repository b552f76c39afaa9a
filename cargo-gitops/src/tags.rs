//! Image tags: the Docker tag grammar, the one sanitiser for git names, and tag formats with
//! their placeholders. It does not decide which environment a ref belongs to (`environment`).

use std::fmt;
use std::str::FromStr;

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

    /// Values taken from a git name, which may be shortened to fit the length limit.
    fn is_shortenable(self) -> bool {
        matches!(self, Placeholder::Branch | Placeholder::Name)
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
        let end = self
            .parts
            .iter()
            .position(|part| matches!(part, Part::Placeholder(p) if p.varies_per_deploy()))
            .unwrap_or(self.parts.len());
        self.render_parts(&self.parts[..end], values, Some("latest"))
    }

    fn render_parts(
        &self,
        parts: &[Part],
        values: &TagValues<'_>,
        suffix: Option<&str>,
    ) -> Result<String, RenderError> {
        let sha7 = values.sha40.get(..7).unwrap_or(values.sha40);
        let timestamp = values.timestamp.to_string();
        let env = sanitise(values.env);
        let branch = values.branch.map(sanitise);
        let name = values.name.map(sanitise);
        let missing = |placeholder: Placeholder| RenderError::Missing {
            format: self.source.clone(),
            placeholder: placeholder.name(),
        };

        // Pieces in order, each with whether it may be shortened.
        let mut pieces: Vec<(&str, bool)> = Vec::with_capacity(parts.len() + 1);
        for part in parts {
            let piece = match part {
                Part::Literal(text) => text.as_str(),
                Part::Placeholder(p) => match p {
                    Placeholder::Branch => branch.as_deref().ok_or_else(|| missing(*p))?,
                    Placeholder::Name => name.as_deref().ok_or_else(|| missing(*p))?,
                    Placeholder::Sha => sha7,
                    Placeholder::Sha40 => values.sha40,
                    Placeholder::Timestamp => &timestamp,
                    Placeholder::Version => values.version.ok_or_else(|| missing(*p))?,
                    Placeholder::Env => &env,
                },
            };
            let shortenable = matches!(part, Part::Placeholder(p) if p.is_shortenable());
            pieces.push((piece, shortenable));
        }
        if let Some(suffix) = suffix {
            pieces.push((suffix, false));
        }

        let fixed: usize = pieces
            .iter()
            .filter(|(_, s)| !s)
            .map(|(p, _)| p.len())
            .sum();
        let lengths: Vec<usize> = pieces
            .iter()
            .filter(|(_, s)| *s)
            .map(|(p, _)| p.len())
            .collect();
        let cap = shortening_cap(&lengths, MAX_TAG_LEN.saturating_sub(fixed));

        let mut tag = String::with_capacity(MAX_TAG_LEN);
        for (piece, shortenable) in pieces {
            if shortenable && piece.len() > cap {
                // Sanitised values are ASCII, so any byte index is a char boundary.
                tag.push_str(&piece[..cap]);
            } else {
                tag.push_str(piece);
            }
        }
        if is_valid_tag(&tag) {
            Ok(tag)
        } else {
            Err(RenderError::Invalid {
                format: self.source.clone(),
                tag,
            })
        }
    }
}

/// The largest per-value length such that the shortened values fit in `budget` together.
fn shortening_cap(lengths: &[usize], budget: usize) -> usize {
    let total: usize = lengths.iter().sum();
    if total <= budget {
        return usize::MAX;
    }
    let longest = lengths.iter().copied().max().unwrap_or(0);
    (0..=longest)
        .rev()
        .find(|cap| lengths.iter().map(|len| (*len).min(*cap)).sum::<usize>() <= budget)
        .unwrap_or(0)
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
            "dev-feature-login-b4b9fda-1654880868"
        );
        let long = "x".repeat(250);
        let tag = format.render(&values(&long)).unwrap();
        assert_eq!(tag.len(), 128);
        assert!(tag.ends_with("-b4b9fda-1654880868"), "{tag}");
        assert_eq!(
            format.render_latest(&values("feature/login")).unwrap(),
            "dev-feature-login-latest"
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
}
