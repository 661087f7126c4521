//! The shim's wire protocol, shared by the shim binary and the engine that drives it.
//!
//! One unix stream socket per container (`<exec-root>/shims/<id>.sock`). A client writes one
//! JSON [`Request`] line and reads one JSON [`Reply`] line. `attach` and `exec` then turn the
//! connection into a stream: the shim writes [`Frame`]s (Docker's 8-byte multiplexed header),
//! the client writes raw stdin bytes and half-closes for EOF. `wait` replies only once the
//! container has exited.

use serde::{Deserialize, Serialize};

pub mod footprint;
pub mod frame;

pub use frame::{Frame, STREAM_EXIT, STREAM_STDERR, STREAM_STDOUT};

/// `--start-held MS` as berthd uses it: how long a container started for the client that
/// attaches next keeps its output (and the report of its exit) for that client. It attaches
/// at once; one that died must not leave the container blocked on a full pipe, nor its exit
/// unreported, for long.
pub const START_HOLD: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Let the created container run.
    Start,
    /// Where the container is: pid, running or exited.
    State,
    /// Reply once the container has exited (and its output is drained).
    Wait,
    /// Signal the container's init (`all`: every process in its cgroup).
    Kill { signal: i32, all: bool },
    /// Stream the container's output, and feed its stdin when `stdin`; with `start`, then let
    /// the created container run (one round trip for `run`'s attach and start; the reply is
    /// the start's).
    Attach {
        stdin: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        start: bool,
    },
    /// Set the terminal size of the container (or of exec `exec_id`).
    Resize {
        height: u16,
        width: u16,
        exec_id: Option<String>,
    },
    /// Run an extra process (an OCI `process` object) and stream it; the last frame is
    /// [`STREAM_EXIT`] carrying its exit code.
    Exec {
        exec_id: String,
        process: serde_json::Value,
        stdin: bool,
        /// Without the container's seccomp filter (`exec --privileged`).
        #[serde(default)]
        privileged: bool,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub running: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitStatus>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            ok: true,
            ..Reply::default()
        }
    }

    pub fn err(msg: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            error: Some(msg.into()),
            ..Reply::default()
        }
    }
}

/// How the container ended; also the content of the exit file the shim leaves behind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code, or 128+N when killed by signal N.
    pub code: i32,
    /// RFC 3339 with nanoseconds.
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
}

/// What the shim prints on stdout once the container is created (or creation failed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    pub pid: i32,
    pub error: Option<String>,
}
