//! The grammar every configured value must match before a generator puts it into a pipeline.
//!
//! A generated workflow is YAML read by GitHub, which evaluates `${{ }}` wherever it appears,
//! and parts of it are shell. So each value from the configuration is either checked here
//! against the narrowest grammar that fits it (a secret name, a commit sha, an AWS role ARN),
//! or written as a quoted scalar and handed to shell only through `env:`. A value that fails
//! is refused with one line that names its configuration key; nothing is written.

use std::sync::LazyLock;

use regex::Regex;

use crate::error::Error;

/// The refusal of `value` at configuration key `key`: one line, the value escaped so that a
/// newline or a control character in it cannot break the line.
pub fn refuse(key: &str, value: &str, expected: &str) -> Error {
    Error::usage(format!(
        "configuration key `{key}`: `{}` is not {expected}",
        shown(value)
    ))
}

/// A value as it may be printed on one line: control characters escaped, long values cut.
pub fn shown(value: &str) -> String {
    let escaped: String = value
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_debug().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if escaped.chars().count() > 120 {
        let cut: String = escaped.chars().take(117).collect();
        format!("{cut}...")
    } else {
        escaped
    }
}

/// Text for a YAML comment: one line, control characters escaped.
pub fn comment(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_debug().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn matches(re: &'static LazyLock<Regex>, value: &str) -> bool {
    re.is_match(value)
}

macro_rules! grammar {
    ($name:ident, $re:literal) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(concat!("^(?:", $re, ")$")).expect("a valid grammar"));
    };
}

grammar!(SHA, "[0-9a-f]{40}");
grammar!(SHA256, "[0-9a-f]{64}");
// OWNER/REPO, then an optional path to an action inside the repository.
grammar!(
    ACTION,
    "[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}(?:/[A-Za-z0-9._-]{1,100})*"
);
grammar!(PIN_VERSION, "[A-Za-z0-9][A-Za-z0-9._+-]{0,63}");
// Cargo's own rule for package names, in ASCII (crates.io takes no other).
grammar!(PACKAGE, "[A-Za-z_][A-Za-z0-9_-]{0,63}");
grammar!(RUNNER_LABEL, "[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
grammar!(ENVIRONMENT, "[A-Za-z0-9_-]{1,255}");
// GitHub secret names: letters, digits and `_`, not starting with a digit.
grammar!(SECRET, "[A-Za-z_][A-Za-z0-9_]{0,254}");
// A registry host: DNS labels, `localhost`, or a bracketed IPv6 address, with a port.
grammar!(
    HOST,
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:]{2,39}\])(?::[0-9]{1,5})?"
);
// The repository path of an image reference (OCI distribution spec, lowercase).
grammar!(
    IMAGE_PATH,
    "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
);
grammar!(
    AWS_ROLE,
    r"arn:aws(?:-cn|-us-gov)?:iam::[0-9]{12}:role/(?:[A-Za-z0-9+=,.@_-]{1,64}/)*[A-Za-z0-9+=,.@_-]{1,64}"
);
grammar!(AWS_REGION, "[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}");
grammar!(
    GCP_PROVIDER,
    "projects/[0-9]{1,20}/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}"
);
grammar!(
    GCP_SERVICE_ACCOUNT,
    r"[a-z][a-z0-9-]{4,61}[a-z0-9]@[a-z][a-z0-9-]{4,61}[a-z0-9]\.iam\.gserviceaccount\.com|[0-9]{1,20}-compute@developer\.gserviceaccount\.com"
);
grammar!(
    SEMVER,
    r"(?:0|[1-9][0-9]{0,8})\.(?:0|[1-9][0-9]{0,8})\.(?:0|[1-9][0-9]{0,8})(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
);
// An https URL without query, fragment, credentials or a trailing slash.
grammar!(
    HTTPS_URL,
    r"https://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%+-]+)*"
);
// A path in the repository: relative, plain characters, no `..`, not an option.
grammar!(
    REPO_PATH,
    r"[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)*/?"
);
grammar!(STEP_KEY, "[A-Za-z_][A-Za-z0-9_-]{0,99}");
// A whole value that is one of the expressions extra steps may use: values that a workflow
// author fixes (inputs, earlier steps' outputs, variables), never text an attacker writes.
grammar!(
    FIXED_EXPRESSION,
    r"\$\{\{ *(?:inputs\.[A-Za-z_][A-Za-z0-9_-]*|steps\.[A-Za-z_][A-Za-z0-9_-]*\.outputs\.[A-Za-z_][A-Za-z0-9_-]*|vars\.[A-Za-z_][A-Za-z0-9_]*) *\}\}"
);

