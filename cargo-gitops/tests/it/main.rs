//! The integration tests, in one binary (as ripgrep does): each module drives the real
//! `cargo-gitops` binary, or the library, against real git repositories, a real registry and
//! the real tools, through the helpers in `support`.

mod support;

mod build;
mod ci_env;
mod env;
mod flux;
mod gitlab;
mod history;
mod native;
mod registry_client;
mod release;
mod tags_prop;
mod workflows;
