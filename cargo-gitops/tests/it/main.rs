//! The integration tests, in one binary (as ripgrep does): each module drives the real
//! `cargo-gitops` binary, or the library, against real git repositories, a real registry and
//! the real tools, through the helpers in `support`.

mod support;

mod adoption;
mod affected;
mod build;
mod ci_env;
mod deploy;
mod deploy_pull_request;
mod env;
mod flux;
mod formats;
mod gates;
mod gitlab;
mod history;
mod integrity;
mod keyless;
mod native;
mod pins;
mod progress;
mod referrers;
mod registry_client;
mod release;
mod release_workflow;
mod set_promotion;
mod signals;
mod signing;
mod supply;
mod tags_prop;
mod workflow_deploy;
mod workflow_inputs;
mod workflow_install;
mod workflow_logins;
mod workflow_native;
mod workflow_signing;
mod workflows;
