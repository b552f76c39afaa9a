//! Just enough of YAML's surface to find a scalar's exact span in a manifest and to write a new
//! value in the same place and style, so that every other byte (comments, order, quoting,
//! line endings) stays as it was. Lines, comments, `key: value` lines, one-line flow mappings
//! and scalars in the three styles; no document is ever parsed into a tree and written back.
//! Which keys mean what is each editor's business.

use std::ops::Range;

/// The marker that keeps a value as it is: in the line's comment, or on a comment line just
/// above it.
pub const PINNED_MARKER: &str = "gitops:pinned";

/// One line of the text, without its line ending.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// Byte offset of the line in the whole text.
    pub start: usize,
    pub text: &'a str,
    /// `"\n"`, `"\r\n"`, or `""` on a last line without one.
    pub eol: &'a str,
}

impl Line<'_> {
    pub fn indent(&self) -> usize {
        self.text.len() - self.text.trim_start_matches(' ').len()
    }

    /// The line up to its comment, trailing blanks dropped.
    pub fn code(&self) -> &str {
        let end = comment_start(self.text).unwrap_or(self.text.len());
        self.text[..end].trim_end()
    }

    /// The comment's text after `#`, if the line has one.
    pub fn comment(&self) -> Option<&str> {
        comment_start(self.text).map(|at| &self.text[at + 1..])
    }

    /// Blank, or nothing but a comment.
    pub fn is_blank_or_comment(&self) -> bool {
        self.code().trim().is_empty()
    }

    pub fn is_pinned(&self) -> bool {
        self.comment().is_some_and(|c| c.contains(PINNED_MARKER))
    }
}

/// The text's lines, each with its own line ending.
pub fn lines(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let (end, next) = match text[start..].find('\n') {
            Some(at) => (start + at, start + at + 1),
            None => (text.len(), text.len()),
        };
        let (body_end, eol) = if end > start && text.as_bytes()[end - 1] == b'\r' && next > end {
            (end - 1, &text[end - 1..next])
        } else {
            (end, &text[end..next])
        };
        lines.push(Line {
            start,
            text: &text[start..body_end],
            eol,
        });
        start = next;
    }
    lines
}

/// The line ending most lines of `text` use, for lines this crate adds.
pub fn dominant_eol(text: &str) -> &'static str {
    let crlf = text.matches("\r\n").count();
    if crlf * 2 > text.matches('\n').count() {
        "\r\n"
    } else {
        "\n"
    }
}

/// Where a comment starts: a `#` at the start or after a blank, outside quotes.
pub fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(b'"') if b == b'\\' => i += 1,
            Some(q) if b == q => {
                // '' inside single quotes is an escaped quote.
                if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                    i += 1;
                } else {
                    quote = None;
                }
            }
            Some(_) => {}
            None if b == b'#' && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t')) => {
                return Some(i);
            }
            None if (b == b'"' || b == b'\'') && starts_token(bytes, i) => quote = Some(b),
            None => {}
        }
        i += 1;
    }
    None
}

/// A quote opens a quoted scalar only where a scalar can start.
fn starts_token(bytes: &[u8], i: usize) -> bool {
    i == 0
        || matches!(
            bytes[i - 1],
            b' ' | b'\t' | b'{' | b'[' | b',' | b':' | b'-'
        )
}

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
}

/// A scalar value and where it is in the whole text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub range: Range<usize>,
    pub value: String,
    pub style: Style,
}

/// The scalar written in `text[range]` (blanks around it ignored); `None` for an empty range,
/// a flow collection, a block scalar indicator, an alias or a tag.
pub fn scalar_in(text: &str, range: Range<usize>) -> Option<Scalar> {
    let raw = &text[range.clone()];
    let lead = raw.len() - raw.trim_start().len();
    let trimmed = raw.trim();
    let start = range.start + lead;
    let end = start + trimmed.len();
    let first = trimmed.chars().next()?;
    match first {
        '"' => {
            let inner = trimmed.strip_prefix('"')?.strip_suffix('"')?;
            let mut value = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        't' => value.push('\t'),
                        other => value.push(other),
                    },
                    '"' => return None,
                    c => value.push(c),
                }
            }
            Some(Scalar {
                range: start..end,
                value,
                style: Style::Double,
            })
        }
        '\'' => {
            let inner = trimmed.strip_prefix('\'')?.strip_suffix('\'')?;
            Some(Scalar {
                range: start..end,
                value: inner.replace("''", "'"),
                style: Style::Single,
            })
        }
        '{' | '[' | '|' | '>' | '&' | '*' | '!' => None,
        _ => Some(Scalar {
            range: start..end,
            value: trimmed.to_owned(),
            style: Style::Plain,
        }),
    }
}

/// `value` written in `style`, or double-quoted where a plain scalar would be read as
/// something else (a number, a boolean, null) or would not parse.
pub fn render(style: Style, value: &str) -> String {
    match style {
        Style::Plain if plain_is_string(value) => value.to_owned(),
        Style::Single if !value.contains(['\n', '\r']) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        _ => format!(
            "\"{}\"",
            value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        ),
    }
}

