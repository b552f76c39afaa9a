//! The Flux setter-marker editor: values marked `# {"$imagepolicy": "NAMESPACE:NAME"}` (the
//! whole reference), `...:NAME:tag`, `...:NAME:name` and `...:NAME:digest`, as Flux's image
//! automation marks them, for the policy that stands for this image and environment. The whole
//! reference becomes `name:tag@digest`; a `:tag` value carries `@digest` too unless the file
//! has a `:digest` marker of the same policy. Every marker of the policy in a file is kept when
//! one of them is pinned or names a digest this tool did not write.

use std::sync::LazyLock;

use regex::Regex;

use super::edit::{Edited, Image, Occurrence, Ours, Verdict, verdict};
use super::yaml::{self, Scalar, Splice};

static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\{\s*"\$imagepolicy"\s*:\s*"([A-Za-z0-9.-]+:[A-Za-z0-9.-]+)(?::(tag|name|digest))?"\s*\}"#)
        .expect("valid regex")
});

/// Whether `text` has any setter marker, so that files without one are not read further.
pub fn has_markers(text: &str) -> bool {
    text.contains("$imagepolicy")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Whole,
    Tag,
    Name,
    Digest,
}

struct Marked {
    index: usize,
    field: Field,
    scalar: Scalar,
    pinned: bool,
}

/// Splits `name[:tag][@digest]` into its parts.
fn split_reference(reference: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    let slash = rest.rfind('/').map_or(0, |at| at + 1);
    match rest[slash..].rfind(':') {
        Some(colon) => (
            &rest[..slash + colon],
            Some(&rest[slash + colon + 1..]),
            digest,
        ),
        None => (rest, None, digest),
    }
}

