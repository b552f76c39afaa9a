//! CI systems: which one runs the job and what it tells the job through its environment
//! (`detect`), how a job reports back to each (`github`, `gitlab`, `azure`, `buildkite`), and
//! the pipelines `init-workflows` generates (`workflows` for GitHub Actions, `gitlab_pipeline`
//! for GitLab CI, with `toolchain` for native builds' Rust toolchain and compile cache, and
//! `signing` for the signing and attestation steps of the GitHub pipeline).

pub mod azure;
pub mod buildkite;
pub mod deploy_job;
pub mod detect;
pub mod github;
pub mod gitlab;
pub mod gitlab_pipeline;
pub mod grammar;
pub mod install;
pub mod logins;
pub mod pins;
pub mod signing;
pub mod toolchain;
pub mod workflows;

pub use detect::{Ci, PullRequest, Runner};
