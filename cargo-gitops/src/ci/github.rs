//! The GitHub Actions runner (and Forgejo's and Gitea's, which speak the same protocol): the
//! files and workflow commands through which a step reports back (`$GITHUB_OUTPUT`, the step
//! summary, error annotations). Its variables are read with every other CI's in `detect`;
//! generating workflow files is `workflows`' job.

use std::io::Write;
use std::path::Path;

use crate::error::Error;

/// Formats step outputs as `$GITHUB_OUTPUT` expects: `key=value`, or a heredoc for values with
/// line breaks, with a delimiter that does not occur in the value.
pub fn format_outputs(pairs: &[(&str, String)]) -> String {
    let mut text = String::new();
    for (key, value) in pairs {
        if value.contains('\n') || value.contains('\r') {
            let mut delimiter = String::from("GITOPS_EOF");
            while value.contains(&delimiter) {
                delimiter.push('_');
            }
            text.push_str(&format!("{key}<<{delimiter}\n{value}\n{delimiter}\n"));
        } else {
            text.push_str(&format!("{key}={value}\n"));
        }
    }
    text
}

/// A two-column Markdown table for `$GITHUB_STEP_SUMMARY`.
pub fn summary_table(rows: &[(&str, String)]) -> String {
    let mut text = String::from("### cargo gitops build\n\n| | |\n|---|---|\n");
    for (key, value) in rows {
        let value = if value.is_empty() {
            "–".to_owned()
        } else {
            code_span(value)
        };
        text.push_str(&format!("| {key} | {value} |\n"));
    }
    text.push('\n');
    text
}

/// `value` as inline code in a table cell: HTML and Markdown in it stay text. The fence is one
/// backtick longer than any run inside, line breaks become spaces and `|` is escaped.
fn code_span(value: &str) -> String {
    let flat: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let longest = flat.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A space on each side, which Markdown drops, only where a backtick would touch the fence.
    if flat.starts_with('`') || flat.ends_with('`') {
        format!("{fence} {flat} {fence}")
    } else {
        format!("{fence}{flat}{fence}")
    }
}

/// An error as a workflow command, so that the run's page shows it: one line, with `%`, CR
/// and LF escaped as the runner expects.
pub fn error_command(message: &str) -> String {
    format!(
        "::error::{}",
        message
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    )
}

/// Appends to a runner file (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`), creating it if needed.
pub fn append(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|source| Error::Write {
            what: path.display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_cells_keep_hostile_text_as_code() {
        let table = summary_table(&[("ref", "refs/heads/a`<img src=x>`|b\n# h".to_owned())]);
        assert!(
            table.contains("| ref | ``refs/heads/a`<img src=x>`\\|b # h`` |"),
            "{table}"
        );
        let table = summary_table(&[("ref", "`x`".to_owned())]);
        assert!(table.contains("| ref | `` `x` `` |"), "{table}");
        assert_eq!(table.lines().count(), 6, "{table}");
    }

    #[test]
    fn multi_line_values_use_a_heredoc_with_an_unused_delimiter() {
        let text = format_outputs(&[
            ("environment", "staging".to_owned()),
            ("tags", "a\nGITOPS_EOF".to_owned()),
        ]);
        assert_eq!(
            text,
            "environment=staging\ntags<<GITOPS_EOF_\na\nGITOPS_EOF\nGITOPS_EOF_\n"
        );
    }
}
