//! Making a deployment's tags exist: one plan (lookup, then retag or build, then claim and
//! converge) that the job runs and `--dry-run` describes, the labels of an image, and the
//! drivers: buildx and podman builds, native builds and their image assembly, and the
//! retaggers. What the tags are is `deployment`'s business, not this module's.

pub mod builder;
pub mod converge;
pub mod describe;
pub mod evidence;
pub mod image;
pub mod job;
pub mod labels;
pub mod native;
pub mod plan;
pub mod retag;
