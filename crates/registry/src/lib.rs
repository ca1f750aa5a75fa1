//! Registries, as `docker pull` and `docker push` use them: names resolved as Docker
//! resolves them, plain HTTP only for registries on loopback or listed as insecure,
//! anonymous, basic or bearer-token authentication (credentials from Docker's
//! `config.json` and its credential helpers, never printed), manifests of every kind
//! Docker and OCI define, and every blob checked against its digest and size as it lands
//! in the store.
#![forbid(unsafe_code)]

pub mod auth;
mod error;
mod login;
mod session;
mod tls;

pub use auth::{AuthConfig, Credentials};
pub use error::RegistryError;
pub use login::check_login;
pub use session::{Insecure, Operation, Session};
