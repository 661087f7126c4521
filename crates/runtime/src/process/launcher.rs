//! A launcher: a helper process, made ahead of time and already placed in a spare cgroup v1,
//! that clones the container's process for its creator, so the process is born in its cgroups.
//!
//! Why: on cgroup v1 moving a process into a cgroup (a write to cgroup.procs) takes the global
//! cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period: 8–15 ms on a
//! small VM, on the critical path of every container start. A child inherits its parent's
//! cgroups at clone time without that lock, so the launcher is moved once, early (a spare shim
//! does it while it waits for work). When the spare's creator knows the container's id ahead
//! (berthd picks it for the spare), the launcher goes straight into the container's cgroups,
//! cgroup2 side of a hybrid host included, and the create touches no cgroup. Otherwise it goes
//! into `<parent>/berth-spare-<pid>`; at create those directories are renamed to the
//! container's (v1 allows a rename within the same parent) and on a hybrid host the clone uses
//! clone3's CLONE_INTO_CGROUP, which only takes that lock for reading. (Renames and
//! CLONE_INTO_CGROUP take the kernel's cgroup_mutex, which a move holds for its whole grace
//! period: a spare being made meanwhile delays them by up to one.)
//!
//! The launcher shares its creator's memory, file table, working directory and signal
//! handlers (clone with CLONE_VM | CLONE_FILES | CLONE_FS | CLONE_SIGHAND, a thread in all but
//! its cgroups), so the process it clones is the copy its creator would have made at that
//! moment: the same fds (the sync socket, stdio, the exec fifo), the same memory (the parsed
//! spec, the closure to run). With CLONE_PARENT that process is its creator's child, reaped by
//! it as before. The creator blocks while the launcher works, so they never run Rust code at
//! the same time; while idle the launcher only sits in read(2) with every signal blocked.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, Ordering};

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::spawn::{CloneArgs, CLONE_INTO_CGROUP};
use crate::cgroups::SpareCgroup;
use crate::error::{Error, Result};

/// The launcher's stack; the cloned process starts on (a copy of) it and runs the whole
/// container setup there, so it is as large as a main thread's. Untouched pages cost nothing.
const STACK_SIZE: usize = 8 << 20;

/// What the creator asks for, written before the request byte and read by the launcher after.
#[repr(C)]
struct Request {
    flags: u64,
    /// A cgroup2 directory fd for CLONE_INTO_CGROUP, or -1.
    cgroup_fd: i64,
    /// `*mut &mut dyn FnMut()`: what the cloned process runs (it must not return).
    child: *mut core::ffi::c_void,
    /// The creator's signal mask, which the cloned process takes back (the launcher blocks all).
    mask: libc::sigset_t,
}

/// The launcher's answer: the clone's return value and errno.
#[repr(C)]
struct Answer {
    rc: i64,
    errno: i32,
    /// Whether clone3 put the process into the cgroup2 directory (false: the kernel has no
    /// CLONE_INTO_CGROUP and a plain clone was made).
    into_cgroup2: bool,
}

/// A process cloned by a launcher.
#[derive(Debug)]
pub struct Launched {
    pub pid: Pid,
    /// Born in the cgroup2 directory it was given.
    pub into_cgroup2: bool,
}

/// Memory the creator and the launcher share (the launcher gets a pointer to it).
#[repr(C)]
struct Shared {
    request_rd: RawFd,
    request: Request,
    answer: Answer,
}

/// `Answer::rc` until the launcher answered.
const NO_ANSWER: i64 = i64::MIN;

/// A launcher process and its spare cgroup, ready for one clone.
#[derive(Debug)]
pub struct Launcher {
    pid: Pid,
    request_wr: Option<OwnedFd>,
    /// The launcher's end, kept open here until it exited (the file table is shared: closing
    /// it here would close it for the launcher too).
    request_rd: Option<OwnedFd>,
    shared: *mut Shared,
    stack: *mut core::ffi::c_void,
    cgroup: Option<SpareCgroup>,
    exited: bool,
}

