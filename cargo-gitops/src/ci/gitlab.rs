//! GitLab CI: how a job hands its results to later jobs, as the dotenv file that
//! `artifacts:reports:dotenv` reads. Its variables are read with every other CI's in `detect`;
//! the pipeline `init-workflows --ci gitlab` writes is `gitlab_pipeline`'s.

use crate::error::Error;

/// The most a dotenv report may hold; GitLab refuses larger ones.
const MAX_DOTENV_BYTES: usize = 5 * 1024;

/// Formats `pairs` as a dotenv report: one `GITOPS_<KEY>=value` line each, keys upper-cased.
/// GitLab takes no quoting, no empty lines and no line breaks in values, so lists must be
/// joined by the caller (tags are joined with spaces, which no tag contains), and a value with
/// a line break is refused rather than cut.
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
            ("tags", "a b".to_owned()),
            ("image", String::new()),
        ])
        .unwrap();
        assert_eq!(
            text,
            "GITOPS_ENVIRONMENT=staging\nGITOPS_LOOKUP_TAG=commit-x\nGITOPS_TAGS=a b\nGITOPS_IMAGE=\n"
        );
        assert!(format_dotenv(&[("tags", "a\nb".to_owned())]).is_err());
        assert!(format_dotenv(&[("x", "y".repeat(6000))]).is_err());
    }
}
