//! CI systems: what a runner tells a job through its environment, how a job reports back, and
//! the pipelines `init-workflows` generates for each provider.

pub mod github;
pub mod grammar;
pub mod install;
pub mod logins;
pub mod pins;
pub mod workflows;