// SAFETY: the raw pointers are owned by the Launcher (freed in Drop after the launcher exited);
// it is used from one thread at a time.
unsafe impl Send for Launcher {}

impl Launcher {
    /// Start a launcher and move it into a spare cgroup below `cgroup_parent` (relative to the
    /// caller's own cgroups, as a relative cgroupsPath is), renamed to the container's at
    /// create. Only for cgroup v1 hosts (hybrid included): pure v2 clones into the cgroup
    /// directly. Blocks for the move (one grace period): call it off the critical path. Must
    /// be called from a single-threaded process.
    pub fn prepare(cgroup_parent: &str) -> Result<Launcher> {
        let mut launcher = Launcher::start()?;
        let name = format!(
            "{}/berth-spare-{}",
            cgroup_parent.trim_end_matches('/'),
            launcher.pid
        );
        launcher.cgroup = Some(SpareCgroup::prepare(&name, launcher.pid.as_raw(), false)?);
        Ok(launcher)
    }

    /// As `prepare`, in the cgroup of the container it will clone (`cgroups_path`, known
    /// ahead): its create then touches no cgroup at all — no rename, and on a hybrid host no
    /// CLONE_INTO_CGROUP either (the launcher joins the cgroup2 directory now too). Both take
    /// the kernel's cgroup_mutex, which a spare being made elsewhere holds through a whole RCU
    /// grace period while it moves its launcher.
    pub fn prepare_named(cgroups_path: &str) -> Result<Launcher> {
        let mut launcher = Launcher::start()?;
        launcher.cgroup = Some(SpareCgroup::prepare(
            cgroups_path,
            launcher.pid.as_raw(),
            true,
        )?);
        Ok(launcher)
    }

    /// The spare cgroup the launcher is in.
    pub fn cgroup(&self) -> Option<&SpareCgroup> {
        self.cgroup.as_ref()
    }

