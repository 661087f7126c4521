//! The shim's life: create the container, then one poll loop until it has exited and its output
//! is drained; then leave the exit file, answer the waiters and go.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::container::{Container, CreateOptions, ExecResult, Runtime};
use berth_runtime::process::MadeAhead;
use berth_runtime::sandbox::Sandbox;
use berth_shim::{frame, ExitStatus, Reply, Request, STREAM_EXIT};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::args::Args;
use crate::logfile::LogFile;
use crate::poll::{PollSet, Token};
use crate::stdio::{self, Console, ProcessIo};

/// A slow reader must not stall the container: writes to clients give up after this.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_BUF: usize = 32 * 1024;
/// Quiet time after which an idle shim gives back the pages its last burst of work touched.
const SETTLE_MS: i32 = 1000;

struct Client {
    stream: UnixStream,
    /// Its bytes go to the container's stdin.
    stdin: bool,
    /// Still worth reading from (not at EOF).
    reading: bool,
}

struct ExecProc {
    id: String,
    pid: i32,
    io: ProcessIo,
    client: Option<Client>,
    code: Option<i32>,
}

struct Shim<'a> {
    args: &'a Args,
    runtime: Runtime,
    /// Held since its create: starting it and reading its cgroup need no state file.
    container: Container,
    pid: i32,
    io: ProcessIo,
    log: LogFile,
    listener: UnixListener,
    signals: SignalFd,
    clients: Vec<Client>,
    waiters: Vec<UnixStream>,
    execs: Vec<ExecProc>,
    exit: Option<ExitStatus>,
    started: bool,
    /// `--start-held`: until the first client attaches (or this passes) the container's output
    /// stays unread in its pipes, so that client gets all of it, and the exit is not reported
    /// before that client has it.
    hold_until: Option<Instant>,
    /// The container cgroup's OOM-kill counter, read when it exits.
    oom: Option<berth_runtime::cgroups::OomCounter>,
    /// The container's mount namespace, held until its exit is reported: the last process of a
    /// namespace unmounts everything in it (and waits for an RCU grace period) *before* its
    /// parent hears of the exit; with this reference that work happens after the report.
    mount_ns: Option<OwnedFd>,
}

/// A spare's container made ahead for the flags it was sent, but for its process (see
/// `berth_runtime::sandbox`), with the shim's side of its stdio.
pub struct Warm {
    args: Args,
    sandbox: Sandbox,
    io: ProcessIo,
    signals: SignalFd,
}

impl Warm {
    /// Make the sandbox of the container `args` describe. Not for a terminal.
    pub fn make(args: Args, ahead: MadeAhead) -> Result<Warm, String> {
        if args.tty {
            return Err("a container with a terminal is not made ahead".into());
        }
        let signals = prepare_process()?;
        let (child, io) = stdio::pipes(args.stdin).map_err(|e| format!("stdio pipes: {e}"))?;
        let runtime = Runtime::new(&args.runtime_root);
        let sandbox = stdio::with_stdio(&child, || {
            runtime.create_sandbox(&args.id, &args.bundle, &create_options(&args), ahead)
        })
        .map_err(|e| format!("stdio: {e}"))?
        .map_err(|e| format!("make the container ahead: {e}"))?;
        Ok(Warm {
            args,
            sandbox,
            io,
            signals,
        })
    }

    /// The sandbox's process.
    pub fn pid(&self) -> Option<i32> {
        self.sandbox.pid()
    }

    /// Whether the shim flags `args` are those it was made for, as far as its stdio and
    /// container go (the runtime checks the container's spec).
    fn made_for(&self, args: &Args) -> bool {
        let w = &self.args;
        (
            &w.id,
            &w.bundle,
            &w.runtime_root,
            w.tty,
            w.stdin,
            w.start_held.is_some(),
        ) == (
            &args.id,
            &args.bundle,
            &args.runtime_root,
            args.tty,
            args.stdin,
            args.start_held.is_some(),
        )
    }
}

fn create_options(args: &Args) -> CreateOptions {
    CreateOptions {
        start: args.start_held.is_some(),
        ..CreateOptions::default()
    }
}

