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

    #[error("`{command}` failed with {status}:\n{output}")]
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
        "no image is configured: set `registry` and `image` in [workspace.metadata.gitops] of Cargo.toml"
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
            | Error::ToolMissing { .. }
            | Error::Refused(_)
            | Error::MissingIdentity
            | Error::NoImage => exit_codes::USAGE,
            Error::Git(_)
            | Error::Write { .. }
            | Error::Read { .. }
            | Error::Registry { .. }
            | Error::RegistryUnreachable { .. }
            | Error::NotLoggedIn { .. }
            | Error::CredentialHelper { .. }
            | Error::Spawn { .. }
            | Error::CommandFailed { .. }
            | Error::Drift { .. } => exit_codes::FAILURE,
        }
    }
}
