//! How the command line writes results: the output formats, standard output that tolerates a
//! closed pipe, and whether to animate progress. What each command prints is its own file's.

use std::io::{IsTerminal, Write};
use std::path::Path;

use clap::ValueEnum;

use cargo_gitops::error::Error;

/// Output format: aligned text, one JSON object on stdout, `key=value` lines for
/// $GITHUB_OUTPUT, or a GitLab dotenv report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Github,
    /// `GITOPS_KEY=value` lines for `artifacts:reports:dotenv`; lists joined with spaces.
    Gitlab,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<(), Error> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Write {
            what: "standard output".to_owned(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// Writes a dotenv report (`--format gitlab`) to the `--dotenv` file, replaced whole, or to
/// stdout without one.
pub fn write_dotenv(pairs: &[(&str, String)], path: Option<&Path>) -> Result<(), Error> {
    let text = cargo_gitops::ci::gitlab::format_dotenv(pairs)?;
    match path {
        Some(path) => cargo_gitops::files::write_whole(path, text.as_bytes()),
        None => write_stdout(&text),
    }
}

/// Whether stderr is a terminal that should get spinners.
pub fn is_interactive(color: ColorChoice) -> bool {
    match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}