/// Checks `value` at `key` against one of this module's grammars.
fn check(
    re: &'static LazyLock<Regex>,
    key: &str,
    value: &str,
    expected: &str,
) -> Result<(), Error> {
    if matches(re, value) {
        Ok(())
    } else {
        Err(refuse(key, value, expected))
    }
}

pub fn commit_sha(key: &str, value: &str) -> Result<(), Error> {
    check(
        &SHA,
        key,
        value,
        "a full commit sha (40 lowercase hex digits); pin actions to commits, not tags",
    )
}

pub fn sha256(key: &str, value: &str) -> Result<(), Error> {
    check(
        &SHA256,
        key,
        value,
        "a SHA-256 (64 lowercase hex digits); run `cargo gitops pins update`",
    )
}

pub fn action(key: &str, value: &str) -> Result<(), Error> {
    check(&ACTION, key, value, "an action name (OWNER/REPO[/PATH])")
}

pub fn pin_version(key: &str, value: &str) -> Result<(), Error> {
    check(
        &PIN_VERSION,
        key,
        value,
        "a release name (letters, digits, `.`, `_`, `+`, `-`, such as v4.1.0)",
    )
}

pub fn package(key: &str, value: &str) -> Result<(), Error> {
    check(
        &PACKAGE,
        key,
        value,
        "a cargo package name (ASCII letters, digits, `-` and `_`, not starting with a digit)",
    )
}

pub fn runner_label(key: &str, value: &str) -> Result<(), Error> {
    check(
        &RUNNER_LABEL,
        key,
        value,
        "a runner label (letters, digits, `.`, `_`, `-`, such as ubuntu-24.04)",
    )
}

pub fn environment(key: &str, value: &str) -> Result<(), Error> {
    check(
        &ENVIRONMENT,
        key,
        value,
        "an environment name (letters, digits, `-` and `_`)",
    )
}

pub fn secret(key: &str, value: &str) -> Result<(), Error> {
    check(
        &SECRET,
        key,
        value,
        "a secret name; GitHub secret names are letters, digits and `_`",
    )?;
    if value.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err(refuse(
            key,
            value,
            "a secret name you can create: GitHub reserves names starting with GITHUB_",
        ));
    }
    Ok(())
}

/// An image reference without tag (`ghcr.io/acme/shop`): a host and a lowercase path.
pub fn image(key: &str, value: &str) -> Result<(), Error> {
    let expected = "an image repository (HOST[:PORT]/NAME, lowercase, such as ghcr.io/owner/app)";
    let Some((host, path)) = value.split_once('/') else {
        return Err(refuse(key, value, expected));
    };
    if matches(&HOST, host) && matches(&IMAGE_PATH, path) {
        Ok(())
    } else {
        Err(refuse(key, value, expected))
    }
}

pub fn host(key: &str, value: &str) -> Result<(), Error> {
    check(
        &HOST,
        key,
        value,
        "a registry host (HOST[:PORT], lowercase)",
    )
}

pub fn aws_role(key: &str, value: &str) -> Result<(), Error> {
    check(
        &AWS_ROLE,
        key,
        value,
        "an IAM role ARN (arn:aws:iam::123456789012:role/NAME)",
    )
}

pub fn aws_region(key: &str, value: &str) -> Result<(), Error> {
    check(&AWS_REGION, key, value, "an AWS region (such as eu-west-1)")
}

pub fn gcp_provider(key: &str, value: &str) -> Result<(), Error> {
    check(
        &GCP_PROVIDER,
        key,
        value,
        "a workload identity provider (projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER)",
    )
}

pub fn gcp_service_account(key: &str, value: &str) -> Result<(), Error> {
    check(
        &GCP_SERVICE_ACCOUNT,
        key,
        value,
        "a service account email (NAME@PROJECT.iam.gserviceaccount.com)",
    )
}

pub fn semver(key: &str, value: &str) -> Result<(), Error> {
    check(
        &SEMVER,
        key,
        value,
        "an exact SemVer version (such as 0.1.0)",
    )
}

pub fn https_url(key: &str, value: &str) -> Result<(), Error> {
    check(
        &HTTPS_URL,
        key,
        value,
        "an https URL without query, credentials or trailing slash",
    )
}

