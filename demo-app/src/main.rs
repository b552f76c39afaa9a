//! Entry point: reads the configuration, runs the server and turns failures into one
//! stderr line and an exit code (2: bad setting, 1: runtime failure).

use std::process::ExitCode;

use demo_app::{Config, Error};

fn main() -> ExitCode {
    match Config::from_env()
        .map_err(Error::from)
        .and_then(demo_app::run)
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo-app: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
