//! The process exit codes `cargo gitops` uses, as named constants. Which error maps to which
//! code is decided by `Error::exit_code`, not here.

/// Success, including "no environment tracks this ref".
pub const SUCCESS: u8 = 0;
/// The work failed: a registry, a build or git said no.
pub const FAILURE: u8 = 1;
/// The command line or the configuration is wrong; nothing was attempted.
pub const USAGE: u8 = 2;
