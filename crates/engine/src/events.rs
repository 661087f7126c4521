//! Events (`docker events`): what happened to containers, images and volumes, broadcast to
//! subscribers and kept in a short ring for `since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::broadcast;

/// Kept for `since` queries.
const HISTORY: usize = 1024;

#[derive(Debug, Clone)]
pub struct Event {
    /// "container", "image", "volume".
    pub kind: &'static str,
    /// "create", "start", "die", "destroy", "stop", "kill", "pause", …
    pub action: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: i128,
}

pub struct Events {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(256).0,
            history: Mutex::new(VecDeque::new()),
        }
    }
}

impl Events {
    pub fn emit(&self, kind: &'static str, action: &str, id: &str, attributes: &[(&str, &str)]) {
        let time_nano = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let e = Event {
            kind,
            action: action.to_string(),
            id: id.to_string(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            time_nano,
        };
        {
            let mut h = crate::lock(&self.history);
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(e.clone());
        }
        let _ = self.tx.send(e);
    }

    /// Past events at or after `since_nano`, and a receiver for what comes next (subscribed
    /// before the history is copied, so nothing falls between; a duplicate is possible and
    /// filtered by the caller through `time_nano`).
    pub fn subscribe(&self, since_nano: Option<i128>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let rx = self.tx.subscribe();
        let past = match since_nano {
            None => Vec::new(),
            Some(t) => crate::lock(&self.history)
                .iter()
                .filter(|e| e.time_nano >= t)
                .cloned()
                .collect(),
        };
        (past, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_and_live_events() {
        let ev = Events::default();
        ev.emit("container", "create", "abc", &[("name", "web")]);
        let (past, mut rx) = ev.subscribe(Some(0));
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].attributes["name"], "web");
        ev.emit("container", "start", "abc", &[]);
        let e = rx.recv().await.unwrap();
        assert_eq!((e.kind, e.action.as_str()), ("container", "start"));
        let (past, _) = ev.subscribe(None);
        assert!(past.is_empty());
    }
}
