//! Progress of long steps: a spinner with elapsed time on a terminal, `::group::` blocks in
//! GitHub Actions, one plain line per step otherwise, nothing with `--quiet`. Always on stderr,
//! so stdout stays machine-readable.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Spinner,
    Actions,
    Plain,
    Quiet,
}

pub struct Progress {
    mode: Mode,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress { mode }
    }

    /// A line of information (not a step).
    pub fn note(&self, text: &str) {
        if self.mode != Mode::Quiet {
            eprintln!("{text}");
        }
    }

    /// Runs one step, showing it while it runs and how long it took.
    pub fn step<T>(
        &self,
        title: &str,
        work: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        match self.mode {
            Mode::Quiet => work(),
            Mode::Plain => {
                eprintln!("{title} ...");
                let result = work();
                if result.is_ok() {
                    eprintln!("{title}: done in {}", seconds(started.elapsed()));
                }
                result
            }
            Mode::Actions => {
                eprintln!("::group::{title}");
                let result = work();
                eprintln!(
                    "{title}: {} in {}",
                    if result.is_ok() { "done" } else { "failed" },
                    seconds(started.elapsed())
                );
                eprintln!("::endgroup::");
                result
            }
            Mode::Spinner => {
                let spinner = ProgressBar::new_spinner();
                spinner.set_style(
                    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .expect("valid template"),
                );
                spinner.set_message(title.to_owned());
                spinner.enable_steady_tick(Duration::from_millis(100));
                let result = work();
                spinner.finish_and_clear();
                let mark = if result.is_ok() { "✓" } else { "✗" };
                eprintln!("{mark} {title} ({})", seconds(started.elapsed()));
                result
            }
        }
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}