/// Edits the markers of `policy` (`NAMESPACE:NAME`) in `text` for `image`.
pub fn edit(text: &str, policy: &str, image: &Image, ours: Ours<'_>) -> Result<Edited, String> {
    let lines = yaml::lines(text);
    let mut marked = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(comment) = line.comment() else {
            continue;
        };
        let Some(captures) = MARKER.captures(comment) else {
            continue;
        };
        if &captures[1] != policy {
            continue;
        }
        let field = match captures.get(2).map(|m| m.as_str()) {
            None => Field::Whole,
            Some("tag") => Field::Tag,
            Some("name") => Field::Name,
            _ => Field::Digest,
        };
        let scalar = yaml::entry(line)
            .and_then(|entry| entry.scalar(text))
            .ok_or_else(|| {
                format!(
                    "line {}: the marker of policy {policy} is not beside a value; put it after `key: value` on the value's line",
                    index + 1
                )
            })?;
        marked.push(Marked {
            index,
            field,
            scalar,
            pinned: yaml::pinned_at(&lines, index),
        });
    }
    if marked.is_empty() {
        return Ok(Edited::default());
    }
    let has_digest_marker = marked.iter().any(|m| m.field == Field::Digest);
    // What the markers say now, together.
    let mut old_tag = None;
    let mut old_digest = None;
    for m in &marked {
        match m.field {
            Field::Whole | Field::Tag => {
                let value = if m.field == Field::Whole {
                    m.scalar.value.clone()
                } else {
                    format!("x:{}", m.scalar.value)
                };
                let (_, tag, digest) = split_reference(&value);
                old_tag = old_tag.or(tag.map(str::to_owned));
                old_digest = old_digest.or(digest.map(str::to_owned));
            }
            Field::Digest => old_digest = Some(m.scalar.value.clone()),
            Field::Name => {}
        }
    }
    let wanted = |field: Field| match field {
        Field::Whole => image.reference(),
        Field::Tag if has_digest_marker => image.tag.clone(),
        Field::Tag => format!("{}@{}", image.tag, image.digest),
        Field::Name => image.name.clone(),
        Field::Digest => image.digest.clone(),
    };
    let all_right = marked.iter().all(|m| m.scalar.value == wanted(m.field));
    let pinned = marked.iter().any(|m| m.pinned);
    let verdict = if all_right {
        Verdict::Unchanged
    } else {
        match verdict(
            image,
            pinned,
            old_tag.as_deref(),
            old_digest.as_deref(),
            ours,
        ) {
            // The tag and digest may be right while the name is not.
            Verdict::Unchanged => Verdict::Write,
            other => other,
        }
    };
    let mut edited = Edited::default();
    if verdict == Verdict::Write {
        for m in &marked {
            let value = wanted(m.field);
            if m.scalar.value != value {
                edited.splices.push(Splice {
                    range: m.scalar.range.clone(),
                    text: yaml::render(m.scalar.style, &value),
                });
            }
        }
    }
    edited.occurrences.push(Occurrence {
        line: marked[0].index + 1,
        kind: "flux marker",
        old_tag,
        old_digest,
        verdict,
    });
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::super::edit::testing::{image, ours, ours_digest};
    use super::*;

    const POLICY: &str = "flux-system:app-staging";

    fn edited(text: &str) -> (String, Edited) {
        let edited = edit(text, POLICY, &image(), &ours).unwrap();
        (yaml::apply(text, &edited.splices), edited)
    }

    #[test]
    fn the_whole_reference_gets_tag_and_digest_and_nothing_else_moves() {
        let text = "spec:\n  containers:\n    - name: app\n      image: 127.0.0.1:5000/app:old # {\"$imagepolicy\": \"flux-system:app-staging\"}\n    - name: other\n      image: other:1 # {\"$imagepolicy\": \"flux-system:other\"}\n";
        let (out, edited) = edited(text);
        let want = text.replace(
            "127.0.0.1:5000/app:old",
            &format!(
                "127.0.0.1:5000/app:stg-b4b9fda-1654880868@{}",
                image().digest
            ),
        );
        assert_eq!(out, want);
        assert_eq!(edited.occurrences[0].old_tag.as_deref(), Some("old"));
        assert_eq!(edited.occurrences[0].verdict, Verdict::Write);
    }

    #[test]
    fn tag_name_and_digest_markers_in_quotes_and_crlf() {
        let text = "image:\r\n  repository: \"old/app\" # {\"$imagepolicy\": \"flux-system:app-staging:name\"}\r\n  tag: 'v1' # {\"$imagepolicy\": \"flux-system:app-staging:tag\"}\r\n  digest: \"\" # {\"$imagepolicy\": \"flux-system:app-staging:digest\"}\r\n";
        let (out, _) = edited(text);
        let want = format!(
            "image:\r\n  repository: \"127.0.0.1:5000/app\" # {{\"$imagepolicy\": \"flux-system:app-staging:name\"}}\r\n  tag: 'stg-b4b9fda-1654880868' # {{\"$imagepolicy\": \"flux-system:app-staging:tag\"}}\r\n  digest: \"{}\" # {{\"$imagepolicy\": \"flux-system:app-staging:digest\"}}\r\n",
            image().digest
        );
        assert_eq!(out, want);
        let (again, edited) = edited_again(&out);
        assert_eq!(again, out);
        assert_eq!(edited.occurrences[0].verdict, Verdict::Unchanged);
    }

    fn edited_again(text: &str) -> (String, Edited) {
        edited(text)
    }

    #[test]
    fn a_tag_marker_alone_carries_the_digest() {
        let text = "tag: v1 # {\"$imagepolicy\": \"flux-system:app-staging:tag\"}\n";
        let (out, _) = edited(text);
        assert_eq!(
            out,
            format!(
                "tag: stg-b4b9fda-1654880868@{} # {{\"$imagepolicy\": \"flux-system:app-staging:tag\"}}\n",
                image().digest
            )
        );
    }

    #[test]
    fn pinned_and_foreign_digests_are_kept() {
        let pinned = "# gitops:pinned\nimage: 127.0.0.1:5000/app:old # {\"$imagepolicy\": \"flux-system:app-staging\"}\n";
        let (out, edited) = edited(pinned);
        assert_eq!(out, pinned);
        assert_eq!(edited.occurrences[0].verdict, Verdict::Pinned);

        let foreign = format!(
            "image: 127.0.0.1:5000/app:old@sha256:{} # {{\"$imagepolicy\": \"flux-system:app-staging\"}}\n",
            "b".repeat(64)
        );
        let (out, edited) = super::tests::edited(&foreign);
        assert_eq!(out, foreign);
        assert_eq!(edited.occurrences[0].verdict, Verdict::NotOurs);

        let ours_written = format!(
            "image: 127.0.0.1:5000/app:old@{} # {{\"$imagepolicy\": \"flux-system:app-staging\"}}\n",
            ours_digest()
        );
        let (out, _) = super::tests::edited(&ours_written);
        assert!(out.contains(&image().digest));
    }

    #[test]
    fn references_split_at_the_last_colon_after_the_last_slash() {
        assert_eq!(
            split_reference("127.0.0.1:5000/app:v1@sha256:ab"),
            ("127.0.0.1:5000/app", Some("v1"), Some("sha256:ab"))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app", None, None)
        );
        assert_eq!(
            split_reference("app@sha256:ab"),
            ("app", None, Some("sha256:ab"))
        );
    }

    #[test]
    fn a_marker_without_a_value_is_refused() {
        let text = "# {\"$imagepolicy\": \"flux-system:app-staging\"}\n";
        assert!(
            edit(text, POLICY, &image(), &ours)
                .unwrap_err()
                .contains("line 1")
        );
    }
}
