//! Making a deployment's tags exist: the job (lookup, then retag or build, then converge),
//! and the drivers it runs: buildx and podman builds, native builds and their image assembly,
//! and the retaggers. What the tags are is `deployment`'s business, not this module's.

pub mod builder;
pub mod image;
pub mod job;
pub mod native;
pub mod retag;
