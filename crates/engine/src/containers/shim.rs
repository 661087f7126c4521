//! The engine's side of a shim: spawning one, and its socket protocol (`berth_shim`).

use std::path::{Path, PathBuf};

use berth_shim::{ExitStatus, Ready, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::{Error, Result};

/// Everything a shim needs to create one container.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub runtime_root: &'a Path,
    pub socket: &'a Path,
    pub log: &'a Path,
    pub exit_file: &'a Path,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Start it at once, its output held for the client that attaches next (`--start-held`).
    pub start_held: bool,
}

impl Launch<'_> {
    /// The shim's command line (after the program name).
    pub(crate) fn flags(&self) -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = Vec::with_capacity(20);
        let mut pair = |flag: &str, value: &std::ffi::OsStr| {
            v.push(flag.into());
            v.push(value.to_owned());
        };
        pair("--id", self.id.as_ref());
        pair("--bundle", self.bundle.as_os_str());
        pair("--runtime-root", self.runtime_root.as_os_str());
        pair("--socket", self.socket.as_os_str());
        pair("--log", self.log.as_os_str());
        pair("--exit-file", self.exit_file.as_os_str());
        pair("--log-max-size", self.log_max_size.to_string().as_ref());
        pair("--log-max-files", self.log_max_files.to_string().as_ref());
        for (on, flag) in [
            (self.tty, "--tty"),
            (self.stdin, "--stdin"),
            (self.stdin_once, "--stdin-once"),
        ] {
            if on {
                v.push(flag.into());
            }
        }
        if self.start_held {
            v.push("--start-held".into());
            v.push(berth_shim::START_HOLD.as_millis().to_string().into());
        }
        v
    }
}

/// Run the shim; it returns once the container is created (its init waits for `start`).
/// A spare shim (see [`Spares`]) is used when there is one, a new one is started otherwise.
pub async fn launch(l: &Launch<'_>, spare: Option<Spare>) -> Result<i32> {
    let flags = l.flags();
    if let Some(spare) = spare {
        match spare.hand_over(&flags).await {
            Handover::Answered(line) => return parse_ready(&line, ""),
            // Not used (gone, or a path that is not UTF-8): start one as usual.
            Handover::Unused(why) => tracing::debug!("spare shim not used: {why}"),
        }
    }
    let out = tokio::process::Command::new(l.binary)
        .args(&flags)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .output()
        .await
        .map_err(|e| Error::internal(format!("run {}", l.binary.display()), e))?;
    parse_ready(
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    )
}

/// The shim's readiness line: the container's pid, or why it could not be created.
fn parse_ready(line: &str, stderr: &str) -> Result<i32> {
    match serde_json::from_str::<Ready>(line.trim()) {
        Ok(Ready { error: None, pid }) => Ok(pid),
        Ok(Ready { error: Some(e), .. }) => Err(Error::Internal(format!(
            "failed to create task for container: {e}"
        ))),
        Err(_) if line.trim().is_empty() && stderr.trim().is_empty() => Err(Error::Internal(
            "the shim died before the container was created".into(),
        )),
        Err(_) => Err(Error::Internal(format!(
            "the shim failed: {}{}",
            line.trim(),
            stderr.trim()
        ))),
    }
}

/// A shim started ahead of time (`berth-shim --standby`): exec'd, linked and detached, waiting
/// on a socket for the flags of the container it will hold.
pub struct Spare {
    control: std::os::unix::net::UnixStream,
    /// The id of the container it is made for (a new random one): on cgroup v1 its launcher
    /// waits in that container's cgroups, so a create that takes this id (`Spares::reserve`)
    /// touches no cgroup. Another container can still use it (its cgroups are renamed).
    id: String,
    /// Sent a sandbox line (`make_sandbox`): it is making, or made, container `id` ahead but
    /// for its process, as the creates of this key (`warm::key`) want it. Only such a create
    /// takes it.
    warm: Option<String>,
    /// Set aside to be made warm (its container's files are being made): nobody takes it.
    making: bool,
}

