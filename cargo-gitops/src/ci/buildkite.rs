//! Buildkite: a job reports back through `buildkite-agent annotate`, whose Markdown shows on
//! the build's page. Its variables are read with every other CI's in `detect`.

use crate::error::Error;
use crate::process::{Command, on_path};

/// Annotates the build with `markdown` when the agent's program is on `PATH`; without it (a
/// job in a container without the agent) there is nowhere to annotate, and that is no error.
pub fn annotate(markdown: &str) -> Result<(), Error> {
    if !on_path("buildkite-agent") {
        return Ok(());
    }
    Command::new("buildkite-agent")
        .args([
            "annotate",
            "--style",
            "success",
            "--context",
            "cargo-gitops",
        ])
        .arg(markdown)
        .run()
        .map(|_| ())
}
