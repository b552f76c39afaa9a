//! The deadline of a whole run (`--timeout`, `timeout` in the configuration): a watchdog
//! that, once the time is up, lets a file being written finish, ends the programs the run
//! started, and stops the run with one error naming the step it was in. Each request and
//! program keeps its own limits (the transport's retry budget); this one bounds them all, so a
//! registry that answers every request slowly cannot keep a job going for hours. What the
//! steps are is `progress`'s to say; rendering the error is the binary's.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;

/// The deadline when neither `--timeout` nor `timeout` sets one: an hour is longer than any
/// build this tool runs should take (a cold Rust release build in CI takes minutes, a
/// multi-platform one tens of minutes), and still stops a stuck job hours before a CI's own
/// limit (GitHub Actions ends a job after six).
pub const DEFAULT: Duration = Duration::from_secs(60 * 60);

/// What the run is doing, for the error at the deadline.
struct State {
    started: Option<Instant>,
    limit: Option<Duration>,
    step: String,
}

static STATE: Mutex<State> = Mutex::new(State {
    started: None,
    limit: None,
    step: String::new(),
});

/// Wakes the watchdog when the limit changes.
static CHANGED: Condvar = Condvar::new();

/// Reads a duration as `--timeout` and `timeout` take it: whole seconds, or a number with
/// `s`, `m` or `h` (`90`, `90s`, `30m`, `2h`); at least one second.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        _ => 0,
    };
    let seconds = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit))
        .filter(|&seconds| seconds > 0);
    seconds.map(Duration::from_secs).ok_or_else(|| {
        format!(
            "`{}` is not a duration: give whole seconds, or a number with s, m or h (90s, 30m, 2h)",
            crate::error::quote_external(text)
        )
    })
}

/// A duration as `parse` reads it: `2h`, `30m`, `90s`.
pub fn shown(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Sets the run's deadline to `limit` after the first call (the start of the run), and starts
/// the watchdog with the first call. At the deadline the watchdog waits for a file being
/// written (`files`), ends the programs still running (`process`), and hands `on_expiry` the
/// error naming the step the run was in; `on_expiry` reports it and exits.
pub fn arm(limit: Duration, on_expiry: fn(Error)) {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    state.limit = Some(limit);
    if state.started.is_none() {
        state.started = Some(Instant::now());
        std::thread::spawn(move || watch(on_expiry));
    }
    CHANGED.notify_all();
}

/// Records that the run is now in `step`, until the returned guard is dropped (then the step
/// it was in before is back).
pub fn enter(step: &str) -> StepGuard {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let previous = std::mem::replace(&mut state.step, step.to_owned());
    StepGuard { previous }
}

/// The step a run is in, for as long as it lives.
#[must_use]
pub struct StepGuard {
    previous: String,
}

impl Drop for StepGuard {
    fn drop(&mut self) {
        let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
        state.step = std::mem::take(&mut self.previous);
    }
}

fn watch(on_expiry: fn(Error)) {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let (Some(started), Some(limit)) = (state.started, state.limit) else {
            return;
        };
        let remaining = (started + limit).saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        state = CHANGED
            .wait_timeout(state, remaining)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    let limit = state.limit.unwrap_or(DEFAULT);
    let step = match state.step.as_str() {
        "" => "the run".to_owned(),
        step => format!("`{step}`"),
    };
    drop(state);
    // Never stopped half-way through replacing a file; never leaving a program running.
    let _writes = crate::files::hold_writes();
    crate::process::end_children();
    on_expiry(Error::Timeout {
        limit: shown(limit),
        step,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print_the_same() {
        for (text, seconds) in [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200)] {
            assert_eq!(parse(text), Ok(Duration::from_secs(seconds)), "{text}");
        }
        for text in [
            "",
            "0",
            "0s",
            "1.5m",
            "10x",
            "m",
            "-5",
            "5 m",
            "99999999999999999999h",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
        for text in ["90s", "30m", "2h", "61s"] {
            assert_eq!(shown(parse(text).unwrap()), text);
        }
    }
}