enum Handover {
    /// The spare took the flags; this is all it answered (its readiness line, or nothing).
    Answered(String),
    /// The spare did not take them; nothing happened.
    Unused(String),
}

impl Spare {
    /// Still waiting: its end of the socket is open and it has said nothing more. (A spare
    /// killed from outside shows as a hang-up or EOF.)
    fn alive(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: self.control.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n == 0
    }

    /// Start one. Returns once the spare has detached (its first process exits at once).
    ///
    /// It starts in the SCHED_IDLE class, so making it (exec, dynamic link, fork) only uses
    /// CPU time nothing else wants: it is made while a container starts. Once made, it goes
    /// back to the normal class at berthd's nice value, which its container inherits, and says
    /// so with one byte; only then is it handed out.
    fn start(binary: &Path, id: String) -> std::io::Result<Spare> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        // SAFETY: getpriority has no memory arguments; errno is cleared first, since -1 is
        // also a valid nice value.
        let nice = unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, 0)
        };
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("--standby")
            .arg("--owner")
            .arg(std::process::id().to_string())
            .arg("--nice")
            .arg(nice.to_string())
            .arg("--cgroup")
            .arg(super::spec::cgroups_path(&id))
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                theirs,
            )))
            .stdout(std::process::Stdio::null());
        // The scheduling class is per thread and a new process inherits its creator's: this
        // (blocking-pool) thread takes SCHED_IDLE for the spawn and goes back after. A
        // pre_exec hook would do it in the child, but would turn the cheap vfork-style spawn
        // into a fork of the whole daemon.
        let status = {
            let _idle = IdleThread::enter();
            cmd.spawn()
        }?
        .wait()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "{} --standby: {status}",
                binary.display()
            )));
        }
        // Handed out only once it left SCHED_IDLE (its one-byte mark): a start must never wait
        // for idle CPU time. Still in SCHED_IDLE after this long, the host is too busy to keep
        // a spare; dropping ours makes it exit.
        let mut mark = [0u8; 1];
        ours.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
        match std::io::Read::read(&mut &ours, &mut mark) {
            Ok(1) if mark[0] == b'.' => {}
            Ok(_) => {
                return Err(std::io::Error::other(
                    "the spare shim exited before it was ready",
                ))
            }
            Err(e) => return Err(e),
        }
        ours.set_read_timeout(None)?;
        Ok(Spare {
            control: ours,
            id,
            warm: None,
            making: false,
        })
    }

    /// Neither warm nor being made so: for any create.
    fn is_cold(&self) -> bool {
        self.warm.is_none() && !self.making
    }

    /// Ask it to make its container ahead, as `flags` describe it, for the creates of `key`
    /// (see `berth-shim`'s sandbox line). It answers nothing: a sandbox it could not make
    /// shows as a container created as usual.
    pub fn make_sandbox(&mut self, flags: &[std::ffi::OsString], key: String) -> Result<()> {
        let line =
            flags_line(flags).ok_or_else(|| Error::Internal("a path is not UTF-8".into()))?;
        std::io::Write::write_all(&mut &self.control, b"sandbox ")
            .and_then(|()| std::io::Write::write_all(&mut &self.control, &line))
            .map_err(|e| Error::internal("write to spare shim", e))?;
        self.warm = Some(key);
        Ok(())
    }

    async fn hand_over(self, flags: &[std::ffi::OsString]) -> Handover {
        let Some(line) = flags_line(flags) else {
            return Handover::Unused("a path is not UTF-8".into());
        };
        let stream = match self
            .control
            .set_nonblocking(true)
            .and_then(|()| UnixStream::from_std(self.control))
        {
            Ok(s) => s,
            Err(e) => return Handover::Unused(e.to_string()),
        };
        let mut stream = stream;
        // A spare that died (killed, or its berthd restarted) refuses the write: EPIPE.
        if let Err(e) = stream.write_all(&line).await {
            return Handover::Unused(format!("write to spare shim: {e}"));
        }
        // One line, not EOF: the container's process holds the socket until it execs.
        let answer = read_reply_line(&mut stream).await.unwrap_or_default();
        Handover::Answered(String::from_utf8_lossy(&answer).into_owned())
    }
}