    /// The spare cgroup was taken over: not ours to remove any more, but for a cgroup2
    /// directory that was not (`unified_taken` false), removed once the launcher is gone.
    pub fn forget_cgroup(&mut self, unified_taken: bool) {
        self.cgroup = self
            .cgroup
            .take()
            .and_then(|c| c.left_after_adoption(unified_taken));
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    fn start() -> Result<Launcher> {
        let (request_rd, request_wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::sys("launcher pipe", e))?;
        let shared = Box::into_raw(Box::new(Shared {
            request_rd: request_rd.as_raw_fd(),
            request: Request {
                flags: 0,
                cgroup_fd: -1,
                child: std::ptr::null_mut(),
                // SAFETY: an all-zero sigset_t is a valid (empty) set.
                mask: unsafe { std::mem::zeroed() },
            },
            answer: Answer {
                rc: NO_ANSWER,
                errno: 0,
                into_cgroup2: false,
            },
        }));
        // SAFETY: a fresh private anonymous mapping; checked below.
        let stack = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if stack == libc::MAP_FAILED {
            // SAFETY: from Box::into_raw above, not shared with anyone yet.
            drop(unsafe { Box::from_raw(shared) });
            return Err(Error::sys("launcher stack", nix::errno::Errno::last()));
        }
        // The lowest page stays a guard: an overflow faults instead of writing below.
        // SAFETY: within the mapping just made.
        unsafe { libc::mprotect(stack, 4096, libc::PROT_NONE) };
        let flags = libc::CLONE_VM | libc::CLONE_FILES | libc::CLONE_FS | libc::CLONE_SIGHAND;
        // SAFETY: the stack is ours and large; `launcher_main` only makes raw syscalls until
        // asked to clone, and `shared` outlives the launcher (freed after it exited).
        let pid = unsafe {
            libc::clone(
                launcher_main,
                (stack as *mut u8).add(STACK_SIZE) as *mut core::ffi::c_void,
                flags | libc::SIGCHLD,
                shared as *mut core::ffi::c_void,
            )
        };
        if pid < 0 {
            let e = nix::errno::Errno::last();
            // SAFETY: no launcher was made: nothing else uses the stack or `shared`.
            unsafe {
                libc::munmap(stack, STACK_SIZE);
                drop(Box::from_raw(shared));
            }
            return Err(Error::sys("clone the launcher", e));
        }
        Ok(Launcher {
            pid: Pid::from_raw(pid),
            request_wr: Some(request_wr),
            request_rd: Some(request_rd),
            shared,
            stack,
            cgroup: None,
            exited: false,
        })
    }

    /// Clone a process with `flags` (namespaces) from the launcher, as the caller's child,
    /// running `child` (which must not return) on a copy of the caller's memory and fds as
    /// they are now. `cgroup2` adds CLONE_INTO_CGROUP. The launcher exits afterwards.
    pub fn clone_child(
        mut self,
        flags: CloneFlags,
        cgroup2: Option<BorrowedFd>,
        child: &mut dyn FnMut(),
    ) -> Result<Launched> {
        let mut child_ref: &mut dyn FnMut() = child;
        // SAFETY: the launcher reads `request` only after the request byte, and the caller
        // reads `answer` only after the launcher exited.
        unsafe {
            let req = &mut (*self.shared).request;
            req.flags = u64::from(flags.bits() as u32);
            req.cgroup_fd = cgroup2.map_or(-1, |fd| i64::from(fd.as_raw_fd()));
            req.child = &mut child_ref as *mut &mut dyn FnMut() as *mut core::ffi::c_void;
            libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut req.mask);
        }
        fence(Ordering::SeqCst);
        let Some(request_wr) = self.request_wr.take() else {
            return Err(Error::Other("the launcher was used already".into()));
        };
        let sent = nix::unistd::write(&request_wr, b"c");
        drop(request_wr);
        if let Err(e) = sent {
            return Err(Error::sys("ask the launcher to clone", e));
        }
        // It answers in `shared`, then exits.
        self.reap();
        fence(Ordering::SeqCst);
        // SAFETY: written by the launcher, which has exited.
        let answer = unsafe { &(*self.shared).answer };
        if answer.rc == NO_ANSWER {
            return Err(Error::Other("the launcher died before it cloned".into()));
        }
        if answer.rc < 0 {
            let what = if cgroup2.is_some() {
                "clone3 from the launcher"
            } else {
                "clone from the launcher"
            };
            return Err(Error::sys(
                format!("{what} ({flags:?})"),
                nix::errno::Errno::from_raw(answer.errno),
            ));
        }
        Ok(Launched {
            pid: Pid::from_raw(answer.rc as i32),
            into_cgroup2: answer.into_cgroup2,
        })
    }

    /// Let the launcher go (EOF on its request pipe) and wait for it.
    fn reap(&mut self) {
        if self.exited {
            return;
        }
        self.request_wr = None;
        while let Err(nix::errno::Errno::EINTR) =
            waitpid(self.pid, Some(nix::sys::wait::WaitPidFlag::__WALL))
        {}
        self.exited = true;
        self.request_rd = None;
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.reap();
        // SAFETY: the launcher has exited: nothing runs on the stack or reads `shared` now.
        unsafe {
            libc::munmap(self.stack, STACK_SIZE);
            drop(Box::from_raw(self.shared));
        }
        if let Some(cg) = self.cgroup.take() {
            cg.remove();
        }
    }
}

