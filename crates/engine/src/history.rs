//! `docker history`: an image's history entries, newest first, matched to its layers.

use crate::error::Result;
use crate::Engine;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id for the newest entry, "<missing>" for the others (as Docker shows entries
    /// that are not images of their own).
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    /// Bytes of the layer this entry made (its stored blob); 0 for an empty layer.
    pub size: i64,
    pub comment: String,
}

impl Engine {
    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let row = self.find_image(name)?;
        let resolved = self.resolve_row(&row)?;
        let layer_sizes: Vec<i64> = resolved
            .manifest
            .layers()
            .iter()
            .map(|l| l.size() as i64)
            .collect();
        let mut layers = layer_sizes.iter();
        let mut out = Vec::new();
        let history = resolved.config.history().clone().unwrap_or_default();
        if history.is_empty() {
            // No history recorded: one entry per layer, like the layers themselves tell it.
            let created =
                crate::images::unix_secs(resolved.config.created().as_deref().unwrap_or(""));
            for size in &layer_sizes {
                out.push(entry(created, String::new(), *size, String::new()));
            }
        }
        for h in &history {
            let size = if h.empty_layer().unwrap_or(false) {
                0
            } else {
                layers.next().copied().unwrap_or(0)
            };
            out.push(entry(
                crate::images::unix_secs(h.created().as_deref().unwrap_or("")),
                h.created_by().clone().unwrap_or_default(),
                size,
                h.comment().clone().unwrap_or_default(),
            ));
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = row.id.clone();
            top.tags = self.db().tags_of(&row.id)?;
        }
        Ok(out)
    }
}

fn entry(created: i64, created_by: String, size: i64, comment: String) -> HistoryEntry {
    HistoryEntry {
        id: "<missing>".into(),
        created,
        created_by,
        tags: Vec::new(),
        size,
        comment,
    }
}
