//! The `cargo-gitops` binary: parses the command line, runs it, and renders any error once,
//! on one line with its causes.

mod cli;

use std::error::Error as _;
use std::process::ExitCode;

use cargo_gitops::ci::github::Actions;
use clap::Parser;
use cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::args_from_cargo(std::env::args_os()));
    let result = cargo_gitops::process::end_children_on_signal().and_then(|()| cli::run(cli));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let mut message = err.to_string();
            let mut cause = err.source();
            while let Some(inner) = cause {
                message.push_str(": ");
                message.push_str(&inner.to_string());
                cause = inner.source();
            }
            if Actions::from_env().active {
                println!(
                    "::error::{}",
                    message
                        .replace('%', "%25")
                        .replace('\r', "%0D")
                        .replace('\n', "%0A")
                );
            }
            eprintln!("error: {message}");
            ExitCode::from(err.exit_code())
        }
    }
}
