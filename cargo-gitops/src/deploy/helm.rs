//! The Helm values editor: the scalars at two configured YAML paths of a values file (by
//! default `image.tag` and `image.digest`) get the tag and the digest. Block mappings are
//! followed by indentation, the last level may be a one-line flow mapping; a missing digest key
//! is added beside the tag when both share a block mapping.

use super::edit::{Edited, Image, Occurrence, Ours, Verdict, verdict};
use super::yaml::{self, Line, Scalar, Splice};

/// Where a path's value is.
struct Found {
    /// The line of the key.
    index: usize,
    scalar: Option<Scalar>,
    /// For a flow mapping: the offset of its `}`.
    flow_close: Option<usize>,
    /// For a block key: its column.
    column: usize,
}

/// Finds `path` (dotted) in `lines`.
fn find(text: &str, lines: &[Line<'_>], path: &str) -> Option<Found> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut range = 0..lines.len();
    let mut parent_indent: Option<usize> = None;
    for (depth, segment) in segments.iter().enumerate() {
        let last = depth + 1 == segments.len();
        let mut child_indent = None;
        let mut found = None;
        for index in range.clone() {
            let line = &lines[index];
            if line.is_blank_or_comment() {
                continue;
            }
            let indent = line.indent();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            let Some(entry) = yaml::entry(line) else {
                continue;
            };
            if entry.dash {
                continue;
            }
            let column = *child_indent.get_or_insert(indent);
            if indent != column || entry.key.as_deref() != Some(segment) {
                continue;
            }
            found = Some((index, entry));
            break;
        }
        let (index, entry) = found?;
        let value = entry.value_text(text);
        if last {
            return Some(Found {
                index,
                scalar: entry.scalar(text),
                flow_close: None,
                column: entry.column,
            });
        }
        if value.starts_with('{') && depth + 2 == segments.len() {
            let line = &lines[index];
            let open = entry.value.start + text[entry.value.clone()].find('{')?;
            let (pairs, close) = yaml::flow_mapping(text, open, line.start + line.text.len())?;
            let wanted = segments[depth + 1];
            let scalar = pairs
                .into_iter()
                .find(|p| p.key == wanted)
                .and_then(|p| p.value);
            return Some(Found {
                index,
                scalar,
                flow_close: Some(close),
                column: 0,
            });
        }
        if !value.is_empty() {
            return None;
        }
        parent_indent = Some(lines[index].indent());
        range = index + 1..lines.len();
    }
    None
}

fn parent(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(parent, _)| parent)
}