/// The shim's flags as the line a spare reads: a JSON array and a newline. None when one is
/// not UTF-8.
fn flags_line(flags: &[std::ffi::OsString]) -> Option<Vec<u8>> {
    let flags = flags
        .iter()
        .map(|f| f.to_str())
        .collect::<Option<Vec<&str>>>()?;
    let mut line = serde_json::to_vec(&flags).ok()?;
    line.push(b'\n');
    Some(line)
}

/// The calling thread in SCHED_IDLE until dropped, then back in its own class.
pub(crate) struct IdleThread(Option<libc::c_int>);

impl IdleThread {
    pub(crate) fn enter() -> IdleThread {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; param is a valid sched_param.
        let before = unsafe { libc::sched_getscheduler(0) };
        let ok =
            before >= 0 && unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
        IdleThread(ok.then_some(before))
    }
}

impl Drop for IdleThread {
    fn drop(&mut self) {
        if let Some(policy) = self.0 {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: as above. (berthd's threads run in a non-realtime class: priority 0.)
            unsafe { libc::sched_setscheduler(0, policy, &param) };
        }
    }
}

/// How many spare shims are kept ready. Making one takes longer than a `run --rm` (an exec in
/// SCHED_IDLE, and on cgroup v1 its launcher's move into a spare cgroup waits for an RCU grace
/// period): with one, a tight loop of starts found none ready about one time in seven. A loop
/// of runs that each take a warm spare (see `warm`) uses one per run: one is warm while two
/// are on their way.
const SPARES: usize = 3;

/// How long after handing a spare out the next is made at the latest (see `refill_soon`):
/// longer than a `run --rm` of a short program takes here, whose removal refills sooner.
const REFILL_DELAY: std::time::Duration = std::time::Duration::from_millis(25);

/// Keeps `SPARES` spare shims ready; `take` hands one out, `refill` makes the next ones in the
/// background.
pub struct Spares {
    binary: PathBuf,
    ready: std::sync::Mutex<Vec<Spare>>,
    /// Spares taken by a create for the container that got their id, until its process is
    /// made (or the container goes).
    reserved: std::sync::Mutex<std::collections::HashMap<String, Spare>>,
    /// Spares being started.
    starting: std::sync::atomic::AtomicUsize,
    on_ready: std::sync::Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl Spares {
    pub fn new(binary: PathBuf) -> Spares {
        Spares {
            binary,
            ready: std::sync::Mutex::new(Vec::new()),
            reserved: std::sync::Mutex::new(std::collections::HashMap::new()),
            starting: std::sync::atomic::AtomicUsize::new(0),
            on_ready: std::sync::Mutex::new(None),
        }
    }

    /// Take a spare for a container about to be created, which gets the spare's id: its
    /// process then is made in cgroups made ahead (see `Spare::id`), and by a spare made warm
    /// for `key` (the create's `warm::key`) even in a sandbox made ahead. Returns the id, and
    /// whether that spare is warm (its container's files are made: see `Engine::warm_next`).
    /// None: none is ready.
    pub fn reserve(&self, key: Option<&str>) -> Option<(String, bool)> {
        let spare = {
            let mut ready = crate::lock(&self.ready);
            ready.retain(Spare::alive);
            let warm = key.and_then(|k| ready.iter().position(|s| s.warm.as_deref() == Some(k)));
            warm.or_else(|| ready.iter().position(Spare::is_cold))
                .map(|i| ready.remove(i))
        }?;
        let id = spare.id.clone();
        let warm = spare.warm.is_some();
        crate::lock(&self.reserved).insert(id.clone(), spare);
        Some((id, warm))
    }

    /// The spare reserved for container `id`, else any ready one that is not warm.
    pub fn take_for(&self, id: &str) -> Option<Spare> {
        let reserved = crate::lock(&self.reserved).remove(id);
        reserved.filter(Spare::alive).or_else(|| self.take())
    }

    /// Let go of the spare reserved for `id` (its create failed, or the container went before
    /// its process was made): it exits, its cgroups with it.
    pub fn release(&self, id: &str) {
        drop(crate::lock(&self.reserved).remove(id));
    }

    /// A ready spare that is not warm (a warm one is only for the create it was made for).
    pub fn take(&self) -> Option<Spare> {
        // The oldest first.
        let mut ready = crate::lock(&self.ready);
        ready.retain(Spare::alive);
        let spare = ready
            .iter()
            .position(Spare::is_cold)
            .map(|i| ready.remove(i));
        drop(ready);
        if spare.is_none() {
            tracing::debug!("no spare shim ready: a shim is exec'd");
        }
        spare
    }

    /// Set a ready spare that is not warm aside to be made warm; its id. The oldest is kept
    /// for the creates that want no sandbox.
    pub fn set_aside_to_warm(&self) -> Option<String> {
        let mut ready = crate::lock(&self.ready);
        ready.retain(Spare::alive);
        let spare = ready.iter_mut().rev().find(|s| s.is_cold())?;
        spare.making = true;
        Some(spare.id.clone())
    }

    /// The spare set aside as `id`: sent `flags` to make its sandbox for `key` (`None`: back
    /// to the others, not warm). False when it is gone (it died).
    pub fn warm_set_aside(&self, id: &str, made: Option<(&[std::ffi::OsString], String)>) -> bool {
        let mut ready = crate::lock(&self.ready);
        let Some(i) = ready.iter().position(|s| s.id == id && s.making) else {
            return false;
        };
        ready[i].making = false;
        let Some((flags, key)) = made else {
            return true;
        };
        match ready[i].make_sandbox(flags, key) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("spare shim not made warm: {e}");
                ready.remove(i);
                false
            }
        }
    }

