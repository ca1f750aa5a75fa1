//! TLS for every registry connection: rustls with the `ring` provider, installed once for
//! the process (reqwest is built without a provider of its own).
use std::sync::Once;

/// Installs the process's rustls provider, once.
pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // ring rather than aws-lc-rs: no C toolchain or cmake to build it, and a registry
        // connection needs no post-quantum key exchange (the reason rustls deprecates it).
        // Err means another part of the process installed one first; that one is used.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