fn plain_is_string(value: &str) -> bool {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | ':' | '@' | '-'))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        && !value.ends_with(':');
    let number_like = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '+' | 'e' | 'E' | 'x' | 'o'))
        && value.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    let word = matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    );
    safe && !number_like && !word
}

/// A `key: value` line, or a sequence item (`- key: value`, `- value`).
#[derive(Debug, Clone)]
pub struct Entry {
    /// The column where the key (or an item's value) starts.
    pub column: usize,
    /// Whether the line starts a sequence item.
    pub dash: bool,
    /// The key, unquoted; `None` for an item that is a bare value.
    pub key: Option<String>,
    /// Where the value is in the whole text (blank when the value is a block below).
    pub value: Range<usize>,
}

impl Entry {
    pub fn scalar(&self, text: &str) -> Option<Scalar> {
        scalar_in(text, self.value.clone())
    }

    pub fn value_text<'t>(&self, text: &'t str) -> &'t str {
        text[self.value.clone()].trim()
    }
}

/// Reads a line as a mapping entry or a sequence item.
pub fn entry(line: &Line<'_>) -> Option<Entry> {
    let code = line.code();
    let mut column = line.indent();
    let mut dash = false;
    let rest = &code[column..];
    if rest == "-" || rest.starts_with("- ") {
        dash = true;
        let after = &rest[1..];
        column += 1 + (after.len() - after.trim_start().len());
    }
    let body = &code[column..];
    if body.is_empty() {
        return dash.then(|| Entry {
            column,
            dash,
            key: None,
            value: line.start + column..line.start + column,
        });
    }
    let (key, after_key) = match body.as_bytes()[0] {
        b'"' | b'\'' => {
            let quote = body.as_bytes()[0] as char;
            let close = body[1..].find(quote)? + 1;
            (body[1..close].to_owned(), close + 1)
        }
        b'{' | b'[' => (String::new(), 0),
        _ => {
            let at = key_colon(body).unwrap_or(body.len());
            (body[..at].trim_end().to_owned(), at)
        }
    };
    let is_key = body[after_key..].starts_with(':')
        && (after_key + 1 == body.len() || body.as_bytes()[after_key + 1] == b' ');
    if is_key && !key.is_empty() {
        let value_start = line.start + column + after_key + 1;
        return Some(Entry {
            column,
            dash,
            key: Some(key),
            value: value_start..line.start + code.len(),
        });
    }
    dash.then(|| Entry {
        column,
        dash,
        key: None,
        value: line.start + column..line.start + code.len(),
    })
}

/// Where a plain key's `: ` (or final `:`) is.
fn key_colon(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' '))
}

/// One `key: value` pair of a one-line flow mapping.
#[derive(Debug, Clone)]
pub struct FlowPair {
    pub key: String,
    pub value: Option<Scalar>,
}

/// A one-line flow mapping `{a: b, c: "d"}` starting at `open` (the `{`): its pairs, and
/// where its `}` is. `None` when it does not close on the line or nests collections.
pub fn flow_mapping(text: &str, open: usize, line_end: usize) -> Option<(Vec<FlowPair>, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(open) != Some(&b'{') {
        return None;
    }
    let mut pairs = Vec::new();
    let mut i = open + 1;
    loop {
        while i < line_end && bytes[i] == b' ' {
            i += 1;
        }
        if i >= line_end {
            return None;
        }
        if bytes[i] == b'}' {
            return Some((pairs, i));
        }
        // The key, up to `:`.
        let key_start = i;
        while i < line_end && !matches!(bytes[i], b':' | b',' | b'}' | b'{' | b'[') {
            i += 1;
        }
        if i >= line_end || bytes[i] != b':' {
            return None;
        }
        let key = text[key_start..i]
            .trim()
            .trim_matches(['"', '\''])
            .to_owned();
        i += 1;
        // The value, up to `,` or `}` outside quotes.
        let value_start = i;
        let mut quote: Option<u8> = None;
        while i < line_end {
            let b = bytes[i];
            match quote {
                Some(b'"') if b == b'\\' => i += 1,
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if matches!(b, b',' | b'}') => break,
                None if matches!(b, b'{' | b'[') => return None,
                None => {}
            }
            i += 1;
        }
        if i >= line_end {
            return None;
        }
        pairs.push(FlowPair {
            key,
            value: scalar_in(text, value_start..i),
        });
        if bytes[i] == b',' {
            i += 1;
        }
    }
}

/// Where text added before the byte at `at` goes so that it follows the last non-blank byte.
pub fn before_blanks(text: &str, at: usize) -> usize {
    at - (text[..at].len() - text[..at].trim_end_matches(' ').len())
}

/// A change to the text: the bytes of `range` become `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    pub range: Range<usize>,
    pub text: String,
}