    /// Whether the warm spare `id` is still ready (not taken, not dead).
    pub fn is_warm_and_ready(&self, id: &str) -> bool {
        let mut ready = crate::lock(&self.ready);
        ready.retain(Spare::alive);
        ready.iter().any(|s| s.id == id && s.warm.is_some())
    }

    /// Take the warm spare `id` out, to let it go (its sandbox goes with it).
    pub fn remove_warm(&self, id: &str) -> Option<Spare> {
        let mut ready = crate::lock(&self.ready);
        let i = ready.iter().position(|s| s.id == id && s.warm.is_some())?;
        Some(ready.remove(i))
    }

    /// Set the callback run each time a new spare is ready (berthd makes one warm with it).
    pub fn on_ready(&self, f: Box<dyn Fn() + Send + Sync>) {
        *crate::lock(&self.on_ready) = Some(f);
    }

    /// After a spare was handed out: the next one is made once that start's work is over —
    /// when its container goes (the removal calls `refill`) or after `REFILL_DELAY` — not next
    /// to it: making a spare is an exec and a network namespace, ~1 ms each of kernel work that
    /// is not preempted even in SCHED_IDLE, in the middle of the start's hand-offs. With none
    /// left, at once. Needs a tokio runtime.
    pub fn refill_soon(self: &std::sync::Arc<Self>) {
        let none_left = {
            let mut ready = crate::lock(&self.ready);
            ready.retain(Spare::alive);
            ready.is_empty()
        };
        if none_left {
            return self.refill();
        }
        let spares = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REFILL_DELAY).await;
            spares.refill();
        });
    }

    /// Start spares until `SPARES` are ready or starting, side by side: most of a spare's
    /// making is waiting (for its launcher's move into a cgroup, an RCU grace period), and a
    /// loop of runs that each take a warm spare needs one made per run. Needs a tokio runtime.
    pub fn refill(self: &std::sync::Arc<Self>) {
        use std::sync::atomic::Ordering;
        let missing = {
            let mut ready = crate::lock(&self.ready);
            ready.retain(Spare::alive);
            let have = ready.len() + self.starting.load(Ordering::Acquire);
            let missing = SPARES.saturating_sub(have);
            self.starting.fetch_add(missing, Ordering::AcqRel);
            missing
        };
        for _ in 0..missing {
            let spares = self.clone();
            tokio::task::spawn_blocking(move || {
                let started = Spare::start(&spares.binary, crate::ids::new_id());
                // Counted ready before it stops counting as starting: no extra one is made.
                match started {
                    Ok(s) => crate::lock(&spares.ready).push(s),
                    Err(e) => tracing::warn!("start a spare shim: {e}"),
                }
                spares.starting.fetch_sub(1, Ordering::AcqRel);
                if let Some(f) = crate::lock(&spares.on_ready).as_ref() {
                    f();
                }
            });
        }
    }
}

