//! Docker's JSON for images made from containers and root filesystems: history entries,
//! container changes.

use serde::{Deserialize, Serialize};

/// One entry of `GET /images/{name}/history`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HistoryItem {
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    /// Only the newest entry carries the image's tags (null elsewhere, like Docker).
    pub tags: Option<Vec<String>>,
    pub size: i64,
    pub comment: String,
}

/// One entry of `GET /containers/{id}/changes`; `kind` 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerChange {
    pub path: String,
    pub kind: u8,
}