/// `ahead`: what a spare made while it waited (a launcher, a network namespace, maybe the
/// container itself but for its process: `warm`).
pub fn run(args: &Args, ready: OwnedFd, ahead: MadeAhead, warm: Option<Warm>) -> Result<(), ()> {
    let mut shim = match setup(args, ahead, warm) {
        Ok(s) => s,
        Err(e) => {
            crate::report(ready, 0, Some(e));
            return Err(());
        }
    };
    if let Some(hold) = args.start_held {
        // Created running (`CreateOptions::start`): its program did not wait for this shim.
        shim.started = true;
        shim.hold_until = Some(Instant::now() + hold);
    }
    crate::report(ready, shim.pid, None);
    // After the report, off the start's path: the shim itself never reads it (it holds the
    // container), `exec` and `berth-runtime state` do; nothing is served before it is written.
    if let Err(e) = shim.container.save_state() {
        eprintln!("berth-shim: write the container's state: {e}");
    }
    // Opened now, while berthd answers the client: at exit it is one pread.
    shim.oom = shim.container.cgroup.oom_counter().ok().flatten();
    // Held since the create (see `Spawned::mount_ns`): a program as short as `true` is often
    // gone by now, and opening it here would be too late.
    shim.mount_ns = shim
        .container
        .mount_ns
        .take()
        .or_else(|| open_mount_ns(shim.pid));
    shim.serve();
    Ok(())
}

/// What the shim's own process needs before any container process exists: it reaps orphans
/// of the container (subreaper), and hears of exits on a signalfd.
fn prepare_process() -> Result<SignalFd, String> {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // SIGCHLD through a signalfd; SIGPIPE blocked so a gone reader is an EPIPE, not our death.
    // (Blocked, not ignored: the runtime resets the mask in the container, an ignore would stick.)
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGPIPE);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(|e| format!("block signals: {e}"))?;
    let mut sigchld = SigSet::empty();
    sigchld.add(Signal::SIGCHLD);
    SignalFd::with_flags(&sigchld, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))
}