/// Edits the values file `text`: `tag_path` and `digest_path` for `image`.
pub fn edit(
    text: &str,
    tag_path: &str,
    digest_path: &str,
    image: &Image,
    ours: Ours<'_>,
) -> Result<Edited, String> {
    let lines = yaml::lines(text);
    let tag = find(text, &lines, tag_path)
        .filter(|f| f.scalar.is_some())
        .ok_or_else(|| {
            format!("has no scalar at `{tag_path}` for the image's tag; add it, or set `helm-tag`")
        })?;
    let tag_scalar = tag.scalar.clone().expect("filtered above");
    let digest = find(text, &lines, digest_path);
    let digest_scalar = digest.as_ref().and_then(|d| d.scalar.clone());
    let same_parent = parent(tag_path) == parent(digest_path);
    if digest_scalar.is_none() && !same_parent {
        return Err(format!(
            "has no scalar at `{digest_path}` for the image's digest; add it (`\"\"` will do), or set `helm-digest`"
        ));
    }
    let pinned = yaml::pinned_at(&lines, tag.index)
        || digest
            .as_ref()
            .is_some_and(|d| yaml::pinned_at(&lines, d.index));
    let old_tag = Some(tag_scalar.value.clone());
    let old_digest = digest_scalar.as_ref().map(|s| s.value.clone());
    let verdict = verdict(
        image,
        pinned,
        old_tag.as_deref(),
        old_digest.as_deref(),
        ours,
    );
    let mut edited = Edited::default();
    if verdict == Verdict::Write {
        if tag_scalar.value != image.tag {
            edited.splices.push(Splice {
                range: tag_scalar.range.clone(),
                text: yaml::render(tag_scalar.style, &image.tag),
            });
        }
        match &digest_scalar {
            Some(scalar) if scalar.value == image.digest => {}
            Some(scalar) => edited.splices.push(Splice {
                range: scalar.range.clone(),
                text: yaml::render(scalar.style, &image.digest),
            }),
            None => {
                let key = digest_path.rsplit('.').next().unwrap_or(digest_path);
                let value = yaml::render(tag_scalar.style, &image.digest);
                edited.splices.push(match tag.flow_close {
                    Some(close) => {
                        let at = yaml::before_blanks(text, close);
                        Splice {
                            range: at..at,
                            text: format!(", {key}: {value}"),
                        }
                    }
                    None => {
                        let line = &lines[tag.index];
                        let (at, text) = if line.eol.is_empty() {
                            (
                                line.start + line.text.len(),
                                format!(
                                    "{}{}{key}: {value}",
                                    yaml::dominant_eol(text),
                                    " ".repeat(tag.column)
                                ),
                            )
                        } else {
                            (
                                line.start + line.text.len() + line.eol.len(),
                                format!("{}{key}: {value}{}", " ".repeat(tag.column), line.eol),
                            )
                        };
                        Splice {
                            range: at..at,
                            text,
                        }
                    }
                });
            }
        }
    }
    edited.occurrences.push(Occurrence {
        line: tag.index + 1,
        kind: "helm values",
        old_tag,
        old_digest,
        verdict,
    });
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::super::edit::testing::{image, ours};
    use super::*;

    fn edited(text: &str) -> (String, Edited) {
        let edited = edit(text, "image.tag", "image.digest", &image(), &ours).unwrap();
        (yaml::apply(text, &edited.splices), edited)
    }

    #[test]
    fn nested_block_values_keep_comments_and_quotes() {
        let text = "# values\nreplicas: 2\nimage:\n  repository: 127.0.0.1:5000/app # where\n  # the tag\n  tag: \"v1\"   # set by the pipeline\n  digest: ''\nother:\n  tag: keep\n";
        let (out, edited) = edited(text);
        let want = format!(
            "# values\nreplicas: 2\nimage:\n  repository: 127.0.0.1:5000/app # where\n  # the tag\n  tag: \"stg-b4b9fda-1654880868\"   # set by the pipeline\n  digest: '{}'\nother:\n  tag: keep\n",
            image().digest
        );
        assert_eq!(out, want);
        assert_eq!(edited.occurrences[0].old_tag.as_deref(), Some("v1"));
        let (again, edited) = super::tests::edited(&out);
        assert_eq!(again, out);
        assert_eq!(edited.occurrences[0].verdict, Verdict::Unchanged);
    }

    #[test]
    fn a_missing_digest_is_added_beside_the_tag_even_at_the_end_without_newline() {
        let text = "image:\r\n    tag: v1\r\n    pullPolicy: Always";
        let (out, _) = edited(text);
        assert_eq!(
            out,
            format!(
                "image:\r\n    tag: stg-b4b9fda-1654880868\r\n    digest: {}\r\n    pullPolicy: Always",
                image().digest
            )
        );
        let text = "image:\n  tag: v1";
        let (out, _) = edited(text);
        assert_eq!(
            out,
            format!(
                "image:\n  tag: stg-b4b9fda-1654880868\n  digest: {}",
                image().digest
            )
        );
    }

    #[test]
    fn flow_mappings_and_deeper_keys_of_the_same_name() {
        let text = "sidecar:\n  image:\n    tag: keep\nimage: {repository: app, tag: v1}\n";
        let (out, _) = edited(text);
        assert_eq!(
            out,
            format!(
                "sidecar:\n  image:\n    tag: keep\nimage: {{repository: app, tag: stg-b4b9fda-1654880868, digest: {}}}\n",
                image().digest
            )
        );
    }

    #[test]
    fn pinned_values_and_missing_paths() {
        let text = "image:\n  tag: v1 # gitops:pinned\n";
        let (out, edited) = edited(text);
        assert_eq!(out, text);
        assert_eq!(edited.occurrences[0].verdict, Verdict::Pinned);
        let err = edit(
            "image:\n  repository: x\n",
            "image.tag",
            "image.digest",
            &image(),
            &ours,
        )
        .unwrap_err();
        assert!(err.contains("image.tag"), "{err}");
    }
}
