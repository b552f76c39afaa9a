//! The library's error type: one enum for every failure `cargo gitops` reports, each message
//! lowercase and ending with what to do next. Rendering (with causes) is the binary's job.

use std::path::PathBuf;

use crate::exit_codes;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or argument that cannot be used as given.
    #[error("{0}")]
    Usage(String),

    /// A configuration key with a bad value, or a manifest that is not valid TOML.
    #[error("{}{}: {}{message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Config {
        file: PathBuf,
        line: Option<usize>,
        key: String,
        message: String,
    },

    #[error("cannot read {}", path.display())]
    ReadManifest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not in a git repository; run inside one, or pass both --ref and --sha", path.display())]
    NotARepository { path: PathBuf },

    #[error("the repository has no commit yet; commit something first, or pass --sha")]
    NoCommit,

    #[error("HEAD is detached and no tag points at it; check out a branch, or pass --ref")]
    DetachedWithoutTag,

    /// A CI was detected but did not set the variable that gives the ref or the commit.
    #[error("{marker} but {missing}; pass --ref and --sha, or run inside {} job", if ci.starts_with("an ") { ci.to_string() } else { format!("a {ci}") })]
    MissingCiVariable {
        marker: String,
        missing: String,
        ci: &'static str,
    },

    #[error("cannot read the git repository")]
    Git(#[from] git2::Error),

    #[error("cannot compute the tags of environment `{environment}`")]
    Tag {
        environment: String,
        #[source]
        source: crate::tags::RenderError,
    },

    #[error("{registry}: {step} failed: {message}")]
    Registry {
        registry: String,
        step: String,
        message: String,
    },

    #[error(
        "cannot reach registry {registry} during {step}; check that it is running and reachable"
    )]
    RegistryUnreachable {
        registry: String,
        step: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error(
        "not logged in to {registry}: run `docker login {registry}` (or `podman login {registry}`), or pass --registry-user with --registry-password-stdin"
    )]
    NotLoggedIn { registry: String },

    #[error("cannot read the credentials for {registry}: {detail}")]
    CredentialHelper { registry: String, detail: String },

    #[error("`{tool}` is not installed: {hint}")]
    ToolMissing { tool: String, hint: String },

    #[error("cannot start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed with {status}: {output}")]
    CommandFailed {
        command: String,
        status: String,
        output: String,
    },

    /// A release or promotion that would be wrong as things stand; the message says why and
    /// what to do instead.
    #[error("{0}")]
    Refused(String),

    #[error(
        "git has no identity to sign the tag with: run `git config user.name \"Your Name\"` and `git config user.email you@example.com`, or set GIT_COMMITTER_NAME and GIT_COMMITTER_EMAIL"
    )]
    MissingIdentity,

    #[error(
        "no image is configured: set `registry` and `image` in gitops.toml, or in [workspace.metadata.gitops] (or a package's [package.metadata.gitops]) of Cargo.toml"
    )]
    NoImage,

    #[error("cannot read {what}")]
    Read {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// Generated files on disk that differ from what the configuration generates.
    #[error(
        "{count} generated file(s) differ from what the configuration generates; run `{fix}` and commit the result"
    )]
    Drift { count: usize, fix: String },

    #[error("cannot write {what}")]
    Write {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// `build --image-of`: the image to retag is not in the registry.
    #[error(
        "the image of commit {commit} is not in the registry (no `{lookup_tag}` tag): build that commit first, or run build without --image-of to build this one"
    )]
    ImageOfMissing { commit: String, lookup_tag: String },

    /// `affected` could not tell which services a commit changes.
    #[error("cannot tell which services changed: {message}")]
    Affected { message: String },

    /// A build tool (docker buildx, podman, cargo) failed in a way the tool can explain.
    #[error("{tool} failed: {message}")]
    Build { tool: String, message: String },

    /// A versioned tag that already names an image of another commit: it never moves.
    #[error(
        "{image} already names commit {commit}, and versioned tags never move to another commit; release this commit under a new version"
    )]
    ImmutableTag { image: String, commit: String },

    /// A signing key that is missing or cannot be used. `from` names where it was looked for
    /// (a file, an environment variable), never what it holds.
    #[error("cannot sign with the key from {from}: {message}")]
    SigningKey { from: String, message: String },

    /// The whole run took longer than its deadline (`deadline`).
    #[error(
        "the run took longer than its timeout of {limit}, during {step}; raise --timeout (or `timeout` in the configuration) if that step needs longer, or find out why it is slow"
    )]
    Timeout { limit: String, step: String },
    /// A deploy that cannot write the manifests as asked (a folder or an image they lack, a
    /// repository that cannot be cloned or refuses the push); the manifests are left as they were.
    #[error("{0}")]
    Deploy(String),
    /// Promotion gates that refused an image: one line per refused gate, saying what failed
    /// and what to do. Nothing was moved.
    #[error("the gates of `{environment}` refused {digest}, so no tag moved:\n{}", refusals.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n"))]
    GatesRefused {
        environment: String,
        digest: String,
        refusals: Vec<String>,
    },

    /// A set promotion that could not start: no tag of the set moved.
    #[error("{0}")]
    Promotion(String),

    /// A set promotion that failed while its tags moved: the tags already moved were put back
    /// (`outcome` says whether all of them could be), and `source` says what failed.
    #[error(
        "the set promotion failed at `{package}`, and {outcome}; fix the cause below and run it again"
    )]
    SetPromotion {
        package: String,
        outcome: String,
        #[source]
        source: Box<Error>,
    },

    /// A bug in cargo-gitops itself, not in what it was asked to do.
    #[error("internal error: {0}; please report it")]
    Internal(String),
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }

    /// The process exit code this error ends `cargo gitops` with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_)
            | Error::Config { .. }
            | Error::ReadManifest { .. }
            | Error::NotARepository { .. }
            | Error::NoCommit
            | Error::DetachedWithoutTag
            | Error::MissingCiVariable { .. }
            | Error::Tag { .. }
            | Error::Refused(_)
            | Error::MissingIdentity
            | Error::NoImage
            | Error::SigningKey { .. } => exit_codes::USAGE,
            // A program the run needs is missing from this machine: not a mistake in the
            // command line or the configuration, but a run that could not be done here.
            Error::ToolMissing { .. }
            | Error::Git(_)
            | Error::Write { .. }
            | Error::Read { .. }
            | Error::Registry { .. }
            | Error::RegistryUnreachable { .. }
            | Error::NotLoggedIn { .. }
            | Error::CredentialHelper { .. }
            | Error::Spawn { .. }
            | Error::CommandFailed { .. }
            | Error::Drift { .. }
            | Error::Build { .. }
            | Error::Affected { .. }
            | Error::ImageOfMissing { .. }
            | Error::ImmutableTag { .. }
            | Error::Timeout { .. }
            | Error::Deploy(_)
            | Error::GatesRefused { .. }
            | Error::Promotion(_)
            | Error::SetPromotion { .. }
            | Error::Internal(_) => exit_codes::FAILURE,
        }
    }
}

