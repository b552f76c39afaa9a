//! Process lifecycle: runtime, signal handlers, the listening socket, serving until
//! SIGTERM/SIGINT and draining, plus the errors that end the process early.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::{Config, ConfigError, app};

/// Serves [`app`] on `config`'s address until SIGTERM or SIGINT, then stops accepting,
/// lets open requests finish and returns `Ok(())`.
pub fn run(config: Config) -> Result<(), Error> {
    // One worker per CPU this process may use, so the service scales with what it is
    // given: available_parallelism honours the CPU affinity mask and a cgroup CPU quota,
    // so a container limited to one CPU gets one worker and no contention between threads.
    // Setting the count here also keeps tokio from reading TOKIO_WORKER_THREADS, which it
    // panics on when malformed.
    let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        // Timers too, not just I/O: when accept fails with EMFILE, axum waits on a timer
        // before retrying, and without a timer driver that wait would panic.
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), Error> {
    // Handlers go in before the port opens: whoever sees the port answer may signal us
    // straight away, and PID 1 without a handler does not die on SIGTERM at all, which
    // leaves `docker stop` waiting for its SIGKILL.
    let sigterm = signal(SignalKind::terminate()).map_err(|err| Error::Signal("SIGTERM", err))?;
    let sigint = signal(SignalKind::interrupt()).map_err(|err| Error::Signal("SIGINT", err))?;

    let addr = config.addr();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    // With PORT=0 only the socket knows which port was picked.
    let local = listener.local_addr().unwrap_or(addr);
    eprintln!("demo-app listening on http://{local}");

    let listener = listener.tap_io(|tcp| {
        // Responses are single small writes; Nagle's algorithm would only hold them back
        // waiting for an ACK. Failing to set it costs latency, not correctness.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app())
        .with_graceful_shutdown(shutdown_requested(sigterm, sigint))
        .await
        .map_err(Error::Serve)
}

async fn shutdown_requested(mut sigterm: Signal, mut sigint: Signal) {
    let name = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
    };
    eprintln!("demo-app: received {name}, finishing open requests");
}

/// Why the process stopped early. Each displays as one line that says what to do.
#[derive(Debug)]
pub enum Error {
    Config(ConfigError),
    Runtime(io::Error),
    Signal(&'static str, io::Error),
    Listen { addr: SocketAddr, source: io::Error },
    Serve(io::Error),
}

impl Error {
    /// 2 for a bad setting (fix the environment), 1 for anything that failed at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
            _ => 1,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Self::Config(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(err) => err.fmt(f),
            Self::Runtime(err) => write!(f, "cannot start the async runtime: {}", describe(err)),
            Self::Signal(name, err) => {
                write!(f, "cannot install a {name} handler: {}", describe(err))
            }
            Self::Listen { addr, source } => {
                let hint = listen_hint(addr, source);
                write!(f, "cannot listen on {addr}: {} ({hint})", describe(source))
            }
            Self::Serve(err) => write!(f, "server stopped: {}", describe(err)),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(err) => Some(err),
            Self::Runtime(err) | Self::Signal(_, err) | Self::Serve(err) => Some(err),
            Self::Listen { source, .. } => Some(source),
        }
    }
}

fn listen_hint(addr: &SocketAddr, err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::AddrInUse => "set PORT to a free port",
        io::ErrorKind::AddrNotAvailable => "set HOST to an address of this machine, or 0.0.0.0",
        io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            "ports below 1024 need privileges; set PORT to 1024 or above"
        }
        _ => "check HOST and PORT",
    }
}

/// The OS's wording, lowercased and without the "(os error N)" suffix that means nothing
/// to whoever reads the log.
fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_in_use_names_the_address_and_the_fix() {
        let err = Error::Listen {
            addr: "0.0.0.0:8080".parse().unwrap(),
            source: io::Error::from_raw_os_error(libc::EADDRINUSE),
        };
        assert_eq!(
            err.to_string(),
            "cannot listen on 0.0.0.0:8080: address already in use (set PORT to a free port)"
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn privileged_ports_get_their_own_hint() {
        let err = Error::Listen {
            addr: "0.0.0.0:80".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert!(
            err.to_string().contains("set PORT to 1024 or above"),
            "{err}"
        );
    }

    #[test]
    fn bad_settings_exit_with_2() {
        let err = Error::from(ConfigError::Port("abc".into()));
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().starts_with("PORT=\"abc\""), "{err}");
    }

    #[test]
    fn describe_drops_the_os_error_number() {
        let err = io::Error::from_raw_os_error(libc::EADDRINUSE);
        assert_eq!(describe(&err), "address already in use");
        assert_eq!(describe(&io::Error::other("Boom (x)")), "boom (x)");
    }
}
