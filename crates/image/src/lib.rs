//! berth's image mechanisms: a library the engine (and later the registry client and server)
//! calls. Layout under a data root, as the engine arranges it:
//! `blobs/<algo>/<hex>`, `ingest/<h>/`, `snapshots/{committed/<chain-hex>,active/<key>}/`.
//!
//! - `digest`: `Digest` (sha256/sha512) and streaming hash/verify wrappers.
//! - `content`: `ContentStore`, blobs by digest with atomic, resumable ingest.
//! - `media`: OCI and Docker schema2 manifests/indexes/configs, platform selection.
//! - `unpack`: safe layer application (whiteouts, hostile tars).
//! - `snapshot`: overlay snapshots keyed by chain id, with a plain-copy fallback.
//! - `archive`: `docker save` / OCI layout tars in and out.
//! - `extract`: image → snapshots (`unpack_image`), layer by layer, skipping what exists.
//! - `gc`: what names reach, and removal of the rest (blobs, snapshots).
//! - `names`: a small name → image index the engine can persist.
//!
//! The crate knows nothing of containers and keeps no database: every piece of on-disk state is
//! self-describing (blobs by digest, snapshots by chain id) and written atomically.

pub mod archive;
pub mod content;
pub mod diff;
pub mod digest;
pub mod error;
pub mod extract;
pub mod gc;
pub mod media;
pub mod names;
pub mod overwrite;
pub mod snapshot;
pub mod unpack;

pub use content::{BlobInfo, ContentStore};
pub use digest::Digest;
pub use error::{Error, Result};
