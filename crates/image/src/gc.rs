//! Garbage collection: what the roots (manifests the engine keeps names for) reach, and removal
//! of everything else. The caller must keep new images from being loaded or named while a
//! collection runs (the engine's image lock): a blob stored but not yet named looks unreachable.

use std::collections::{BTreeSet, HashSet};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use crate::content::{ContentStore, MAX_JSON_BLOB};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media::{sniff_document, Kind};
use crate::snapshot::{chain_ids, Snapshotter};

/// What reachability found: blobs, and the snapshot chain ids of every image present.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reachable {
    pub blobs: HashSet<Digest>,
    pub chains: HashSet<Digest>,
}

/// Walk from `roots` through indexes (children present in the store), manifests, configs and
/// layers.
pub fn reachable<'a>(
    store: &ContentStore,
    roots: impl IntoIterator<Item = &'a Digest>,
) -> Result<Reachable> {
    let mut out = Reachable::default();
    let mut todo: Vec<Digest> = roots.into_iter().cloned().collect();
    while let Some(d) = todo.pop() {
        if !store.has(&d) || !out.blobs.insert(d.clone()) {
            continue;
        }
        let Ok(bytes) = store.read_bounded(&d, MAX_JSON_BLOB) else {
            continue;
        };
        match sniff_document(&bytes) {
            Kind::Index => {
                let index: ImageIndex = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::json(format!("parse index {d}"), e))?;
                for m in index.manifests() {
                    todo.push(Digest::from_oci(m.digest())?);
                }
            }
            Kind::Manifest => {
                let m: ImageManifest = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::json(format!("parse manifest {d}"), e))?;
                let config = Digest::from_oci(m.config().digest())?;
                for l in m.layers() {
                    out.blobs.insert(Digest::from_oci(l.digest())?);
                }
                if store.has(&config) {
                    out.blobs.insert(config.clone());
                    if let Ok(c) = store.read_json::<ImageConfiguration>(&config) {
                        let diff_ids: Vec<Digest> = c
                            .rootfs()
                            .diff_ids()
                            .iter()
                            .filter_map(|s| Digest::parse(s).ok())
                            .collect();
                        out.chains.extend(chain_ids(&diff_ids));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub removed_blobs: Vec<Digest>,
    pub freed_bytes: u64,
    pub removed_snapshots: Vec<String>,
}

/// Delete blobs not reachable from `roots`; and, given a snapshotter, committed snapshots no
/// live image uses and active snapshots not in `live_active` (the engine's containers).
pub fn collect<'a>(
    store: &ContentStore,
    snapshots: Option<&Snapshotter>,
    roots: impl IntoIterator<Item = &'a Digest>,
    live_active: &BTreeSet<String>,
) -> Result<GcReport> {
    let live = reachable(store, roots)?;
    let mut report = GcReport::default();
    for blob in store.list()? {
        if !live.blobs.contains(&blob.digest) && store.delete(&blob.digest)? {
            report.freed_bytes += blob.size;
            report.removed_blobs.push(blob.digest);
        }
    }
    let Some(snaps) = snapshots else {
        return Ok(report);
    };
    // Active first: they may be what keeps a committed parent in use.
    let all = snaps.list()?;
    let mut kept_parents: HashSet<Digest> = HashSet::new();
    for s in all.iter().filter(|s| !s.committed) {
        if live_active.contains(&s.name) {
            kept_parents.extend(s.parent.clone());
        } else {
            snaps.remove_active(&s.name)?;
            report.removed_snapshots.push(s.name.clone());
        }
    }
    // Keep live chains and every ancestor of a kept snapshot; remove the rest top-down.
    let mut keep: HashSet<Digest> = live.chains.clone();
    keep.extend(kept_parents);
    let mut stack: Vec<Digest> = keep.iter().cloned().collect();
    while let Some(c) = stack.pop() {
        if let Ok(info) = snaps.info(&c) {
            if let Some(p) = info.parent {
                if keep.insert(p.clone()) {
                    stack.push(p);
                }
            }
        }
    }
    let mut doomed: Vec<(usize, Digest)> = Vec::new();
    for s in all.iter().filter(|s| s.committed) {
        let Ok(d) = Digest::parse(&s.name) else {
            continue;
        };
        if !keep.contains(&d) {
            doomed.push((depth(snaps, &d), d));
        }
    }
    // Children before parents, so `remove`'s child check passes.
    doomed.sort_by_key(|d| std::cmp::Reverse(d.0));
    for (_, d) in doomed {
        snaps.remove(&d)?;
        report.removed_snapshots.push(d.to_string());
    }
    Ok(report)
}

fn depth(snaps: &Snapshotter, chain: &Digest) -> usize {
    let mut n = 0;
    let mut cur = chain.clone();
    while let Ok(info) = snaps.info(&cur) {
        match info.parent {
            Some(p) if n < 1000 => {
                n += 1;
                cur = p;
            }
            _ => break,
        }
    }
    n
}
