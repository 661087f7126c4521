//! Progress in the shape of Docker's JSON messages (`{"status","id","progressDetail"}`), so the
//! engine can stream them to the docker CLI, which draws its bars from them. A CLI with
//! indicatif keys its bars by `id` and sets position/length from `progress_detail`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressDetail {
    pub current: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
}

/// One JSON message of Docker's pull/push stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProgressEvent {
    pub fn status(id: Option<&str>, status: impl Into<String>) -> ProgressEvent {
        ProgressEvent {
            id: id.map(str::to_owned),
            status: status.into(),
            progress_detail: None,
            error_detail: None,
            error: None,
        }
    }

    pub fn progress(id: &str, status: &str, current: u64, total: Option<u64>) -> ProgressEvent {
        ProgressEvent {
            progress_detail: Some(ProgressDetail { current, total }),
            ..ProgressEvent::status(Some(id), status)
        }
    }

    /// The final message of a failed operation, as docker sends it.
    pub fn error(message: impl Into<String>) -> ProgressEvent {
        let message = message.into();
        ProgressEvent {
            id: None,
            status: String::new(),
            progress_detail: None,
            error_detail: Some(ErrorDetail {
                message: message.clone(),
            }),
            error: Some(message),
        }
    }

    /// One line of Docker's stream (JSON, no trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Where progress goes. Closures and channels qualify.
pub trait ProgressSink: Send + Sync {
    fn send(&self, event: ProgressEvent);
}

impl<F: Fn(ProgressEvent) + Send + Sync> ProgressSink for F {
    fn send(&self, event: ProgressEvent) {
        self(event)
    }
}

impl ProgressSink for tokio::sync::mpsc::UnboundedSender<ProgressEvent> {
    fn send(&self, event: ProgressEvent) {
        // A reader that went away must not stop the pull.
        let _ = tokio::sync::mpsc::UnboundedSender::send(self, event);
    }
}

pub type Progress = Arc<dyn ProgressSink>;

/// A sink that drops everything.
pub fn no_progress() -> Progress {
    Arc::new(|_e: ProgressEvent| {})
}

/// Docker's short layer id: the first 12 hex characters of the digest.
pub fn short_id(digest: &berth_image::Digest) -> String {
    digest.hex()[..12].to_string()
}

/// One layer's state as a CLI draws it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerState {
    pub status: String,
    pub current: u64,
    pub total: Option<u64>,
}

/// Folds the event stream into per-layer state, in first-seen order: what a CLI needs to keep
/// one indicatif bar per layer (create on first sight, then set message/position/length).
#[derive(Debug, Default)]
pub struct Board {
    order: Vec<String>,
    layers: std::collections::HashMap<String, LayerState>,
}

impl Board {
    /// Apply `event`; returns the layer it changed (None for messages without an id).
    pub fn apply<'a>(&'a mut self, event: &ProgressEvent) -> Option<(&'a str, &'a LayerState)> {
        let id = event.id.as_ref()?;
        if !self.layers.contains_key(id) {
            self.order.push(id.clone());
        }
        let state = self.layers.entry(id.clone()).or_default();
        state.status = event.status.clone();
        if let Some(p) = event.progress_detail {
            state.current = p.current;
            state.total = p.total.or(state.total);
        }
        self.layers
            .get_key_value(id.as_str())
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Layers in the order they appeared.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &LayerState)> {
        self.order
            .iter()
            .filter_map(|id| self.layers.get(id).map(|s| (id.as_str(), s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_tracks_layers_in_order() {
        let mut b = Board::default();
        assert!(b
            .apply(&ProgressEvent::status(None, "Pulling from x"))
            .is_none());
        b.apply(&ProgressEvent::status(Some("bbb"), "Pulling fs layer"));
        b.apply(&ProgressEvent::status(Some("aaa"), "Pulling fs layer"));
        let (id, st) = b
            .apply(&ProgressEvent::progress("bbb", "Downloading", 5, Some(10)))
            .unwrap();
        assert_eq!((id, st.current, st.total), ("bbb", 5, Some(10)));
        b.apply(&ProgressEvent::status(Some("bbb"), "Pull complete"));
        let all: Vec<(&str, &LayerState)> = b.layers().collect();
        assert_eq!(all[0].0, "bbb");
        assert_eq!(all[0].1.status, "Pull complete");
        assert_eq!(all[0].1.total, Some(10), "total kept");
        assert_eq!(all[1].0, "aaa");
    }

    #[test]
    fn serialises_like_docker_json_messages() {
        let e = ProgressEvent::progress("a3ed95caeb02", "Downloading", 100, Some(200));
        assert_eq!(
            e.to_json(),
            r#"{"id":"a3ed95caeb02","status":"Downloading","progressDetail":{"current":100,"total":200}}"#
        );
        let e = ProgressEvent::status(None, "Digest: sha256:abc");
        assert_eq!(e.to_json(), r#"{"status":"Digest: sha256:abc"}"#);
        let e = ProgressEvent::error("boom");
        assert_eq!(
            e.to_json(),
            r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#
        );
        let back: ProgressEvent = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(back, e);
    }
}
