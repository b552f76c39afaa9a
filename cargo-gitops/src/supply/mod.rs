//! Supply-chain documents of a build, produced once per commit: what went into the image and
//! how it was made, and the signatures that vouch for it. `crates` finds the crates linked into a native build's binary; `sbom`
//! writes them as SPDX 2.3 JSON; `auditable` writes them in cargo-auditable's format, as an
//! object file the linker puts into the binary (`.dep-v0`), so scanners read them from the
//! image itself; `provenance` writes an in-toto statement with a SLSA v1 provenance predicate;
//! `sign` makes signatures cosign verifies.
//!
//! Every document is a pure function of the commit: times come from the commit, identifiers
//! from hashes of the content, never from the clock or a random source, so two builds of one
//! commit write the same bytes. Attaching documents to an image (referrers, signatures) is the
//! registry's job, and when a build writes them is the build plan's: neither lives here.

pub mod auditable;
pub mod crates;
pub mod keyless;
pub mod provenance;
pub mod sbom;
pub mod sign;

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    crate::registry::oci::Digest::of(bytes).hex().to_owned()
}
