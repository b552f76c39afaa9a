//! cargo-gitops: GitOps continuous integration for any repository. A git ref becomes an
//! environment, the environment gives image tags, and the tags are made to exist in a registry
//! by building once per commit or by retagging. The command line lives in the binary
//! (`main.rs`, `cli/`); everything it calls is here.
//!
//! Layers, each importing only from the ones above it in this list:
//! - foundations: `error`, `exit_codes`, `files`, `process`, `progress`, `time`, `urls`, `deadline`
//! - the vocabulary: `tags`, `environment`, `git`
//! - `config`: finding, reading and validating the configuration
//! - `registry`: references, one transport, client operations, credentials, OCI types
//! - `supply`: supply-chain evidence (signatures) attached to images
//! - `ci`: what each CI system tells a job and how a job reports back; pipeline generation
//! - `deployment`: what one commit deploys to
//! - `supply`: the supply-chain documents of a build: SBOM, embedded dependency list, provenance
//! - `gates`: promotion gates, checked before any tag moves (its `spec`, the table's grammar,
//!   is vocabulary that `config` reads)
//! - `build`: the job (lookup, then retag or build), its plan and its drivers
//! - `delivery`: Flux policies, releases, promotions, history
//! - `affected`: which services a commit changes, against what their environment last received
//! - `promotion`: the services of a repository promoted as one set, all or none
//! - `deploy`: the image written back into the GitOps manifests (reads `delivery`'s tag filters)

pub mod affected;
pub mod build;
pub mod ci;
pub mod config;
pub mod deadline;
pub mod delivery;
pub mod deploy;
pub mod deployment;
pub mod environment;
pub mod error;
pub mod exit_codes;
pub mod files;
pub mod gates;
pub mod git;
pub mod process;
pub mod progress;
pub mod promotion;
pub mod registry;
pub mod supply;
pub mod tags;
pub mod time;
pub mod urls;

pub use error::Error;
