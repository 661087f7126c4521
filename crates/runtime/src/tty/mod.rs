//! Terminal support: runtime-spec `process.terminal` and runc's `--console-socket` protocol.
//!
//! The container's process allocates a pty from its own devpts, makes the slave its controlling
//! terminal and stdio, and sends the master over the console socket (exactly like runc, so
//! containerd's shim accepts it). `berth-runtime run` without a console socket receives the master
//! itself and proxies it to its own terminal.

mod console;
mod fdpass;
mod proxy;
mod winsize;

pub use console::{setup_console, setup_exec_console};
pub use fdpass::{connect_console_socket, recv_pty_master, send_pty_master, PTY_MASTER_NAME};
pub use proxy::proxy_terminal;
pub use winsize::{get_window_size, set_window_size};
