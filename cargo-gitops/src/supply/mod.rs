//! Supply-chain evidence made once at build and carried with the image's digest: signatures
//! cosign verifies (`sign`). Attaching documents to an image is `registry::referrers`'.

pub mod sign;
