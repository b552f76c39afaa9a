//! The kustomize editor: the entries of a kustomization's `images:` list whose `name` or
//! `newName` is the image get `newTag` and `digest` (added beside the entry's other keys when
//! missing). Block lists and one-line flow mappings are edited in place; a multi-line flow list
//! is refused rather than rewritten.

use super::edit::{Edited, Image, Occurrence, Ours, Verdict, verdict};
use super::yaml::{self, Line, Scalar, Splice};

/// The file names kustomize reads as a kustomization.
pub const FILE_NAMES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// One `images:` entry: its keys, where it ends, and how to add a key to it.
struct ImageEntry {
    /// Index of the entry's first line.
    first: usize,
    keys: Vec<(String, Option<Scalar>)>,
    pinned: bool,
    insert: Insert,
}

/// Where a missing key goes.
enum Insert {
    /// New lines at `at` (after the entry's last line; `None` until that line is known),
    /// indented to `column`, each ended by `eol`, or at the end of a file without a final line
    /// ending, each after `lead`.
    Line {
        at: Option<usize>,
        column: usize,
        eol: String,
        lead: String,
    },
    /// Before the flow mapping's `}` at this offset.
    Flow { close: usize },
}

impl ImageEntry {
    fn get(&self, key: &str) -> Option<&Scalar> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_ref())
    }

    fn names(&self, image: &str) -> bool {
        ["name", "newName"]
            .iter()
            .any(|key| self.get(key).is_some_and(|v| v.value == image))
    }
}

/// Edits `text`, a kustomization, for `image`. `Err` says why the file cannot be edited.
pub fn edit(text: &str, image: &Image, ours: Ours<'_>) -> Result<Edited, String> {
    let lines = yaml::lines(text);
    let mut edited = Edited::default();
    for entry in image_entries(text, &lines)? {
        if !entry.names(&image.name) {
            continue;
        }
        let old_tag = entry.get("newTag").map(|s| s.value.clone());
        let old_digest = entry.get("digest").map(|s| s.value.clone());
        let verdict = verdict(
            image,
            entry.pinned,
            old_tag.as_deref(),
            old_digest.as_deref(),
            ours,
        );
        if verdict == Verdict::Write {
            let mut added = Vec::new();
            for (key, value) in [("newTag", &image.tag), ("digest", &image.digest)] {
                match entry.get(key) {
                    Some(scalar) if scalar.value == *value => {}
                    Some(scalar) => edited.splices.push(Splice {
                        range: scalar.range.clone(),
                        text: yaml::render(scalar.style, value),
                    }),
                    None => added.push((key, value)),
                }
            }
            if !added.is_empty() {
                edited.splices.push(insertion(text, &entry.insert, &added));
            }
        }
        edited.occurrences.push(Occurrence {
            line: entry.first + 1,
            kind: "kustomize images",
            old_tag,
            old_digest,
            verdict,
        });
    }
    Ok(edited)
}

fn insertion(source: &str, insert: &Insert, added: &[(&str, &String)]) -> Splice {
    match insert {
        Insert::Line {
            at,
            column,
            eol,
            lead,
        } => {
            let at = at.expect("every block entry ends somewhere");
            let mut text = String::new();
            for (key, value) in added {
                let line = format!(
                    "{}{key}: {}",
                    " ".repeat(*column),
                    yaml::render(yaml::Style::Plain, value)
                );
                // At the end of a file without a final line ending, each new line comes after
                // one, and the file still ends without.
                if lead.is_empty() {
                    text.push_str(&line);
                    text.push_str(eol);
                } else {
                    text.push_str(lead);
                    text.push_str(&line);
                }
            }
            Splice {
                range: at..at,
                text,
            }
        }
        Insert::Flow { close } => {
            let text: String = added
                .iter()
                .map(|(key, value)| format!(", {key}: {}", yaml::render(yaml::Style::Plain, value)))
                .collect();
            let at = yaml::before_blanks(source, *close);
            Splice {
                range: at..at,
                text,
            }
        }
    }
}

