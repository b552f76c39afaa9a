//! The `cargo-gitops` binary: parses the command line, runs it, and renders any error once,
//! on one line with its causes.

mod cli;

use std::error::Error as _;
use std::process::ExitCode;

use cargo_gitops::ci::{Ci, Runner, azure, github};
use clap::Parser;
use cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::args_from_cargo(std::env::args_os()));
    match cli::run(cli, expire) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            report(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Prints `err` on one line with its causes, where the CI shows errors too.
fn report(err: &cargo_gitops::Error) {
    let mut message = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    // Once more as the CI's own annotation, on one line, where the CI has one.
    match Runner::from_env().ci {
        Some(ci) if ci.is_actions() => println!("{}", github::error_command(&message)),
        Some(Ci::Azure) => println!("{}", azure::error_command(&message)),
        _ => {}
    }
    eprintln!("error: {message}");
}

/// A run stopped at its deadline (from the watchdog's thread): reported, then the process
/// exits, whatever the other threads are doing.
fn expire(err: cargo_gitops::Error) {
    report(&err);
    std::process::exit(i32::from(err.exit_code()));
}
