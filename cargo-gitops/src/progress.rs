//! Progress of long steps: a spinner with elapsed time on a terminal, `::group::` blocks in
//! GitHub Actions, one plain line per step otherwise, nothing with `--quiet`. Always on stderr,
//! so stdout stays machine-readable.
//!
//! Where output is piped (plain lines, GitHub Actions), a step that runs long says so at a
//! fixed interval, a minute unless `GITOPS_PROGRESS_INTERVAL` (seconds) says otherwise, and
//! the programs a step runs have their output copied to stderr as it comes: a CI log that
//! stays silent for minutes cannot be told apart from a hung job.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::Error;
use crate::process::{Command, Output};

/// The variable that sets how often a running step reports, in seconds.
pub const INTERVAL_VARIABLE: &str = "GITOPS_PROGRESS_INTERVAL";

/// How often a running step reports when output is piped: often enough that CI logs (and
/// runners that flag silent jobs) see activity, rarely enough to stay readable.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Spinner,
    Actions,
    Plain,
    Quiet,
}

pub struct Progress {
    mode: Mode,
    interval: Duration,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            interval: DEFAULT_INTERVAL,
        }
    }

    /// A `mode` progress reporting at the interval `GITOPS_PROGRESS_INTERVAL` gives, if set.
    pub fn from_env(mode: Mode) -> Result<Progress, Error> {
        let mut progress = Progress::new(mode);
        if let Some(text) = std::env::var_os(INTERVAL_VARIABLE) {
            progress.interval = parse_interval(&text.to_string_lossy())?;
        }
        Ok(progress)
    }

    /// Runs a step's program: where output is piped, its lines go to stderr as they come.
    pub fn run(&self, command: &Command) -> Result<Output, Error> {
        match self.mode {
            Mode::Plain | Mode::Actions => command.run_echoing(),
            Mode::Spinner | Mode::Quiet => command.run(),
        }
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
        let _step = crate::deadline::enter(title);
        match self.mode {
            Mode::Quiet => work(),
            Mode::Plain => {
                eprintln!("{title} ...");
                let result = self.ticking(title, started, work);
                if result.is_ok() {
                    eprintln!("{title}: done in {}", seconds(started.elapsed()));
                }
                result
            }
            Mode::Actions => {
                eprintln!("::group::{title}");
                let result = self.ticking(title, started, work);
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

impl Progress {
    /// Runs `work` while a ticker thread prints `TITLE: still running, 3m 0s elapsed` once per
    /// interval; the ticker ends with the step, whether it succeeded, failed or panicked.
    fn ticking<T>(
        &self,
        title: &str,
        started: Instant,
        work: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let (stop, stopped) = mpsc::channel::<()>();
        let interval = self.interval;
        std::thread::scope(|scope| {
            scope.spawn(move || {
                // A message or a dropped sender both mean the step is over.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    eprintln!(
                        "{title}: still running, {} elapsed",
                        minutes(started.elapsed())
                    );
                }
            });
            // Dropped on return or unwind, so the scope never waits on a ticker forever.
            let _stop = stop;
            work()
        })
    }
}

/// `GITOPS_PROGRESS_INTERVAL`: seconds, at least 0.1 (fractions are for tests).
fn parse_interval(text: &str) -> Result<Duration, Error> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.1 && *s <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::usage(format!(
                "{INTERVAL_VARIABLE}=`{}` is not a number of seconds between 0.1 and 86400; unset it (a minute) or write e.g. 30",
                crate::error::quote_external(text)
            ))
        })
}

/// Elapsed time for a still-running line: `45s`, `3m 0s`, `1h 2m`.
fn minutes(duration: Duration) -> String {
    let total = duration.as_secs();
    match total {
        0..60 => format!("{total}s"),
        60..3600 => format!("{}m {}s", total / 60, total % 60),
        _ => format!("{}h {}m", total / 3600, total % 3600 / 60),
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_time_reads_in_minutes() {
        assert_eq!(minutes(Duration::from_secs(7)), "7s");
        assert_eq!(minutes(Duration::from_secs(180)), "3m 0s");
        assert_eq!(minutes(Duration::from_secs(425)), "7m 5s");
        assert_eq!(minutes(Duration::from_secs(3720)), "1h 2m");
    }

    #[test]
    fn the_interval_is_seconds_within_bounds() {
        assert_eq!(parse_interval("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_interval("0.5").unwrap(), Duration::from_millis(500));
        for bad in ["", "0", "-1", "abc", "NaN", "inf", "1e9"] {
            let err = parse_interval(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("GITOPS_PROGRESS_INTERVAL=`"),
                "{err}"
            );
            assert_eq!(err.exit_code(), crate::exit_codes::USAGE, "{bad}");
        }
    }

    #[test]
    fn the_ticker_stops_with_the_step() {
        let progress = Progress {
            mode: Mode::Plain,
            interval: Duration::from_millis(20),
        };
        let started = Instant::now();
        let value = progress
            .ticking("wait", started, || {
                std::thread::sleep(Duration::from_millis(70));
                Ok(5)
            })
            .unwrap();
        assert_eq!(value, 5);
        // ticking returns only once its ticker thread has ended (a scoped thread).
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
