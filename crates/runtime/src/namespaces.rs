//! Namespaces: which to create, which to join by path, uid/gid maps and time offsets.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespace, LinuxNamespaceType};

use crate::error::{Context, Error, Result};

/// Order in which namespaces are joined: user first (it decides what we may do in the others),
/// mount last (after it, host paths are gone).
const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Mount,
];

/// The name of a namespace type under /proc/PID/ns/.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(t as i32)
}

/// The namespaces of a spec, split into those to create and those to join.
#[derive(Debug, Default)]
pub struct NamespacePlan {
    /// Namespaces created fresh (no path).
    pub new: Vec<LinuxNamespaceType>,
    /// Namespaces joined by path: opened up front, while host paths are still reachable.
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
}

impl NamespacePlan {
    pub fn from_spec(linux: Option<&Linux>) -> Result<NamespacePlan> {
        let mut plan = NamespacePlan::default();
        let namespaces: &[LinuxNamespace] =
            linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]);
        for (i, ns) in namespaces.iter().enumerate() {
            match ns.path() {
                None => plan.new.push(ns.typ()),
                Some(path) => {
                    let fd = open_ns(path, ns.typ()).map_err(|e| {
                        Error::config(format!("linux.namespaces[{i}].path"), e.to_string())
                    })?;
                    plan.join.push((ns.typ(), fd));
                }
            }
        }
        plan.join
            .sort_by_key(|(t, _)| JOIN_ORDER.iter().position(|o| o == t).unwrap_or(usize::MAX));
        Ok(plan)
    }

    /// Join `made` (a network namespace made ahead, loopback up) instead of creating one, when
    /// the spec asks for a new one and no user namespace (one made by the host's user namespace
    /// would not be the container's to configure). Otherwise `made` is dropped.
    pub fn use_made_network(&mut self, made: OwnedFd) {
        if !self.creates(LinuxNamespaceType::Network) || self.has(LinuxNamespaceType::User) {
            return;
        }
        self.new.retain(|t| *t != LinuxNamespaceType::Network);
        self.join.push((LinuxNamespaceType::Network, made));
        self.join
            .sort_by_key(|(t, _)| JOIN_ORDER.iter().position(|o| o == t).unwrap_or(usize::MAX));
    }

    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(&t)
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.join.iter().any(|(j, _)| *j == t)
    }

    /// Is `t` isolated from the host at all (created or joined)?
    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.creates(t) || self.joins(t)
    }

    /// Flags for the clone() that starts the container: every new namespace except cgroup (unshared by
    /// the child once it is in its cgroup, so the cgroup namespace is rooted there) and time (unshared
    /// by the parent before clone: CLONE_NEWTIME does not fit clone()'s flag word).
    pub fn clone_flags(&self) -> CloneFlags {
        self.new
            .iter()
            .filter(|t| !matches!(t, LinuxNamespaceType::Cgroup | LinuxNamespaceType::Time))
            .fold(CloneFlags::empty(), |acc, t| acc | clone_flag(*t))
    }

    /// setns into every joined namespace of the given types, in JOIN_ORDER.
    pub fn join_types(&self, types: &[LinuxNamespaceType]) -> Result<()> {
        for (t, fd) in &self.join {
            if types.contains(t) {
                setns(fd.as_fd(), clone_flag(*t))
                    .ctx(|| format!("join {} namespace", proc_name(*t)))?;
            }
        }
        Ok(())
    }
}

/// Open a namespace file and check it is of the expected type.
pub fn open_ns(path: &Path, t: LinuxNamespaceType) -> Result<OwnedFd> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open {} namespace {}", proc_name(t), path.display()))?;
    // NS_GET_NSTYPE (0xb703) tells the namespace's type; refuse a mismatched file early.
    // SAFETY: ioctl on a valid fd with no argument.
    let got = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), 0xb703) };
    if got >= 0 && got != t as i32 {
        return Err(Error::Other(format!(
            "{} is not a {} namespace",
            path.display(),
            proc_name(t)
        )));
    }
    Ok(fd)
}

fn mapping_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write uid_map and gid_map of `pid` (called by the parent, which has the privileges to).
pub fn write_id_mappings(pid: i32, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    for (file, maps, field) in [
        ("uid_map", uid, "linux.uidMappings"),
        ("gid_map", gid, "linux.gidMappings"),
    ] {
        let path = format!("/proc/{pid}/{file}");
        fs::write(&path, mapping_text(maps)).map_err(|e| {
            Error::config(
                field,
                format!("the kernel refused the mapping ({path}): {e}"),
            )
        })?;
    }
    Ok(())
}

/// Create a time namespace for our future children and set its clock offsets.
/// Must run in the parent before clone; the calling process's own clocks are unaffected.
pub fn unshare_time(linux: &Linux) -> Result<()> {
    nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .ctx(|| "create time namespace".to_string())?;
    let Some(offsets) = linux.time_offsets() else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    fs::write("/proc/self/timens_offsets", text).map_err(|e| {
        Error::config(
            "linux.timeOffsets",
            format!("the kernel refused the offsets: {e}"),
        )
    })
}

