//! Test helpers: images built locally (busybox rootfs and small layers), written as OCI
//! layouts for skopeo or kept in memory for the fake registry; Debian's docker-registry
//! started on a free loopback port; a tiny HTTP server for answers no real registry gives.
#![allow(dead_code)]

pub mod fake;
pub mod image;
pub mod registry;

use std::sync::Arc;

use berth_distribution::progress::{Progress, ProgressEvent};
use berth_distribution::{Client, ClientConfig, DockerConfig, Puller};
use berth_image::snapshot::Snapshotter;
use berth_image::ContentStore;

/// A content store and snapshotter in a temp dir.
pub struct Stores {
    pub dir: tempfile::TempDir,
    pub store: ContentStore,
    pub snapshots: Snapshotter,
}

pub fn stores() -> Stores {
    let dir = tempfile::Builder::new()
        .prefix("berth-dist-")
        .tempdir()
        .unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    let snapshots = Snapshotter::open(dir.path().join("snapshots"), None).unwrap();
    Stores {
        dir,
        store,
        snapshots,
    }
}

/// A client reading logins from `docker_config` (an empty temp file by default).
pub fn client(docker_config: Option<DockerConfig>, dir: &std::path::Path) -> Arc<Client> {
    let cfg = ClientConfig {
        docker_config: Some(
            docker_config.unwrap_or_else(|| DockerConfig::at(dir.join("docker/config.json"))),
        ),
        ..ClientConfig::default()
    };
    Arc::new(Client::new(cfg).unwrap())
}

pub fn puller(client: Arc<Client>, s: &Stores) -> Puller {
    Puller::new(client, s.store.clone(), s.snapshots.clone(), 3)
}

/// A progress sink that records every event.
pub fn recorder() -> (Progress, Arc<std::sync::Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let e2 = events.clone();
    let sink: Progress = Arc::new(move |e: ProgressEvent| e2.lock().unwrap().push(e));
    (sink, events)
}

/// Nothing partial left: no ingests, no active snapshots.
pub fn assert_nothing_half_written(s: &Stores) {
    assert!(
        s.store.ingests().unwrap().is_empty(),
        "ingests left: {:?}",
        s.store.ingests().unwrap()
    );
    let active: Vec<_> = s
        .snapshots
        .list()
        .unwrap()
        .into_iter()
        .filter(|i| !i.committed)
        .collect();
    assert!(active.is_empty(), "active snapshots left: {active:?}");
}
