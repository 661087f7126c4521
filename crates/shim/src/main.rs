//! `berth-shim`: one small, single-threaded monitor per container.
//!
//! berthd runs it per container; it forks, the child creates the container through the runtime
//! library (so the container's init is the shim's own child), reports readiness to the parent,
//! which prints it and exits. The child lives on, reparented, independent of berthd: it holds
//! the container's stdio, writes the json-file log, reaps, records the exit status in a file and
//! serves its socket (see the `berth_shim` protocol).

mod args;
mod logfile;
mod monitor;
mod poll;
mod stdio;

use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use berth_shim::Ready;

fn main() {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-shim: {e}\n{}", args::USAGE);
            std::process::exit(2);
        }
    };
    let (rd, wr) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth-shim: pipe: {e}");
            std::process::exit(1);
        }
    };
    // SAFETY: the shim is single-threaded; the child continues normally.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            eprintln!("berth-shim: fork: {e}");
            std::process::exit(1);
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            drop(wr);
            std::process::exit(relay_readiness(rd));
        }
        Ok(nix::unistd::ForkResult::Child) => {
            drop(rd);
            let code = match detach() {
                Ok(()) => match monitor::run(&args, wr) {
                    Ok(()) => 0,
                    Err(_) => 1,
                },
                Err(e) => {
                    report(wr, 0, Some(e));
                    1
                }
            };
            std::process::exit(code);
        }
    }
}

/// Parent: copy the child's readiness line to stdout; exit 0 only when it created the container.
fn relay_readiness(rd: OwnedFd) -> i32 {
    // One line, not EOF: the container's process inherits the write end until it execs.
    let mut line = String::new();
    let _ = std::io::BufReader::new(std::fs::File::from(rd)).read_line(&mut line);
    let ready: Ready = serde_json::from_str(line.trim()).unwrap_or(Ready {
        pid: 0,
        error: Some("the shim died before the container was created".into()),
    });
    println!("{}", serde_json::to_string(&ready).unwrap_or_default());
    if ready.error.is_some() {
        1
    } else {
        0
    }
}

/// Own session, stdio on /dev/null: nothing ties the shim to berthd any more.
fn detach() -> Result<(), String> {
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("open /dev/null: {e}"))?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(format!(
                "dup2 /dev/null: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Write the readiness line berthd waits for.
pub(crate) fn report(wr: OwnedFd, pid: i32, error: Option<String>) {
    let mut line = serde_json::to_string(&Ready { pid, error }).unwrap_or_default();
    line.push('\n');
    let _ = std::fs::File::from(wr).write_all(line.as_bytes());
}
