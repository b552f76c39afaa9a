//! How the command line writes results: the output formats, standard output that tolerates a
//! closed pipe, and whether to animate progress. What each command prints is its own file's.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;

use cargo_gitops::error::Error;

/// Output format: aligned text, one JSON object on stdout, or `key=value` lines for
/// $GITHUB_OUTPUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Github,
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
