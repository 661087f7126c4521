//! Creating the container's processes: clone into namespaces, set up, wait for start, exec;
//! and joining a running container for `exec`.

pub mod child;
pub mod exec;
pub mod launcher;
mod listener;
pub mod spawn;
pub mod sync;

pub use exec::{exec_in, ExecOptions};
pub use launcher::Launcher;
pub use spawn::{spawn, SpawnOptions, Spawned};
