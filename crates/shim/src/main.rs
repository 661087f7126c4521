//! `berth-shim`: one small, single-threaded monitor per container.
//!
//! berthd runs it per container; it forks, the child creates the container through the runtime
//! library (so the container's init is the shim's own child), reports readiness to the parent,
//! which prints it and exits. The child lives on, reparented, independent of berthd: it holds
//! the container's stdio, writes the json-file log, reaps, records the exit status in a file and
//! serves its socket (see the `berth_shim` protocol).
//!
//! `berth-shim --standby --owner PID` is the same shim started ahead of time: it detaches at
//! once and waits on its stdin (a socket to berthd) for the JSON array of the flags above (one
//! line); it answers the readiness line on that socket. Before the flags berthd may send a
//! sandbox line (`SANDBOX_LINE`): the container it expects next, made ahead but for its process
//! (see `monitor::Warm`). berthd keeps spares so that `start` does not pay for an exec, a
//! dynamic link and a fork. A spare exits when berthd closes the socket.

mod args;
mod logfile;
mod monitor;
mod poll;
mod stdio;

use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use berth_shim::Ready;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--standby") {
        std::process::exit(standby(&argv));
    }
    let args = match args::Args::parse(argv.into_iter()) {
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
                Ok(()) => match monitor::run(&args, wr, Default::default(), None) {
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

/// `--standby [--owner PID] [--nice N] [--cgroup PATH]`: fork; the parent exits at once (berthd
/// reaps it), the child detaches, makes what it can ahead (still in SCHED_IDLE, where berthd
/// starts it), goes back to the normal class at `--nice` (berthd's, which its container inherits), writes
/// READY_MARK, and waits for its flags on the socket that was its stdin; then it runs like a
/// shim started with them. `--cgroup`: the cgroupsPath of the container it will hold (berthd
/// picks the container's id ahead), where a cgroup v1 host's launcher waits.
fn standby(argv: &[String]) -> i32 {
    let value_of = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
    };
    let nice = value_of("--nice")
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    let cgroup = value_of("--cgroup").cloned();
    // The control socket leaves fd 0 (detach puts /dev/null there) and closes on exec.
    let control = match std::os::fd::AsFd::as_fd(&std::io::stdin()).try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("berth-shim: standby: no control socket on stdin: {e}");
            return 1;
        }
    };
    // SAFETY: the shim is single-threaded; the child continues normally.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            eprintln!("berth-shim: fork: {e}");
            1
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) => 0,
        Ok(nix::unistd::ForkResult::Child) => {
            if let Err(e) = detach() {
                report(control, 0, Some(e));
                return 1;
            }
            // Read now, not at create: the shim never leaves its cgroup, and the kernel's last
            // capability does not change.
            if let Err(e) = berth_runtime::cgroups::remember_host() {
                eprintln!("berth-shim: standby: cgroups: {e}");
            }
            berth_runtime::security::capabilities::last_cap();
            // Still in SCHED_IDLE: what is made ahead (a network namespace, cgroups, a
            // launcher) only takes CPU time no container's start or exit wants.
            let Some(ahead) = make_ahead(cgroup.as_deref()) else {
                return 1;
            };
            // Made: from here on it (and its launcher, whose children are containers) must
            // wake as fast as any process.
            let launcher = ahead.launcher.as_ref().map(|l| l.pid().as_raw());
            if let Err(e) = [0]
                .into_iter()
                .chain(launcher)
                .try_for_each(|pid| normal_scheduling(pid, nice))
            {
                report(control, 0, Some(e));
                return 1;
            }
            // Tell berthd it may hand this spare out: a spare still in SCHED_IDLE could make a
            // start wait for idle CPU time on a busy host.
            if nix::unistd::write(&control, READY_MARK).is_err() {
                return 1;
            }
            // `ps -e` and top tell a waiting spare from the shims holding containers (which
            // keep the --standby command line they were started with).
            set_name(c"berth-spare");
            let mut lines = LineReader::default();
            let mut ahead = Some(ahead);
            let mut warm = None;
            let line = loop {
                let Some(line) = lines.next(&control) else {
                    // berthd went away (or shut down) before it needed this spare (a sandbox
                    // made meanwhile goes with it).
                    return 0;
                };
                match line.strip_prefix(SANDBOX_LINE) {
                    Some(flags) if warm.is_none() => {
                        warm = make_sandbox(flags, ahead.take().unwrap_or_default(), nice)
                    }
                    _ => break line,
                }
            };
            set_name(c"berth-shim");
            let args = serde_json::from_str::<Vec<String>>(&line)
                .map_err(|e| format!("standby: bad flags line: {e}"))
                .and_then(|argv| args::Args::parse(argv.into_iter()));
            match args {
                Ok(args) => match monitor::run(&args, control, ahead.unwrap_or_default(), warm) {
                    Ok(()) => 0,
                    Err(()) => 1,
                },
                Err(e) => {
                    report(control, 0, Some(e));
                    2
                }
            }
        }
    }
}

/// A line berthd may send a spare before its flags: this, then the flags of the container it
/// expects next, to be made ahead but for its process (see `monitor::Warm`). The spare says
/// nothing back: whether it was made shows when the flags come.
const SANDBOX_LINE: &str = "sandbox ";