/// The namespace files of a running process, for exec: every type the process does not share with us.
pub fn namespaces_of(pid: i32) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>> {
    let mut out = Vec::new();
    for t in JOIN_ORDER {
        let name = proc_name(t);
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        let (Ok(a), Ok(b)) = (fs::read_link(&theirs), fs::read_link(&ours)) else {
            continue; // namespace type not supported by this kernel
        };
        if a != b {
            out.push((t, open_ns(Path::new(&theirs), t)?));
        }
    }
    Ok(out)
}

/// A new network namespace with its loopback up, for a container created later: a spare shim
/// makes one while it waits (creating one takes about a millisecond). The calling thread is
/// back in its own network namespace afterwards, or this fails (and it may not be: do not use
/// the thread for a container then).
pub fn make_network() -> Result<OwnedFd> {
    let own = open_ns(
        Path::new("/proc/thread-self/ns/net"),
        LinuxNamespaceType::Network,
    )?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)
        .ctx(|| "create a network namespace".to_string())?;
    let made = open_ns(
        Path::new("/proc/thread-self/ns/net"),
        LinuxNamespaceType::Network,
    )
    .and_then(|fd| loopback_up().map(|()| fd));
    setns(own.as_fd(), CloneFlags::CLONE_NEWNET)
        .ctx(|| "return to the own network namespace".to_string())?;
    made
}

/// Bring up `lo` in the network namespace we are in. A new network namespace starts with its
/// loopback down; runc brings it up too (its "loopback" network for a namespace it creates),
/// and programs expect 127.0.0.1 to work even with no other network.
pub fn loopback_up() -> Result<()> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::sys("socket for loopback", nix::errno::Errno::last()));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    let ioctl = |op: libc::Ioctl, req: &mut libc::ifreq| -> Result<()> {
        // SAFETY: SIOC[GS]IFFLAGS read/write an ifreq we own.
        if unsafe { libc::ioctl(sock.as_raw_fd(), op, req as *mut libc::ifreq) } < 0 {
            return Err(Error::sys("bring up lo", nix::errno::Errno::last()));
        }
        Ok(())
    };
    ioctl(libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(libc::SIOCSIFFLAGS, &mut req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_testsupport::require_root;

    fn net_of_thread() -> std::path::PathBuf {
        fs::read_link("/proc/thread-self/ns/net").expect("read our network namespace")
    }

    /// Is `lo` up in the network namespace the calling thread is in?
    fn loopback_is_up() -> bool {
        // SAFETY: plain socket(2); owned right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0);
        // SAFETY: fresh fd we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ifreq is plain data; SIOCGIFFLAGS fills it.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
        assert_eq!(rc, 0, "SIOCGIFFLAGS lo");
        // SAFETY: filled by SIOCGIFFLAGS.
        (unsafe { req.ifr_ifru.ifru_flags } & libc::IFF_UP as libc::c_short) != 0
    }

    #[test]
    fn a_network_made_ahead_has_its_loopback_up_and_leaves_us_where_we_were() {
        if !require_root!() {
            return;
        }
        // In a thread of its own: namespaces are per thread, and this one may be left elsewhere.
        std::thread::spawn(|| {
            let before = net_of_thread();
            let made = make_network().expect("make a network namespace");
            assert_eq!(net_of_thread(), before, "back in our own namespace");
            let made_link = fs::read_link(format!("/proc/self/fd/{}", made.as_raw_fd())).unwrap();
            assert_ne!(made_link, before, "a namespace of its own");
            let again = make_network().expect("make another");
            let again_link = fs::read_link(format!("/proc/self/fd/{}", again.as_raw_fd())).unwrap();
            assert_ne!(again_link, made_link, "each call makes a new one");
            setns(made.as_fd(), CloneFlags::CLONE_NEWNET).expect("enter it");
            assert!(loopback_is_up(), "lo is up in the made namespace");
        })
        .join()
        .expect("test thread");
    }

    fn plan(namespaces: &[(LinuxNamespaceType, Option<&str>)]) -> NamespacePlan {
        let list: Vec<LinuxNamespace> = namespaces
            .iter()
            .map(|(t, p)| {
                let mut ns = LinuxNamespace::default();
                ns.set_typ(*t);
                ns.set_path(p.map(std::path::PathBuf::from));
                ns
            })
            .collect();
        let mut linux = Linux::default();
        linux.set_namespaces(Some(list));
        NamespacePlan::from_spec(Some(&linux)).expect("plan")
    }

    fn some_fd() -> OwnedFd {
        fs::File::open("/proc/self/ns/net").expect("open").into()
    }

    #[test]
    fn a_made_network_is_joined_only_in_place_of_a_new_one() {
        use LinuxNamespaceType::*;
        // A new network namespace: the made one is joined instead.
        let mut p = plan(&[(Mount, None), (Network, None), (Pid, None)]);
        p.use_made_network(some_fd());
        assert!(!p.creates(Network) && p.joins(Network));
        assert!(p.creates(Mount) && p.creates(Pid));
        assert!(!p.clone_flags().contains(CloneFlags::CLONE_NEWNET));
        // The host's network (no network namespace in the spec): untouched.
        let mut p = plan(&[(Mount, None)]);
        p.use_made_network(some_fd());
        assert!(!p.has(Network));
        // A user namespace: its own network namespace must be made in it.
        let mut p = plan(&[(User, None), (Mount, None), (Network, None)]);
        p.use_made_network(some_fd());
        assert!(p.creates(Network) && !p.joins(Network));
    }
}
