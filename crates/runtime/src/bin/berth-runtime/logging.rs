//! Logs the way containerd expects them from runc: with `--log-format json`, one JSON object per
//! line with `level`, `msg` and `time`; containerd's shim reads the last error from that file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Clone, Copy)]
enum Format {
    Text,
    Json,
}

/// Where log lines go: the --log file, or stderr.
pub struct Log {
    file: Option<Mutex<File>>,
    format: Format,
}

impl Log {
    fn write(&self, level: &str, msg: &str) {
        let line = match self.format {
            Format::Json => {
                serde_json::json!({"level": level, "msg": msg, "time": berth_runtime::state::now_rfc3339()}).to_string()
            }
            Format::Text => format!("berth-runtime: {level}: {msg}"),
        };
        match &self.file {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = writeln!(f, "{line}");
                }
            }
            None => eprintln!("{line}"),
        }
    }

    /// The command's final error: to the log, and to stderr too when the log is a file.
    pub fn error(&self, msg: &str) {
        self.write("error", msg);
        if self.file.is_some() {
            eprintln!("berth-runtime: {msg}");
        }
    }
}

struct LogLayer(std::sync::Arc<Log>);

struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut v = MessageVisitor(String::new());
        event.record(&mut v);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        self.0.write(&level, &v.0);
    }
}

pub fn init(path: Option<&Path>, format: &str, debug: bool) -> std::sync::Arc<Log> {
    let file = path.and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok());
    let log = std::sync::Arc::new(Log {
        file: file.map(Mutex::new),
        format: if format == "json" {
            Format::Json
        } else {
            Format::Text
        },
    });
    let max = if debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::WARN
    };
    let layer =
        LogLayer(log.clone()).with_filter(tracing_subscriber::filter::LevelFilter::from_level(max));
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
    log
}
