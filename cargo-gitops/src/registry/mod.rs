//! Talking to OCI registries: image references, the one HTTP transport (authentication
//! challenges, one retry budget, deadlines), the client operations over it (manifests, blobs,
//! tags, copies), credentials, and the typed OCI documents they exchange.

pub mod client;
pub mod credentials;
