//! Talking to OCI registries, in layers that import only downward: image references and
//! origins (`reference`), the typed OCI documents (`oci`), credentials (`credentials`), the
//! client's settings (`options`), the one HTTP transport with its retry budget and deadlines
//! (`transport`) and its authentication layer (`auth`), and the client operations over it
//! (`client`), with OCI 1.1 referrers on top (`referrers`).

mod auth;
pub mod client;
pub mod credentials;
pub mod oci;
pub mod options;
pub mod reference;
pub mod referrers;
pub mod transport;