/// The text with every splice made; splices must not overlap.
pub fn apply(text: &str, splices: &[Splice]) -> String {
    let mut sorted: Vec<&Splice> = splices.iter().collect();
    sorted.sort_by_key(|s| (s.range.start, s.range.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for splice in sorted {
        out.push_str(&text[at..splice.range.start.max(at)]);
        out.push_str(&splice.text);
        at = splice.range.end.max(at);
    }
    out.push_str(&text[at..]);
    out
}

/// Whether line `index` is pinned: its comment, or a comment-only line just above, says so.
pub fn pinned_at(lines: &[Line<'_>], index: usize) -> bool {
    lines[index].is_pinned()
        || index
            .checked_sub(1)
            .map(|above| &lines[above])
            .is_some_and(|above| above.code().trim().is_empty() && above.is_pinned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_endings() {
        let text = "a: 1\r\nb: 2\nc: 3";
        let lines = lines(text);
        assert_eq!(lines.len(), 3);
        assert_eq!((lines[0].text, lines[0].eol), ("a: 1", "\r\n"));
        assert_eq!((lines[1].text, lines[1].eol), ("b: 2", "\n"));
        assert_eq!((lines[2].text, lines[2].eol), ("c: 3", ""));
        assert_eq!(dominant_eol("a\r\nb\r\nc\n"), "\r\n");
        assert_eq!(dominant_eol("a\nb\n"), "\n");
    }

    #[test]
    fn comments_start_outside_quotes_after_a_blank() {
        assert_eq!(comment_start("a: b # c"), Some(5));
        assert_eq!(comment_start("a: \"b # c\" # d"), Some(11));
        assert_eq!(comment_start("a: 'it''s # x' # y"), Some(15));
        assert_eq!(comment_start("a: b#c"), None);
        assert_eq!(comment_start("# all"), Some(0));
    }

    #[test]
    fn scalars_in_each_style() {
        let text = r#"x: "a\"b" 'c''d' plain"#;
        assert_eq!(scalar_in(text, 2..9).unwrap().value, "a\"b");
        assert_eq!(scalar_in(text, 9..16).unwrap().value, "c'd");
        let plain = scalar_in(text, 16..text.len()).unwrap();
        assert_eq!((plain.value.as_str(), plain.style), ("plain", Style::Plain));
        assert!(scalar_in("x: {a: b}", 2..9).is_none());
    }

    #[test]
    fn rendering_keeps_strings_strings() {
        assert_eq!(
            render(Style::Plain, "stg-abc1234-1654880868"),
            "stg-abc1234-1654880868"
        );
        assert_eq!(render(Style::Plain, "sha256:00ff"), "sha256:00ff");
        assert_eq!(render(Style::Plain, "1.2"), "\"1.2\"");
        assert_eq!(render(Style::Plain, "123"), "\"123\"");
        assert_eq!(render(Style::Plain, "true"), "\"true\"");
        assert_eq!(render(Style::Single, "a'b"), "'a''b'");
        assert_eq!(render(Style::Double, "v1"), "\"v1\"");
    }

    #[test]
    fn entries_and_items() {
        let text = "  - name: app # c\n  newTag: \"v1\"\n- plain\nimages:\n";
        let lines = lines(text);
        let first = entry(&lines[0]).unwrap();
        assert!(first.dash);
        assert_eq!(first.column, 4);
        assert_eq!(first.key.as_deref(), Some("name"));
        assert_eq!(first.scalar(text).unwrap().value, "app");
        let second = entry(&lines[1]).unwrap();
        assert_eq!(second.scalar(text).unwrap().style, Style::Double);
        let third = entry(&lines[2]).unwrap();
        assert_eq!(third.key, None);
        assert_eq!(third.scalar(text).unwrap().value, "plain");
        let fourth = entry(&lines[3]).unwrap();
        assert_eq!(fourth.key.as_deref(), Some("images"));
        assert!(fourth.value_text(text).is_empty());
    }

    #[test]
    fn one_line_flow_mappings() {
        let text = "- {name: app, newTag: 'v1' }\n";
        let (pairs, close) = flow_mapping(text, 2, text.len() - 1).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1].key, "newTag");
        assert_eq!(pairs[1].value.as_ref().unwrap().value, "v1");
        assert_eq!(&text[close..=close], "}");
        assert!(flow_mapping("{a: {b: c}}", 0, 11).is_none());
        assert!(flow_mapping("{a: b", 0, 5).is_none());
    }

    #[test]
    fn splices_apply_in_order() {
        let text = "abcdef";
        let out = apply(
            text,
            &[
                Splice {
                    range: 4..5,
                    text: "E".into(),
                },
                Splice {
                    range: 1..2,
                    text: "BB".into(),
                },
                Splice {
                    range: 6..6,
                    text: "!".into(),
                },
            ],
        );
        assert_eq!(out, "aBBcdEf!");
    }
}