fn setup(args: &Args, ahead: MadeAhead, warm: Option<Warm>) -> Result<Shim<'_>, String> {
    // A sandbox made for other flags is let go here (killed, its cgroup removed).
    let (signals, made) = match warm.filter(|w| w.made_for(args)) {
        Some(w) => (w.signals, Some((w.sandbox, w.io))),
        None => (prepare_process()?, None),
    };

    // Console sockets are made here under short relative names.
    if let Some(dir) = args.socket.parent() {
        std::env::set_current_dir(dir).map_err(|e| format!("chdir {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&args.socket);
    let listener = UnixListener::bind(&args.socket)
        .map_err(|e| format!("listen on {}: {e}", args.socket.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("nonblocking listener: {e}"))?;

    let runtime = Runtime::new(&args.runtime_root);
    let opts = create_options(args);
    let (container, io) = match made {
        Some((sandbox, io)) => match sandbox.finish(&args.id, &args.bundle, &opts) {
            Ok(container) => (container, io),
            Err(e) => {
                // Created as usual instead (what the spare made ahead went with the sandbox).
                eprintln!("berth-shim: the container made ahead was not used: {e}");
                create(args, &runtime, MadeAhead::default())?
            }
        },
        None => create(args, &runtime, ahead)?,
    };
    let log = LogFile::open(&args.log, args.log_max_size, args.log_max_files)
        .map_err(|e| format!("open {}: {e}", args.log.display()))?;
    Ok(Shim {
        args,
        runtime,
        pid: container.state.pid,
        container,
        io,
        log,
        listener,
        signals,
        clients: Vec::new(),
        waiters: Vec::new(),
        execs: Vec::new(),
        exit: None,
        started: false,
        hold_until: None,
        oom: None,
        mount_ns: None,
    })
}

/// Create the container as `args` say, with its stdio (pipes, or a terminal's pty).
fn create(
    args: &Args,
    runtime: &Runtime,
    ahead: MadeAhead,
) -> Result<(Container, ProcessIo), String> {
    let opts = create_options(args);
    if args.tty {
        let console = Console::listen(&console_path(&args.socket, "init"))
            .map_err(|e| format!("console socket: {e}"))?;
        let opts = CreateOptions {
            console_socket: Some(console.path.clone()),
            ..opts
        };
        let null = stdio::null_stdio().map_err(|e| format!("stdio: {e}"))?;
        let container = stdio::with_stdio(&null, || {
            runtime.create_held(&args.id, &args.bundle, &opts, ahead)
        })
        .map_err(|e| format!("stdio: {e}"))?
        .map_err(|e| format!("create container: {e}"))?;
        Ok((container, console.receive()?))
    } else {
        let (child, ours) = stdio::pipes(args.stdin).map_err(|e| format!("stdio pipes: {e}"))?;
        let container = stdio::with_stdio(&child, || {
            runtime.create_held(&args.id, &args.bundle, &opts, ahead)
        })
        .map_err(|e| format!("stdio: {e}"))?
        .map_err(|e| format!("create container: {e}"))?;
        Ok((container, ours))
    }
}

/// A console socket name relative to the shim's directory (the shim runs there): unix socket
/// paths are limited to 108 bytes and a full path with a 64-hex id may not fit.
fn console_path(_socket: &Path, what: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let _ = what;
    format!(
        "c{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
    .into()
}

impl Shim<'_> {
    fn serve(mut self) {
        let mut set = PollSet::default();
        let mut buf = vec![0u8; READ_BUF];
        // After a burst of work (creating the container, a request, an exec, output), a second
        // of quiet: drop the code pages that work faulted in (see `footprint`).
        let mut settle = true;
        loop {
            if self.exit.is_some() && self.io.outputs.is_empty() {
                break;
            }
            set.clear();
            set.add(self.listener.as_raw_fd(), Token::Listener);
            set.add(self.signals.as_raw_fd(), Token::Signals);
            let held = self.output_held();
            if held.is_none() {
                for (i, (f, _)) in self.io.outputs.iter().enumerate() {
                    set.add(f.as_raw_fd(), Token::Output(i));
                }
            }
            for (i, c) in self.clients.iter().enumerate() {
                if c.reading {
                    set.add(c.stream.as_raw_fd(), Token::Client(i));
                }
            }
            for (e, x) in self.execs.iter().enumerate() {
                for (i, (f, _)) in x.io.outputs.iter().enumerate() {
                    set.add(f.as_raw_fd(), Token::ExecOutput(e, i));
                }
                if let Some(c) = x.client.as_ref().filter(|c| c.reading) {
                    set.add(c.stream.as_raw_fd(), Token::ExecClient(e));
                }
            }
            let timeout = match (settle, held) {
                (true, Some(left)) => left.min(SETTLE_MS),
                (true, None) => SETTLE_MS,
                (false, Some(left)) => left,
                (false, None) => -1,
            };
            let ready = match set.wait(timeout) {
                Ok(r) => r,
                Err(_) => break,
            };
            if ready.is_empty() {
                if held.is_some() && self.output_held().is_none() {
                    // The hold ran out: a timeout, not the quiet second.
                    continue;
                }
                berth_shim::footprint::release_startup_pages();
                settle = false;
                continue;
            }
            settle = true;
            // Indexes stay valid while handling: removals happen after the batch.
            let mut closed_outputs = Vec::new();
            let mut closed_exec_outputs = Vec::new();
            for token in ready {
                match token {
                    Token::Listener => self.accept(),
                    Token::Signals => self.reap(),
                    Token::Output(i) => {
                        if !self.pump_output(i, &mut buf) {
                            closed_outputs.push(i);
                        }
                    }
                    Token::Client(i) => self.client_input(i, &mut buf),
                    Token::ExecOutput(e, i) => {
                        if !self.pump_exec_output(e, i, &mut buf) {
                            closed_exec_outputs.push((e, i));
                        }
                    }
                    Token::ExecClient(e) => self.exec_client_input(e, &mut buf),
                }
            }
            for i in closed_outputs.into_iter().rev() {
                self.io.outputs.remove(i);
            }
            closed_exec_outputs.sort();
            for (e, i) in closed_exec_outputs.into_iter().rev() {
                self.execs[e].io.outputs.remove(i);
            }
            self.finish_execs();
        }
        self.finish();
    }

    /// While the output is held (`--start-held`, no client yet): the milliseconds left.
    fn output_held(&mut self) -> Option<i32> {
        let until = self.hold_until?;
        let left = until.saturating_duration_since(Instant::now());
        if !self.clients.is_empty() || left.is_zero() {
            self.hold_until = None;
            return None;
        }
        // Rounded up: poll must not wake just before the end and spin.
        Some(left.as_millis().min(i32::MAX as u128) as i32 + 1)
    }

    /// Read once from the container's output `i`; false at EOF.
    fn pump_output(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let (f, stream) = &mut self.io.outputs[i];
        let stream = *stream;
        let n = match read_some(f, buf) {
            Some(n) if n > 0 => n,
            _ => return false,
        };
        let data = &buf[..n];
        self.log.write(stream, data);
        let framed = frame::encode(stream, data);
        self.clients
            .retain_mut(|c| c.stream.write_all(&framed).is_ok());
        true
    }

    fn pump_exec_output(&mut self, e: usize, i: usize, buf: &mut [u8]) -> bool {
        let x = &mut self.execs[e];
        let (f, stream) = &mut x.io.outputs[i];
        let stream = *stream;
        let n = match read_some(f, buf) {
            Some(n) if n > 0 => n,
            _ => return false,
        };
        if let Some(c) = &mut x.client {
            if c.stream
                .write_all(&frame::encode(stream, &buf[..n]))
                .is_err()
            {
                x.client = None;
            }
        }
        true
    }

    /// Bytes from an attached client go to the container's stdin; EOF may close it.
    fn client_input(&mut self, i: usize, buf: &mut [u8]) {
        let c = &mut self.clients[i];
        let n = (&c.stream).read(buf).unwrap_or(0);
        if n == 0 {
            c.reading = false;
            if c.stdin && self.args.stdin_once && !self.args.tty {
                self.io.stdin = None;
            }
            return;
        }
        if c.stdin {
            if let Some(w) = &mut self.io.stdin {
                if w.write_all(&buf[..n]).is_err() {
                    self.io.stdin = None;
                }
            }
        }
    }

    fn exec_client_input(&mut self, e: usize, buf: &mut [u8]) {
        let x = &mut self.execs[e];
        let Some(c) = &mut x.client else { return };
        let n = (&c.stream).read(buf).unwrap_or(0);
        if n == 0 {
            c.reading = false;
            if x.io.master.is_none() {
                x.io.stdin = None;
            }
            return;
        }
        if let Some(w) = &mut x.io.stdin {
            if w.write_all(&buf[..n]).is_err() {
                x.io.stdin = None;
            }
        }
    }

    /// Collect every exited child: the container's init, exec processes, reparented orphans.
    fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => {
                    let Some(code) = berth_runtime::signals::exit_code(status) else {
                        continue;
                    };
                    let pid = status.pid().map(|p| p.as_raw()).unwrap_or(0);
                    if pid == self.pid && self.exit.is_none() {
                        self.exit = Some(ExitStatus {
                            code,
                            finished_at: now(),
                            oom_killed: false,
                        });
                    } else if let Some(x) = self.execs.iter_mut().find(|x| x.pid == pid) {
                        x.code = Some(code);
                    }
                }
            }
        }
    }

    /// Execs whose process exited and whose output is drained: last frame, then close.
    fn finish_execs(&mut self) {
        self.execs.retain_mut(|x| {
            let (Some(code), true) = (x.code, x.io.outputs.is_empty()) else {
                return true;
            };
            if let Some(c) = &mut x.client {
                let _ = c
                    .stream
                    .write_all(&frame::encode(STREAM_EXIT, code.to_string().as_bytes()));
            }
            false
        });
    }

    fn accept(&mut self) {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(_) => return,
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT));
            let req = match read_request(&stream) {
                Ok(r) => r,
                Err(e) => {
                    let _ = reply(&stream, &Reply::err(format!("bad request: {e}")));
                    continue;
                }
            };
            let _ = stream.set_read_timeout(None);
            self.handle(stream, req);
        }
    }

    fn handle(&mut self, stream: UnixStream, req: Request) {
        match req {
            Request::Start => {
                let r = self.start();
                let _ = reply(&stream, &r);
            }
            Request::State => {
                let _ = reply(&stream, &self.state());
            }
            // Answered in `finish`, once the output is drained too.
            Request::Wait => self.waiters.push(stream),
            Request::Kill { signal, all } => {
                let r = self.kill(signal, all);
                let _ = reply(&stream, &r);
            }
            Request::Attach { stdin, start } => {
                // Started before the client is added, but in this same turn: nothing the
                // container prints is read before the client is there to get it.
                let r = if start { self.start() } else { Reply::ok() };
                if !r.ok {
                    let _ = reply(&stream, &r);
                } else if reply(&stream, &r).is_ok() {
                    self.clients.push(Client {
                        stream,
                        stdin: stdin && self.io.stdin.is_some(),
                        reading: true,
                    });
                }
            }
            Request::Resize {
                height,
                width,
                exec_id,
            } => {
                let master = match &exec_id {
                    None => self.io.master.as_ref(),
                    Some(id) => self
                        .execs
                        .iter()
                        .find(|x| &x.id == id)
                        .and_then(|x| x.io.master.as_ref()),
                };
                let r = match master {
                    None => Reply::err("no terminal to resize"),
                    Some(m) => match stdio::resize(m, height, width) {
                        Ok(()) => Reply::ok(),
                        Err(e) => Reply::err(format!("resize: {e}")),
                    },
                };
                let _ = reply(&stream, &r);
            }
            Request::Exec {
                exec_id,
                process,
                stdin,
                privileged,
            } => match self.exec(&exec_id, process, stdin, privileged) {
                Ok(x) => {
                    // The pid lets the engine kill an overrunning health check.
                    let ok = Reply {
                        pid: x.pid,
                        ..Reply::ok()
                    };
                    if reply(&stream, &ok).is_ok() {
                        let mut x = x;
                        x.client = Some(Client {
                            stream,
                            stdin,
                            reading: true,
                        });
                        self.execs.push(x);
                    } else {
                        self.execs.push(x);
                    }
                }
                Err(e) => {
                    let _ = reply(&stream, &Reply::err(e));
                }
            },
        }
    }

    fn start(&mut self) -> Reply {
        if self.started {
            return Reply::err("already started");
        }
        match self.container.start() {
            Ok(()) => {
                self.started = true;
                Reply::ok()
            }
            Err(e) => Reply::err(format!("start: {e}")),
        }
    }

    fn state(&self) -> Reply {
        Reply {
            ok: true,
            error: None,
            pid: self.pid,
            running: self.exit.is_none() && self.started,
            exit: self.exit.clone(),
        }
    }

    fn kill(&self, signal: i32, all: bool) -> Reply {
        if self.exit.is_some() {
            return Reply::err("the container is not running");
        }
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(_) => return Reply::err(format!("invalid signal {signal}")),
        };
        let r = if all {
            self.runtime
                .kill(&self.args.id, sig, true)
                .map_err(|e| e.to_string())
        } else {
            nix::sys::signal::kill(Pid::from_raw(self.pid), sig).map_err(|e| e.to_string())
        };
        match r {
            Ok(()) => Reply::ok(),
            Err(e) => Reply::err(format!("kill: {e}")),
        }
    }

    fn exec(
        &mut self,
        exec_id: &str,
        process: serde_json::Value,
        stdin: bool,
        privileged: bool,
    ) -> Result<ExecProc, String> {
        if self.exit.is_some() || !self.started {
            return Err("the container is not running".into());
        }
        let process: oci_spec::runtime::Process =
            serde_json::from_value(process).map_err(|e| format!("exec process: {e}"))?;
        let tty = process.terminal().unwrap_or(false);
        let started = if tty {
            let console = Console::listen(&console_path(&self.args.socket, exec_id))
                .map_err(|e| format!("console socket: {e}"))?;
            let opts = CreateOptions {
                console_socket: Some(console.path.clone()),
                no_seccomp: privileged,
                ..CreateOptions::default()
            };
            let null = stdio::null_stdio().map_err(|e| format!("stdio: {e}"))?;
            let r = stdio::with_stdio(&null, || {
                self.runtime.exec(&self.args.id, &process, &opts, true)
            })
            .map_err(|e| format!("stdio: {e}"))?;
            let pid = started_pid(r)?;
            (pid, console.receive()?)
        } else {
            let (child, ours) = stdio::pipes(stdin).map_err(|e| format!("stdio pipes: {e}"))?;
            let opts = CreateOptions {
                no_seccomp: privileged,
                ..CreateOptions::default()
            };
            let r = stdio::with_stdio(&child, || {
                self.runtime.exec(&self.args.id, &process, &opts, true)
            })
            .map_err(|e| format!("stdio: {e}"))?;
            (started_pid(r)?, ours)
        };
        Ok(ExecProc {
            id: exec_id.to_string(),
            pid: started.0,
            io: started.1,
            client: None,
            code: None,
        })
    }

    /// The container is gone and its output drained.
    fn finish(mut self) {
        self.log.flush();
        let mut exit = self.exit.clone().unwrap_or_else(|| ExitStatus {
            code: 255,
            finished_at: now(),
            oom_killed: false,
        });
        // Read before delete destroys the cgroup: did the kernel's OOM killer act in it?
        exit.oom_killed = match &self.oom {
            Some(counter) => counter.kills(),
            None => self.container.cgroup.oom_kills(),
        }
        .is_ok_and(|n| n > 0);
        let _ = write_atomic(
            &self.args.exit_file,
            &serde_json::to_vec(&exit).unwrap_or_default(),
        );
        let r = Reply {
            ok: true,
            error: None,
            pid: self.pid,
            running: false,
            exit: Some(exit),
        };
        for w in self.waiters.drain(..) {
            let _ = reply(&w, &r);
        }
        // Attached clients see the end now; then the kernel may unmount the container's mounts
        // (which takes a while: not before anyone waiting is answered).
        self.clients.clear();
        self.execs.clear();
        // Everyone is answered: what is left (unmounting the container's mounts, removing its
        // cgroups, this process's own exit) takes CPU time only when nothing else wants it,
        // not from the client that now goes on (`run --rm` in a loop: the next container).
        crate::enter_idle_class();
        self.mount_ns = None;
        let _ = self.container.delete(true);
        let _ = std::fs::remove_file(&self.args.socket);
    }
}

