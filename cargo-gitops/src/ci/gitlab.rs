//! GitLab CI: how a job hands its results to later jobs, as the dotenv file that
//! `artifacts:reports:dotenv` reads. Its variables are read with every other CI's in `detect`;
//! the pipeline `init-workflows --ci gitlab` writes is `gitlab_pipeline`'s.

use crate::error::Error;

/// The most a dotenv report may hold; GitLab refuses larger ones.
const MAX_DOTENV_BYTES: usize = 5 * 1024;

/// What a dotenv value may hold: GitLab keeps quotes as part of the value, so values are
/// written unquoted, and each must then mean itself when the report is sourced by a shell
/// (`. gitops.env`, as scripts do): no space, quote, `$`, backquote, `;`, `&`, `|`,
/// parentheses, globbing or a leading `~`.
fn is_plain(value: &str) -> bool {
    value.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'.' | b'_' | b'-' | b'/' | b':' | b'@' | b'+' | b',' | b'=' | b'%'
            )
    })
}

/// Formats `pairs` as a dotenv report: one `GITOPS_<KEY>=value` line each, keys upper-cased.
/// GitLab takes no quoting, no empty lines and no line breaks in values, so lists must be
/// joined by the caller (with commas: a space would end the assignment when the report is
/// sourced), and a value that is not plain (`is_plain`) is refused rather than altered.
pub fn format_dotenv(pairs: &[(&str, String)]) -> Result<String, Error> {
    let mut text = String::new();
    for (key, value) in pairs {
        let key = format!("GITOPS_{}", key.to_ascii_uppercase());
        debug_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if value.contains(['\n', '\r']) {
            return Err(Error::usage(format!(
                "{key} has a line break, which a GitLab dotenv report cannot carry; use --format json"
            )));
        }
        if !is_plain(value) {
            return Err(Error::usage(format!(
                "{key}=`{}` is not plain (letters, digits and `._-/:@+,=%`), and a GitLab dotenv report carries values unquoted; use --format json",
                super::grammar::shown(value)
            )));
        }
        text.push_str(&format!("{key}={value}\n"));
    }
    if text.len() > MAX_DOTENV_BYTES {
        return Err(Error::usage(format!(
            "the dotenv report is {} bytes, over GitLab's limit of {MAX_DOTENV_BYTES}; use --format json",
            text.len()
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_upper_case_and_values_single_line() {
        let text = format_dotenv(&[
            ("environment", "staging".to_owned()),
            ("lookup_tag", "commit-x".to_owned()),
            ("tags", "a,b".to_owned()),
            ("image", String::new()),
        ])
        .unwrap();
        assert_eq!(
            text,
            "GITOPS_ENVIRONMENT=staging\nGITOPS_LOOKUP_TAG=commit-x\nGITOPS_TAGS=a,b\nGITOPS_IMAGE=\n"
        );
        assert!(format_dotenv(&[("tags", "a\nb".to_owned())]).is_err());
        assert!(format_dotenv(&[("x", "y".repeat(6000))]).is_err());
    }

    #[test]
    fn values_a_shell_would_read_as_more_than_themselves_are_refused() {
        for value in [
            "refs/heads/main$(id)",
            "a b",
            "`id`",
            "x;id",
            "'q'",
            "\"q\"",
            "~/x",
            "a*",
            "a|b",
            "a&b",
            "a\\b",
        ] {
            let error = format_dotenv(&[("ref", value.to_owned())]).unwrap_err();
            assert!(error.to_string().starts_with("GITOPS_REF=`"), "{error}");
        }
        for value in [
            "refs/heads/feature/x-1.2_3",
            "sha256:0123abcdef",
            "registry.example.com:5000/team/app",
            "a,b",
            "1.0.0+build",
            "",
        ] {
            assert!(
                format_dotenv(&[("ref", value.to_owned())]).is_ok(),
                "{value}"
            );
        }
    }
}