/// The launcher process. Only raw syscalls until the cloned child takes over: it shares the
/// creator's memory, TLS included, and runs while the creator does.
extern "C" fn launcher_main(arg: *mut core::ffi::c_void) -> core::ffi::c_int {
    let shared = arg as *mut Shared;
    // SAFETY: raw syscalls on the launcher itself; `shared` stays valid until it exits.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const libc::sigset_t,
            std::ptr::null_mut::<libc::sigset_t>(),
            std::mem::size_of::<libc::c_ulong>(),
        );
        // Gone with its creator (the file table it shares keeps the request pipe open).
        libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::syscall(
            libc::SYS_prctl,
            libc::PR_SET_NAME,
            c"berth-launcher".as_ptr(),
        );
        let mut byte = 0u8;
        let n = libc::syscall(
            libc::SYS_read,
            (*shared).request_rd,
            &mut byte as *mut u8,
            1usize,
        );
        if n != 1 {
            libc::syscall(libc::SYS_exit, 0);
        }
        fence(Ordering::SeqCst);
        let req = &(*shared).request;
        let mut into_cgroup2 = false;
        let mut rc = -1;
        if req.cgroup_fd >= 0 {
            let args = CloneArgs {
                flags: req.flags | libc::CLONE_PARENT as u64 | CLONE_INTO_CGROUP,
                // With CLONE_PARENT the exit signal is ours (SIGCHLD); clone3 wants 0 here.
                exit_signal: 0,
                cgroup: req.cgroup_fd as u64,
                ..CloneArgs::default()
            };
            rc = libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            );
            into_cgroup2 = rc >= 0;
            // Only a kernel that lacks clone3 or CLONE_INTO_CGROUP (or a seccomp filter that
            // denies clone3) is worth a plain clone; the creator then joins cgroup2 itself.
            if rc < 0
                && !matches!(
                    *libc::__errno_location(),
                    libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EOPNOTSUPP | libc::EPERM
                )
            {
                (*shared).answer = Answer {
                    rc,
                    errno: *libc::__errno_location(),
                    into_cgroup2,
                };
                libc::syscall(libc::SYS_exit, 0);
            }
        }
        if rc < 0 {
            rc = libc::syscall(
                libc::SYS_clone,
                req.flags as libc::c_ulong | libc::CLONE_PARENT as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            );
        }
        if rc == 0 {
            // The container's process: the creator's mask back, then its work.
            libc::pthread_sigmask(libc::SIG_SETMASK, &req.mask, std::ptr::null_mut());
            let child = &mut *(req.child as *mut &mut dyn FnMut());
            child();
            libc::_exit(127);
        }
        (*shared).answer = Answer {
            rc,
            errno: if rc < 0 { *libc::__errno_location() } else { 0 },
            into_cgroup2,
        };
        fence(Ordering::SeqCst);
        libc::syscall(libc::SYS_exit, 0);
    }
    0
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::cgroups::{self, Version};

    /// Root on a cgroup v1 host (hybrid included), else why not.
    fn v1_root() -> Result<(), String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("needs root".into());
        }
        if cgroups::host_version() != Version::V1 {
            return Err("needs a cgroup v1 host".into());
        }
        Ok(())
    }

    fn skip_or_fail(why: String) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: {why}"
        );
        eprintln!("skipped: {why}");
    }

    #[test]
    fn a_launcher_clones_into_its_spare_cgroup_renamed_to_the_containers() {
        if let Err(why) = v1_root() {
            return skip_or_fail(why);
        }
        let parent = format!("berth-launcher-test-{}", std::process::id());
        // A spare left by a launcher that is gone: swept when the next one is prepared.
        let stale = Path::new("/sys/fs/cgroup/pids")
            .join(&parent)
            .join("berth-spare-2147483646");
        std::fs::create_dir_all(&stale).expect("mkdir stale spare");

        let launcher = Launcher::prepare(&parent).expect("prepare a launcher");
        assert!(!stale.exists(), "the stale spare was not swept");
        let spare_dirs = launcher.cgroup().expect("spare cgroup").dirs().to_vec();
        let in_spare = std::fs::read_to_string(spare_dirs[0].join("cgroup.procs")).unwrap();
        assert_eq!(in_spare.trim(), launcher.pid().to_string());

        let container = cgroups::open(Some(&format!("{parent}/c1")), "c1").expect("open");
        let mut launcher = launcher;
        let adopted = container
            .adopt(launcher.cgroup().expect("spare"))
            .expect("adopt")
            .expect("the spare lines up with a sibling");
        launcher.forget_cgroup(adopted.spare_unified_taken);
        assert!(spare_dirs.iter().all(|d| !d.exists()), "renamed away");
        let launcher_pid = launcher.pid();
        let launched = clone_pausing(launcher, adopted.clone_into.as_ref());
        let pid = launched.pid;
        let own_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let procs = std::fs::read_to_string(container.dirs()[0].join("cgroup.procs")).unwrap();
        let launcher_gone = !Path::new(&format!("/proc/{launcher_pid}")).exists();
        kill_and_remove(pid, container.as_ref());

        // Born in the container's cgroup in every hierarchy, cgroup2 included, as our child.
        let want = format!("/{parent}/c1");
        for line in own_cgroup.lines() {
            if line.ends_with(":/") && !line.starts_with("0::") {
                continue; // a hierarchy without our parent (none on a standard host)
            }
            assert!(line.ends_with(&want), "{line} in\n{own_cgroup}");
        }
        assert_eq!(launched.into_cgroup2, adopted.clone_into.is_some());
        let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:"));
        assert_eq!(
            ppid.map(str::trim),
            Some(std::process::id().to_string().as_str())
        );
        assert_eq!(
            procs.trim(),
            pid.to_string(),
            "only the new process is in it"
        );
        assert!(launcher_gone, "the launcher exits after its one clone");
    }

    /// Clone, from `launcher`, a process that only waits to be killed (the test harness is
    /// multi-threaded), into the cgroup2 directory `clone_into` when given.
    fn clone_pausing(launcher: Launcher, clone_into: Option<&PathBuf>) -> Launched {
        let cgroup2 = clone_into.map(|dir| {
            nix::fcntl::open(
                dir.as_path(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
                nix::sys::stat::Mode::empty(),
            )
            .expect("open cgroup2 dir")
        });
        launcher
            .clone_child(
                CloneFlags::empty(),
                cgroup2.as_ref().map(|f| f.as_fd()),
                &mut || loop {
                    // SAFETY: pause is async-signal-safe.
                    unsafe { libc::pause() };
                },
            )
            .expect("clone from the launcher")
    }

    /// Kill the cloned process, then remove the container's cgroups and their parents.
    fn kill_and_remove(pid: Pid, container: &dyn cgroups::Manager) {
        crate::process::spawn::KillOnDrop(Some(pid)).kill_now();
        let _ = container.destroy();
        for d in container.dirs() {
            if let Some(p) = d.parent() {
                let _ = std::fs::remove_dir(p);
            }
        }
    }

    /// The cgroup of `pid` in each hierarchy, from /proc/<pid>/cgroup (hierarchy id, path).
    fn cgroups_of(pid: i32) -> Vec<(String, String)> {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ':');
                let id = parts.next()?;
                let _controllers = parts.next()?;
                Some((id.to_string(), parts.next()?.to_string()))
            })
            .collect()
    }

    #[test]
    fn a_launcher_named_for_its_container_clones_into_it_without_renames() {
        if let Err(why) = v1_root() {
            return skip_or_fail(why);
        }
        let parent = format!("berth-launcher-named-{}", std::process::id());
        let path = format!("{parent}/c1");
        let launcher = Launcher::prepare_named(&path).expect("prepare a launcher");
        let lpid = launcher.pid().as_raw();
        let spare = launcher.cgroup().expect("spare cgroup");
        let dirs = spare.dirs().to_vec();
        let unified = spare.unified().map(Path::to_path_buf);
        // Already in the container's cgroups: every hierarchy, cgroup2 of a hybrid host too.
        let want = format!("/{parent}/c1");
        let before = cgroups_of(lpid);
        let inodes: Vec<u64> = dirs
            .iter()
            .map(|d| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(d).unwrap()))
            .collect();

        let container = cgroups::open(Some(&path), "c1").expect("open");
        let hybrid = container.dirs().len() > dirs.len();
        let mut launcher = launcher;
        let adopted = container
            .adopt(launcher.cgroup().expect("spare"))
            .expect("adopt")
            .expect("the spare is the container's cgroup");
        launcher.forget_cgroup(adopted.spare_unified_taken);
        let after: Vec<u64> = dirs
            .iter()
            .map(|d| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(d).unwrap()))
            .collect();
        let pid = clone_pausing(launcher, None).pid;
        let born_in = cgroups_of(pid.as_raw());
        kill_and_remove(pid, container.as_ref());

        for (id, path) in &before {
            let in_parent = path != "/" || id == "0";
            assert!(
                !in_parent || path.ends_with(&want),
                "launcher in {id}:{path}"
            );
        }
        assert_eq!(inodes, after, "the spare's directories were not replaced");
        assert_eq!(
            adopted.clone_into, None,
            "nothing to clone into: the launcher is in the container's cgroup2 directory"
        );
        assert_eq!(unified.is_some(), hybrid, "cgroup2 joined on a hybrid host");
        assert!(adopted.spare_unified_taken);
        for (id, path) in &born_in {
            if path == "/" && id != "0" {
                continue; // a hierarchy without our parent (none on a standard host)
            }
            assert!(path.ends_with(&want), "born in {id}:{path}");
        }
    }

    #[test]
    fn a_named_spare_used_for_another_container_is_renamed_and_leaves_nothing() {
        if let Err(why) = v1_root() {
            return skip_or_fail(why);
        }
        let parent = format!("berth-launcher-other-{}", std::process::id());
        let launcher = Launcher::prepare_named(&format!("{parent}/c1")).expect("prepare");
        let spare = launcher.cgroup().expect("spare");
        let spare_dirs: Vec<PathBuf> = spare
            .dirs()
            .iter()
            .cloned()
            .chain(spare.unified().map(Path::to_path_buf))
            .collect();
        let container = cgroups::open(Some(&format!("{parent}/c2")), "c2").expect("open");
        let mut launcher = launcher;
        let adopted = container
            .adopt(launcher.cgroup().expect("spare"))
            .expect("adopt")
            .expect("a sibling: renamed");
        launcher.forget_cgroup(adopted.spare_unified_taken);
        let pid = clone_pausing(launcher, adopted.clone_into.as_ref()).pid;
        let left: Vec<&PathBuf> = spare_dirs.iter().filter(|d| d.exists()).collect();
        let born_in = cgroups_of(pid.as_raw());
        kill_and_remove(pid, container.as_ref());
        assert!(
            left.is_empty(),
            "the spare's directories are left: {left:?}"
        );
        assert!(!adopted.spare_unified_taken);
        let want = format!("/{parent}/c2");
        assert!(
            born_in
                .iter()
                .any(|(id, p)| id != "0" && p.ends_with(&want)),
            "{born_in:?}"
        );
    }

    #[test]
    fn a_spare_cgroup_goes_with_an_unused_launcher() {
        if let Err(why) = v1_root() {
            return skip_or_fail(why);
        }
        let parent = format!("berth-launcher-unused-{}", std::process::id());
        let launcher = Launcher::prepare(&parent).expect("prepare a launcher");
        let dirs = launcher.cgroup().expect("spare").dirs().to_vec();
        let pid = launcher.pid();
        assert!(dirs.iter().all(|d| d.is_dir()));
        // Another parent: the spare does not line up, nothing is renamed.
        let elsewhere = cgroups::open(Some("berth-launcher-elsewhere/c1"), "c1").expect("open");
        assert!(elsewhere
            .adopt(launcher.cgroup().expect("spare"))
            .expect("adopt")
            .is_none());
        drop(launcher);
        let gone = dirs.iter().all(|d| !d.exists());
        let exited = !Path::new(&format!("/proc/{pid}")).exists();
        for d in &dirs {
            if let Some(p) = d.parent() {
                let _ = std::fs::remove_dir(p);
            }
        }
        assert!(gone, "spare cgroup left behind: {dirs:?}");
        assert!(exited, "launcher {pid} still there");
    }
}