/// Text from outside (a registry's error message or header, a tool's words), made safe to
/// print inside one of this crate's messages: line breaks, tabs and every other control or
/// invisible formatting character become escapes (`\n`, `\u{1b}`), a backslash becomes `\\`,
/// and a leading `::` is broken up. The result is one line that cannot start a line of its
/// own, so it can never become a GitHub Actions workflow command (`::warning::…`,
/// `::stop-commands::…`, which the runner reads at the start of any line).
pub fn quote_external(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            // Bidirectional overrides, zero-width marks, line and paragraph separators.
            c if c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}') =>
            {
                quoted.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => quoted.push(c),
        }
    }
    let indent = quoted.len() - quoted.trim_start().len();
    if quoted[indent..].starts_with("::") {
        quoted.replace_range(indent..indent + 1, "\\u{3a}");
    }
    quoted
}

#[cfg(test)]
mod quote_external_tests {
    use super::quote_external;

    #[test]
    fn registry_text_stays_on_one_line_and_never_starts_a_command() {
        let quoted =
            quote_external("denied\n::warning title=X::y\r\n\t::stop-commands::abc\u{1b}[31m");
        assert_eq!(
            quoted,
            "denied\\n::warning title=X::y\\r\\n\\t::stop-commands::abc\\u{1b}[31m"
        );
        assert!(!quoted.contains(['\n', '\r', '\u{1b}']));
        assert_eq!(
            quote_external("  ::stop-commands::x"),
            "  \\u{3a}:stop-commands::x"
        );
        assert_eq!(quote_external("a\\b \u{202e}"), "a\\\\b \\u{202e}");
        assert_eq!(quote_external("tag is immutable"), "tag is immutable");
    }
}