fn open_mount_ns(pid: i32) -> Option<OwnedFd> {
    let f = File::open(format!("/proc/{pid}/ns/mnt")).ok()?;
    Some(f.into())
}

fn started_pid(r: berth_runtime::Result<ExecResult>) -> Result<i32, String> {
    match r.map_err(|e| format!("exec: {e}"))? {
        ExecResult::Started(pid) | ExecResult::Exited(pid) => Ok(pid),
    }
}

/// One read; None on error. EIO from a pty master whose slave closed is EOF.
fn read_some(f: &mut File, buf: &mut [u8]) -> Option<usize> {
    loop {
        match f.read(buf) {
            Ok(n) => return Some(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

/// One JSON line. Stream bytes after it (attach input) must stay in the socket: peek at what
/// has arrived, then read exactly up to the newline (not one syscall per byte).
fn read_request(stream: &UnixStream) -> Result<Request, String> {
    use nix::sys::socket::{recv, MsgFlags};
    let mut line = Vec::with_capacity(256);
    let mut peeked = [0u8; 4096];
    loop {
        let n = recv(stream.as_raw_fd(), &mut peeked, MsgFlags::MSG_PEEK)
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("read: connection closed before a request".into());
        }
        let (take, done) = match peeked[..n].iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (n, false),
        };
        let start = line.len();
        line.resize(start + take, 0);
        (&*stream)
            .read_exact(&mut line[start..])
            .map_err(|e| format!("read: {e}"))?;
        if done {
            break;
        }
        if line.len() > MAX_REQUEST {
            return Err("request too long".into());
        }
    }
    serde_json::from_slice(&line).map_err(|e| e.to_string())
}

const MAX_REQUEST: usize = 1 << 20;

fn reply(mut stream: &UnixStream, r: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    stream.write_all(&line)
}

fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    // No fsync: the rename keeps readers from seeing half a file if the shim dies, and an exit
    // status need not outlive a host crash (the container does not either).
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    std::fs::rename(&tmp, path)
}
