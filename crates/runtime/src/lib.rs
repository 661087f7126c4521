//! berth's OCI runtime.
//!
//! Turns an OCI bundle (rootfs + config.json) into an isolated, limited process. The engine calls
//! this crate in-process; `berth-runtime` wraps it in runc's command line so containerd, CRI-O and
//! Kubernetes can drive it too. The runtime knows nothing of images.

pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod sandbox;
pub mod security;
pub mod selfexe;
pub mod signals;
pub mod spec;
pub mod state;
pub mod tty;

pub use error::{Error, Result};
