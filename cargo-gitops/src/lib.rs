//! cargo-gitops: GitOps continuous integration for any repository. A git ref becomes an
//! environment, the environment gives image tags, and the tags are made to exist in a registry
//! by building once per commit or by retagging. `main.rs` only parses and renders errors.

pub mod builder;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod deployment;
pub mod environment;
pub mod error;
pub mod exit_codes;
pub mod files;
pub mod flux;
pub mod git;
pub mod github;
pub mod history;
pub mod image;
pub mod native;
pub mod pipeline;
pub mod process;
pub mod progress;
pub mod registry;
pub mod release;
pub mod retagger;
pub mod tags;
pub mod workflows;

pub use error::Error;