/// Make the sandbox of the container whose flags (a JSON array) berthd expects next, with what
/// the spare made ahead, in SCHED_IDLE (only with CPU time nothing else wants); its process
/// and this shim then go back to the normal class at `nice`. None when it cannot be made
/// (the container is then created as usual, without what `ahead` held).
fn make_sandbox(
    flags: &str,
    ahead: berth_runtime::process::MadeAhead,
    nice: i32,
) -> Option<monitor::Warm> {
    let args = serde_json::from_str::<Vec<String>>(flags)
        .map_err(|e| format!("bad flags: {e}"))
        .and_then(|argv| args::Args::parse(argv.into_iter()))
        .map_err(|e| eprintln!("berth-shim: standby: sandbox: {e}"))
        .ok()?;
    let launcher = ahead.launcher.as_ref().map(|l| l.pid().as_raw());
    [0].into_iter().chain(launcher).for_each(idle_scheduling);
    let warm = monitor::Warm::make(args, ahead)
        .map_err(|e| eprintln!("berth-shim: standby: sandbox: {e}"));
    let sandbox_pid = warm.as_ref().ok().and_then(monitor::Warm::pid);
    if let Err(e) = [0]
        .into_iter()
        .chain(sandbox_pid)
        .try_for_each(|pid| normal_scheduling(pid, nice))
    {
        eprintln!("berth-shim: standby: {e}");
    }
    warm.ok()
}

/// The cgroup below which berthd puts its containers ("berth/<id>", relative to the shim's
/// own cgroups); a spare's launcher waits in a sibling of theirs.
const CONTAINERS_CGROUP: &str = "berth";

/// On a cgroup v1 host, a launcher moved into a spare cgroup now, while nobody waits, so the
/// container's process is cloned into its cgroups instead of moved there at create (a move
/// waits for an RCU grace period): the container's own cgroup when berthd named it
/// (`cgroups_path`), else a spare renamed at create. None on v2 (clone3 does that directly) or
/// when it fails: the container is then created as usual.
fn prepare_launcher(cgroups_path: Option<&str>) -> Option<berth_runtime::process::Launcher> {
    if berth_runtime::cgroups::host_version() != berth_runtime::cgroups::Version::V1 {
        return None;
    }
    match cgroups_path {
        Some(path) => berth_runtime::process::Launcher::prepare_named(path),
        None => berth_runtime::process::Launcher::prepare(CONTAINERS_CGROUP),
    }
    .map_err(|e| eprintln!("berth-shim: standby: no launcher: {e}"))
    .ok()
}

/// What a spare makes while it waits: a network namespace (most containers get a new one) and
/// on cgroup v1 a launcher. None: it cannot be used (left in another network namespace).
fn make_ahead(cgroups_path: Option<&str>) -> Option<berth_runtime::process::MadeAhead> {
    let own_network = network_namespace_id();
    let network = match berth_runtime::namespaces::make_network() {
        Ok(fd) => Some(fd),
        Err(e) => {
            eprintln!("berth-shim: standby: no network namespace made ahead: {e}");
            if network_namespace_id() != own_network {
                return None;
            }
            None
        }
    };
    Some(berth_runtime::process::MadeAhead {
        launcher: prepare_launcher(cgroups_path),
        network,
    })
}

fn network_namespace_id() -> Option<std::ffi::OsString> {
    std::fs::read_link("/proc/thread-self/ns/net")
        .ok()
        .map(|p| p.into_os_string())
}

/// What a spare writes once it is made and back in the normal scheduling class (one byte,
/// before any readiness line). berthd's `Spare::start` waits for it.
const READY_MARK: &[u8] = b".";

/// The process name (comm) that `ps -e` and top show.
fn set_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
}

/// Move `pid` (0: this process) from SCHED_IDLE to the normal class at `nice` (what the
/// container inherits).
fn normal_scheduling(pid: i32, nice: i32) -> Result<(), String> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscalls on one of our processes with a valid sched_param.
    unsafe {
        if libc::sched_setscheduler(pid, libc::SCHED_OTHER, &param) != 0 {
            return Err(format!(
                "leave SCHED_IDLE (pid {pid}): {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, nice) != 0 {
            return Err(format!(
                "set nice {nice} (pid {pid}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// `pid` (0: this process) into SCHED_IDLE, for work nobody waits for. A failure only costs
/// speed.
fn idle_scheduling(pid: i32) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain syscall on one of our processes with a valid sched_param.
    unsafe { libc::sched_setscheduler(pid, libc::SCHED_IDLE, &param) };
}

/// This process into SCHED_IDLE for good (a shim whose container is gone: see `finish`). A
/// failure only costs speed.
pub(crate) fn enter_idle_class() {
    idle_scheduling(0);
}

/// The lines berthd sends on the control socket: a spare's sandbox line, then its flags.
#[derive(Default)]
struct LineReader {
    buf: Vec<u8>,
}

impl LineReader {
    /// The next line; None at EOF, on error, or past 64 KiB without a newline.
    fn next(&mut self, control: &OwnedFd) -> Option<String> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                return String::from_utf8(line).ok();
            }
            if self.buf.len() > 64 * 1024 {
                return None;
            }
            match nix::unistd::read(control, &mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            }
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