/// A relative path in the repository that cannot be read as an option or leave the checkout.
pub fn repo_path(key: &str, value: &str) -> Result<(), Error> {
    let expected =
        "a plain relative path (letters, digits, `_ . / -`, not starting with `-` or `/`, no `..`)";
    if matches(&REPO_PATH, value) && !value.split('/').any(|part| part == "..") {
        Ok(())
    } else {
        Err(refuse(key, value, expected))
    }
}

/// The name of a `with:` or `env:` entry of an extra step.
pub fn step_key(key: &str, value: &str) -> Result<(), Error> {
    check(
        &STEP_KEY,
        key,
        value,
        "an input or variable name (letters, digits, `-` and `_`)",
    )
}

/// Whether `value` holds no expression, or is exactly one expression over values a workflow
/// author fixes: `${{ inputs.NAME }}`, `${{ steps.ID.outputs.NAME }}`, `${{ vars.NAME }}`.
pub fn fixed_expression_or_plain(value: &str) -> bool {
    !value.contains("${{") || matches(&FIXED_EXPRESSION, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&str, &str) -> Result<(), Error>;

    #[test]
    fn each_grammar_takes_the_plain_value_and_refuses_the_hostile_one() {
        let cases: [(Check, &str, &str); 16] = [
            (
                commit_sha,
                "3d3c42e5aac5ba805825da76410c181273ba90b1",
                "3d3c42e5aac5ba805825da76410c181273ba90b1\n",
            ),
            (action, "actions/checkout", "actions/checkout@v4 # x"),
            (pin_version, "v7.0.1", "v7\n      - run: id"),
            (package, "demo-app", "a$(id)"),
            (runner_label, "ubuntu-24.04", "ubuntu-latest\n    x: y"),
            (secret, "DOCKERHUB_TOKEN", "T }}${{ github.token"),
            (image, "ghcr.io/acme/shop", "ghcr.io\n  x: y/shop"),
            (host, "127.0.0.1:5000", "ghcr.io\n"),
            (
                aws_role,
                "arn:aws:iam::123456789012:role/ci/gitops-push",
                "arn:aws:iam::123456789012:role/x\"",
            ),
            (aws_region, "eu-west-1", "eu-west-1; id"),
            (
                gcp_provider,
                "projects/123456789/locations/global/workloadIdentityPools/github/providers/repo",
                "projects/1/locations/global/workloadIdentityPools/ab/providers/${{x}}",
            ),
            (
                gcp_service_account,
                "gitops@my-project.iam.gserviceaccount.com",
                "a@b.com",
            ),
            (semver, "1.2.3-rc.1", "1.2"),
            (
                https_url,
                "https://github.com/au2001/gitops-demo-app/releases/download",
                "http://example.com/x",
            ),
            (repo_path, "cargo-gitops", "--force"),
            (step_key, "node-version", "a: b"),
        ];
        for (check, good, bad) in cases {
            assert!(check("k", good).is_ok(), "{good}");
            let err = check("k", bad).unwrap_err().to_string();
            assert!(!err.contains('\n'), "{err}");
            assert!(err.starts_with("configuration key `k`: "), "{err}");
        }
    }

    #[test]
    fn paths_may_not_climb_out_and_secrets_may_not_be_githubs() {
        assert!(repo_path("k", "tools/../../etc").is_err());
        assert!(repo_path("k", "/abs").is_err());
        assert!(repo_path("k", "a b").is_err());
        assert!(repo_path("k", "./tools/x").is_ok());
        assert!(secret("k", "GITHUB_TOKEN").is_err());
        assert!(secret("k", "9X").is_err());
    }

    #[test]
    fn only_whole_fixed_expressions_pass() {
        assert!(fixed_expression_or_plain("plain text"));
        assert!(fixed_expression_or_plain("${{ inputs.ref }}"));
        assert!(fixed_expression_or_plain(
            "${{ steps.meta.outputs.version }}"
        ));
        assert!(!fixed_expression_or_plain(
            "${{ github.event.head_commit.message }}"
        ));
        assert!(!fixed_expression_or_plain("x ${{ inputs.ref }}"));
        assert!(!fixed_expression_or_plain(
            "${{ inputs.ref }} ${{ github.head_ref }}"
        ));
        assert!(!fixed_expression_or_plain("${{ secrets.X }}"));
    }

    #[test]
    fn shown_values_stay_on_one_line() {
        assert_eq!(shown("a\nb\u{1b}"), "a\\nb\\u{1b}");
        assert_eq!(comment("main\n  - run: id"), "main\\n  - run: id");
    }
}