/// Every entry of the top-level `images:` list.
fn image_entries(text: &str, lines: &[Line<'_>]) -> Result<Vec<ImageEntry>, String> {
    let Some(start) = lines.iter().position(|line| {
        line.indent() == 0
            && yaml::entry(line).is_some_and(|e| !e.dash && e.key.as_deref() == Some("images"))
    }) else {
        return Ok(Vec::new());
    };
    let header = yaml::entry(&lines[start]).expect("found above");
    let value = header.value_text(text);
    if value.starts_with('[') {
        return flow_list(text, &lines[start], header.value.start);
    }
    if !value.is_empty() {
        return Err(format!(
            "line {}: `images:` is not a list; write one entry per image",
            start + 1
        ));
    }
    let eol_default = yaml::dominant_eol(text).to_owned();
    let mut entries: Vec<ImageEntry> = Vec::new();
    let mut item_indent: Option<usize> = None;
    let mut last_content = start;
    for index in start + 1..lines.len() {
        let line = &lines[index];
        if line.is_blank_or_comment() {
            continue;
        }
        let indent = line.indent();
        let parsed = yaml::entry(line);
        let dash = parsed.as_ref().is_some_and(|e| e.dash);
        match item_indent {
            None if dash => item_indent = Some(indent),
            None => break,
            Some(d) if indent < d || (indent == d && !dash) => break,
            Some(_) => {}
        }
        let d = item_indent.expect("set above");
        if let Some(entry) = entries.last_mut() {
            // The previous entry's keys go on until this line.
            if indent == d && dash {
                finish(entry, lines, last_content, &eol_default);
            }
        }
        if indent == d && dash {
            let parsed = parsed.expect("a dash line is an entry");
            let pinned = yaml::pinned_at(lines, index);
            if parsed.key.is_none() && text[parsed.value.clone()].trim_start().starts_with('{') {
                let open = parsed.value.start
                    + text[parsed.value.clone()].find('{').expect("starts with {");
                let (pairs, close) = yaml::flow_mapping(text, open, line.start + line.text.len())
                    .ok_or_else(|| {
                    format!(
                        "line {}: cannot read this images entry; write it as `- name: ...` lines",
                        index + 1
                    )
                })?;
                entries.push(ImageEntry {
                    first: index,
                    keys: pairs.into_iter().map(|p| (p.key, p.value)).collect(),
                    pinned,
                    insert: Insert::Flow { close },
                });
            } else {
                let mut keys = Vec::new();
                if let Some(key) = &parsed.key {
                    keys.push((key.clone(), parsed.scalar(text)));
                }
                entries.push(ImageEntry {
                    first: index,
                    keys,
                    pinned,
                    insert: Insert::Line {
                        at: None,
                        column: parsed.column,
                        eol: String::new(),
                        lead: String::new(),
                    },
                });
            }
        } else if let Some(entry) = entries.last_mut() {
            let column = match &entry.insert {
                Insert::Line { column, .. } => Some(*column),
                Insert::Flow { .. } => None,
            };
            if let (Some(column), Some(parsed)) = (column, parsed)
                && indent == column
                && !parsed.dash
                && let Some(key) = &parsed.key
            {
                keys_push(entry, key.clone(), parsed.scalar(text));
            }
            entry.pinned |= line.is_pinned();
        }
        last_content = index;
    }
    if let Some(entry) = entries.last_mut() {
        finish(entry, lines, last_content, &eol_default);
    }
    Ok(entries)
}

fn keys_push(entry: &mut ImageEntry, key: String, value: Option<Scalar>) {
    entry.keys.push((key, value));
}

/// Sets where a block entry's missing keys go: after its last line.
fn finish(entry: &mut ImageEntry, lines: &[Line<'_>], last: usize, eol_default: &str) {
    if let Insert::Line { at, eol, lead, .. } = &mut entry.insert
        && at.is_none()
    {
        let line = &lines[last];
        if line.eol.is_empty() {
            *at = Some(line.start + line.text.len());
            *lead = eol_default.to_owned();
            *eol = String::new();
        } else {
            *at = Some(line.start + line.text.len() + line.eol.len());
            *eol = line.eol.to_owned();
        }
    }
}

/// `images: [{...}, {...}]` on one line.
fn flow_list(text: &str, line: &Line<'_>, value_start: usize) -> Result<Vec<ImageEntry>, String> {
    let line_end = line.start + line.text.len();
    let refuse = || {
        "the `images:` flow list must open and close on its line; write it as a block list (one `- name:` entry per image)".to_owned()
    };
    let bytes = text.as_bytes();
    let mut at = value_start + text[value_start..line_end].find('[').ok_or_else(refuse)? + 1;
    let mut entries = Vec::new();
    loop {
        while at < line_end && matches!(bytes[at], b' ' | b',') {
            at += 1;
        }
        if at >= line_end {
            return Err(refuse());
        }
        match bytes[at] {
            b']' => return Ok(entries),
            b'{' => {
                let (pairs, close) = yaml::flow_mapping(text, at, line_end).ok_or_else(refuse)?;
                entries.push(ImageEntry {
                    first: text[..line.start].matches('\n').count(),
                    keys: pairs.into_iter().map(|p| (p.key, p.value)).collect(),
                    pinned: line.is_pinned(),
                    insert: Insert::Flow { close },
                });
                at = close + 1;
            }
            _ => return Err(refuse()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::edit::testing::{image, ours, ours_digest};
    use super::*;

    fn edited(text: &str) -> (String, Edited) {
        let edited = edit(text, &image(), &ours).unwrap();
        (yaml::apply(text, &edited.splices), edited)
    }

    fn digest() -> String {
        image().digest
    }

    #[test]
    fn block_entries_keep_comments_order_and_quotes() {
        let text = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n# the app\nresources:\n  - deployment.yaml\nimages:\n  # ours\n  - name: 127.0.0.1:5000/app   # main image\n    newTag: \"v1\" # moved by deploys\n  - name: redis\n    newTag: '7'\n";
        let (out, edited) = edited(text);
        let want = text.replace(
            "    newTag: \"v1\" # moved by deploys\n",
            &format!(
                "    newTag: \"stg-b4b9fda-1654880868\" # moved by deploys\n    digest: {}\n",
                digest()
            ),
        );
        assert_eq!(out, want);
        assert_eq!(edited.occurrences.len(), 1);
        assert_eq!(edited.occurrences[0].line, 8);
        assert_eq!(edited.occurrences[0].old_tag.as_deref(), Some("v1"));
        let (again, edited) = super::tests::edited(&out);
        assert_eq!(again, out);
        assert_eq!(edited.occurrences[0].verdict, Verdict::Unchanged);
    }

    #[test]
    fn entries_matched_by_new_name_at_column_zero_with_crlf() {
        let text = "images:\r\n- name: app\r\n  newName: 127.0.0.1:5000/app\r\n  newTag: old\r\n  digest: OURS\r\nnamespace: x\r\n"
            .replace("OURS", &ours_digest());
        let (out, _) = edited(&text);
        assert_eq!(
            out,
            format!(
                "images:\r\n- name: app\r\n  newName: 127.0.0.1:5000/app\r\n  newTag: stg-b4b9fda-1654880868\r\n  digest: {}\r\nnamespace: x\r\n",
                digest()
            )
        );
    }

    #[test]
    fn flow_entries_and_flow_lists() {
        let text = "images:\n  - {name: 127.0.0.1:5000/app, newTag: v1 }\n";
        let (out, _) = edited(text);
        assert_eq!(
            out,
            format!(
                "images:\n  - {{name: 127.0.0.1:5000/app, newTag: stg-b4b9fda-1654880868, digest: {} }}\n",
                digest()
            )
        );
        let text = "images: [{name: other}, {name: \"127.0.0.1:5000/app\"}] # list\n";
        let (out, _) = edited(text);
        assert_eq!(
            out,
            format!(
                "images: [{{name: other}}, {{name: \"127.0.0.1:5000/app\", newTag: stg-b4b9fda-1654880868, digest: {}}}] # list\n",
                digest()
            )
        );
        let multi = "images: [\n  {name: app}\n]\n";
        assert!(
            edit(multi, &image(), &ours)
                .unwrap_err()
                .contains("block list")
        );
    }

    #[test]
    fn a_last_entry_without_a_final_newline() {
        let text = "images:\n  - name: 127.0.0.1:5000/app";
        let (out, _) = edited(text);
        assert_eq!(
            out,
            format!(
                "images:\n  - name: 127.0.0.1:5000/app\n    newTag: stg-b4b9fda-1654880868\n    digest: {}",
                digest()
            )
        );
    }

    #[test]
    fn pinned_entries_and_foreign_digests_are_kept() {
        let pinned = "images:\n  # gitops:pinned\n  - name: 127.0.0.1:5000/app\n    newTag: v1\n";
        let (out, edited) = edited(pinned);
        assert_eq!(out, pinned);
        assert_eq!(edited.occurrences[0].verdict, Verdict::Pinned);
        let pinned_inside =
            "images:\n  - name: 127.0.0.1:5000/app\n    newTag: v1 # gitops:pinned\n";
        assert_eq!(
            super::tests::edited(pinned_inside).1.occurrences[0].verdict,
            Verdict::Pinned
        );
        let foreign = format!(
            "images:\n  - name: 127.0.0.1:5000/app\n    newTag: v1\n    digest: sha256:{}\n",
            "c".repeat(64)
        );
        let (out, edited) = super::tests::edited(&foreign);
        assert_eq!(out, foreign);
        assert_eq!(edited.occurrences[0].verdict, Verdict::NotOurs);
    }

    #[test]
    fn files_without_the_image_or_without_images() {
        assert!(
            edit("images:\n  - name: other\n", &image(), &ours)
                .unwrap()
                .occurrences
                .is_empty()
        );
        assert!(
            edit("resources: [a.yaml]\n", &image(), &ours)
                .unwrap()
                .occurrences
                .is_empty()
        );
        assert!(edit("images: nope\n", &image(), &ours).is_err());
    }
}