/// Connect, send `req`, read the reply line; the stream stays usable for attach/exec.
pub async fn request(socket: &Path, req: &Request) -> Result<(Reply, UnixStream)> {
    let mut s = UnixStream::connect(socket)
        .await
        .map_err(|e| Error::internal(format!("connect to shim {}", socket.display()), e))?;
    let mut line = serde_json::to_vec(req).map_err(|e| Error::internal("encode request", e))?;
    line.push(b'\n');
    s.write_all(&line)
        .await
        .map_err(|e| Error::internal("write to shim", e))?;
    let buf = read_reply_line(&mut s)
        .await
        .map_err(|e| Error::internal("read shim reply", e))?;
    let reply: Reply =
        serde_json::from_slice(&buf).map_err(|e| Error::internal("parse shim reply", e))?;
    Ok((reply, s))
}

const MAX_REPLY: usize = 64 * 1024;

/// The reply line, without consuming the attach/exec stream bytes that may follow it: peek at
/// what has arrived, then read exactly up to the newline (two syscalls, not one per byte).
async fn read_reply_line(s: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    use std::io::{Error as IoError, ErrorKind};
    use std::os::fd::AsRawFd;
    let mut line = Vec::with_capacity(256);
    let mut peeked = vec![0u8; 4096];
    loop {
        s.readable().await?;
        let fd = s.as_raw_fd();
        let n = match s.try_io(tokio::io::Interest::READABLE, || {
            nix::sys::socket::recv(fd, &mut peeked, nix::sys::socket::MsgFlags::MSG_PEEK)
                .map_err(IoError::from)
        }) {
            Ok(0) => return Err(IoError::from(ErrorKind::UnexpectedEof)),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        // Up to and including the newline when it has arrived; otherwise all of it, and wait.
        let (take, done) = match peeked[..n].iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (n, false),
        };
        let start = line.len();
        line.resize(start + take, 0);
        s.read_exact(&mut line[start..]).await?;
        if done {
            line.pop();
            return Ok(line);
        }
        if line.len() > MAX_REPLY {
            return Err(IoError::new(ErrorKind::InvalidData, "shim reply too long"));
        }
    }
}

/// A request whose reply must be ok.
pub async fn call(socket: &Path, req: &Request) -> Result<(Reply, UnixStream)> {
    let (reply, s) = request(socket, req).await?;
    if !reply.ok {
        return Err(Error::Internal(
            reply.error.unwrap_or_else(|| "the shim refused".into()),
        ));
    }
    Ok((reply, s))
}

/// What the shim left behind when it finished.
pub fn read_exit_file(path: &Path) -> Option<ExitStatus> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The file names of one container's shim.
pub struct Paths {
    pub socket: PathBuf,
    pub exit_file: PathBuf,
}
