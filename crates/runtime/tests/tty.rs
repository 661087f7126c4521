//! Terminal support with real ptys and processes: the console-socket handshake (checked against
//! runc's wire format and against runc itself), the slave as controlling terminal and stdio,
//! window sizes, /dev/console, and the foreground proxy.

mod procs;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use berth_runtime::init::close_cloexec_fds;
use berth_runtime::tty::{
    connect_console_socket, proxy_terminal, recv_pty_master, set_window_size, setup_console,
    setup_exec_console, PTY_MASTER_NAME,
};
use procs::{bound_reads, cloexec_pty, read_terminal, wait_bounded, Argv, HANG_LIMIT};

/// Spawn `sh -c script` whose pre_exec runs `setup_exec_console` (or `setup_console` in a private
/// mount namespace when `mount_console`) against `socket`, with `size`.
fn spawn_console_child(
    socket: &UnixStream,
    size: Option<(u16, u16)>,
    mount_console: bool,
    script: &str,
) -> Child {
    let argv = Argv::new(&["/bin/sh", "-c", script]);
    let socket = socket.as_raw_fd();
    let mut command = Command::new("/bin/false");
    // SAFETY: the hook makes syscalls only (the console setup allocates nothing on success) and
    // then execs.
    unsafe {
        command.pre_exec(move || {
            if mount_console {
                private_mount_namespace()?;
                setup_console(socket, size).map_err(std::io::Error::other)?;
            } else {
                setup_exec_console(socket, size).map_err(std::io::Error::other)?;
            }
            argv.exec()
        });
    }
    command.spawn().unwrap()
}

fn private_mount_namespace() -> std::io::Result<()> {
    // SAFETY: plain syscalls; null pointers are allowed for a propagation change.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0
            || libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
fn console_child_sends_its_master_and_runs_on_the_slave() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    bound_reads(ours.as_fd());
    let script = "tty; echo hi; : </dev/tty && echo ctty-ok; stty size";
    let mut child = spawn_console_child(&theirs, Some((31, 97)), false, script);
    drop(theirs);

    let master = recv_pty_master(ours.as_fd()).unwrap();
    let output = read_terminal(master.as_fd(), None);

    assert!(wait_bounded(&mut child).success(), "{output}");
    let lines: Vec<&str> = output.lines().collect();
    assert!(lines[0].starts_with("/dev/pts/"), "tty: {output}");
    assert_eq!(&lines[1..], ["hi", "ctty-ok", "31 97"], "{output}");
}

#[test]
fn window_size_set_on_the_master_is_seen_by_the_child() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    bound_reads(ours.as_fd());
    let mut child = spawn_console_child(&theirs, None, false, "read line; stty size");
    drop(theirs);
    let master = recv_pty_master(ours.as_fd()).unwrap();

    set_window_size(master.as_fd(), 40, 123).unwrap();
    let mut writer = fs::File::from(master.try_clone().unwrap());
    writer.write_all(b"go\n").unwrap();
    let output = read_terminal(master.as_fd(), None);

    assert!(wait_bounded(&mut child).success(), "{output}");
    assert!(output.lines().any(|l| l == "40 123"), "{output}");
}

/// runc's utils.RecvFd (what containerd's shim uses) reads at most 4096 bytes of name and
/// exactly CMSG_SPACE(sizeof(int)) bytes of ancillary data, and wants one SCM_RIGHTS message with
/// one descriptor. Receive with exactly those buffers and check each condition.
#[test]
fn wire_format_matches_runcs_recvfd() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    bound_reads(ours.as_fd());
    let mut child = spawn_console_child(&theirs, None, false, "exit 0");
    drop(theirs);

    let mut name = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let oob_space = unsafe { libc::CMSG_SPACE(4) } as usize;
    let mut oob = vec![0u64; oob_space.div_ceil(8)];
    // SAFETY: msghdr is plain data; its pointers are valid during recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = oob.as_mut_ptr().cast();
    msg.msg_controllen = oob_space;
    let n = unsafe { libc::recvmsg(ours.as_raw_fd(), &mut msg, 0) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    assert!(wait_bounded(&mut child).success());

    assert_eq!(&name[..n as usize], PTY_MASTER_NAME.as_bytes());
    assert!((n as usize) < 4096);
    assert_eq!(
        msg.msg_controllen, oob_space,
        "oobn must equal CmsgSpace(4)"
    );
    assert_eq!(msg.msg_flags & libc::MSG_CTRUNC, 0);
    // SAFETY: the kernel filled one cmsg header into oob.
    let (level, kind, len, fd) = unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(!cmsg.is_null());
        assert!(
            libc::CMSG_NXTHDR(&msg, cmsg).is_null(),
            "exactly one control message"
        );
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len, fd)
    };
    // SAFETY: the descriptor arrived with the message and is now ours.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    assert_eq!((level, kind), (libc::SOL_SOCKET, libc::SCM_RIGHTS));
    // SAFETY: CMSG_LEN is a pure computation.
    let one_fd_len = unsafe { libc::CMSG_LEN(4) } as usize;
    assert_eq!(len, one_fd_len, "one descriptor");
    let mut pty_number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int; it only succeeds on a pty master.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut pty_number) };
    assert_eq!(rc, 0, "the descriptor is a pty master");
}

#[test]
fn recv_rejects_a_message_without_a_descriptor_and_a_closed_socket() {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    theirs.write_all(b"/dev/ptmx").unwrap();
    let err = recv_pty_master(ours.as_fd()).unwrap_err().to_string();
    assert!(err.contains("0 descriptors"), "{err}");

    drop(theirs);
    let err = recv_pty_master(ours.as_fd()).unwrap_err().to_string();
    assert!(err.contains("closed"), "{err}");
}

#[test]
fn connect_console_socket_reaches_a_listener_even_on_a_long_path() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
    fs::create_dir_all(&deep).unwrap();
    let path = deep.join("console.sock");
    assert!(path.as_os_str().len() > 108);
    let listener = UnixListener::bind(&path).or_else(|_| {
        // bind has the same limit: bind through the directory's /proc/self/fd entry.
        let dirfd = fs::File::open(&deep).unwrap();
        UnixListener::bind(format!("/proc/self/fd/{}/console.sock", dirfd.as_raw_fd()))
    });
    let listener = listener.unwrap();

    let fd = connect_console_socket(&path).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    UnixStream::from(fd).write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    accepted.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");

    let missing = connect_console_socket(&dir.path().join("nope.sock")).unwrap_err();
    assert!(missing.to_string().contains("nope.sock"), "{missing}");
}

#[test]
fn setup_console_bind_mounts_the_slave_onto_dev_console() {
    if !berth_testsupport::require_root!() {
        return;
    }
    let (ours, theirs) = UnixStream::pair().unwrap();
    bound_reads(ours.as_fd());
    // Device numbers (major:minor in hex) of /dev/console and of our terminal must match.
    let script = "stat -c %t:%T /dev/console; stat -L -c %t:%T \"$(tty)\"";
    let mut child = spawn_console_child(&theirs, None, true, script);
    drop(theirs);
    let master = recv_pty_master(ours.as_fd()).unwrap();
    let output = read_terminal(master.as_fd(), None);

    assert!(wait_bounded(&mut child).success(), "{output}");
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), 2, "{output}");
    assert_eq!(
        lines[0], lines[1],
        "/dev/console is not the pty slave: {output}"
    );
    assert_ne!(lines[0], "5:1", "still the host's console");
}

fn lflag(fd: BorrowedFd) -> libc::tcflag_t {
    // SAFETY: termios is plain data filled by tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
    t.c_lflag
}

/// The whole foreground path: an outer terminal (as a user's) ↔ proxy process ↔ container pty
/// ↔ sh. Checks relayed input/output, raw mode while proxying and restored after, the initial
/// window size and a SIGWINCH-driven resize.
#[test]
fn proxy_relays_io_raw_mode_and_window_size_changes() {
    let (container_master, container_slave) = cloexec_pty();
    let (outer_master, outer_slave) = cloexec_pty();
    let original_lflag = lflag(outer_master.as_fd());
    set_window_size(outer_master.as_fd(), 33, 101).unwrap();

    // The "container": sh on the pty slave, as session leader with it as controlling terminal.
    let mut sh = Command::new("/bin/sh");
    // Each step waits for a line of input, so it runs after what the test did before typing it.
    sh.args([
        "-c",
        "read first; stty size; read line; stty size; echo \"got:$line\"",
    ]);
    sh.stdin(Stdio::from(container_slave.try_clone().unwrap()))
        .stdout(Stdio::from(container_slave.try_clone().unwrap()))
        .stderr(Stdio::from(container_slave));
    // SAFETY: setsid and ioctl only.
    unsafe {
        sh.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut sh_child = sh.spawn().unwrap();
    // The Command keeps its Stdio until dropped; afterwards only sh holds the slave.
    drop(sh);

    // The proxy: stdin/stdout on the outer terminal's slave.
    let master_fd = container_master.as_raw_fd();
    let mut proxy = Command::new("/bin/false");
    proxy
        .stdin(Stdio::from(outer_slave.try_clone().unwrap()))
        .stdout(Stdio::from(outer_slave));
    // SAFETY: the hook dups a descriptor, closes close-on-exec ones (as the exec it replaces
    // would) and runs the allocation-free proxy, then _exits.
    unsafe {
        proxy.pre_exec(move || {
            let master = libc::dup(master_fd);
            close_cloexec_fds();
            let code = match proxy_terminal(OwnedFd::from_raw_fd(master)) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            libc::_exit(code)
        });
    }
    let mut proxy_child = proxy.spawn().unwrap();
    drop(proxy);
    drop(container_master);

    fs::File::from(outer_master.try_clone().unwrap())
        .write_all(b"first\n")
        .unwrap();
    let first = read_terminal(outer_master.as_fd(), Some("33 101"));
    assert!(first.contains("33 101"), "{first}");
    let raw = lflag(outer_master.as_fd());
    assert_eq!(
        raw & (libc::ICANON | libc::ECHO),
        0,
        "outer terminal not raw"
    );

    set_window_size(outer_master.as_fd(), 44, 111).unwrap();
    // SAFETY: kill takes no pointers; the proxy is our unreaped child.
    assert_eq!(
        unsafe { libc::kill(proxy_child.id() as i32, libc::SIGWINCH) },
        0
    );
    fs::File::from(outer_master.try_clone().unwrap())
        .write_all(b"hello\n")
        .unwrap();
    let rest = read_terminal(outer_master.as_fd(), Some("got:hello"));

    assert!(wait_bounded(&mut sh_child).success());
    assert!(wait_bounded(&mut proxy_child).success(), "proxy failed");
    assert!(rest.lines().any(|l| l == "44 111"), "{rest}");
    assert!(rest.contains("got:hello"), "{rest}");
    assert_eq!(
        lflag(outer_master.as_fd()),
        original_lflag,
        "terminal mode not restored"
    );
}

/// runc itself as the sender: our receiver gets a working master from `runc create
/// --console-socket`, the way containerd's shim would.
#[test]
fn receives_the_master_from_runc() {
    if !berth_testsupport::require_root!() {
        return;
    }
    if !berth_testsupport::require(berth_testsupport::which("runc").is_some(), "runc installed") {
        return;
    }
    let mut bundle = berth_testsupport::TestBundle::busybox(&["sh", "-c", "echo from-runc; tty"]);
    bundle.edit(|spec| spec["process"]["terminal"] = serde_json::Value::Bool(true));
    let state = tempfile::tempdir().unwrap();
    let socket_path = state.path().join("console.sock");
    let listener = UnixListener::bind(&socket_path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let id = berth_testsupport::unique_id("berth-tty-runc");
    let runc = |args: &[&str]| {
        let mut command = Command::new("runc");
        command.arg("--root").arg(state.path()).args(args);
        command
    };

    let mut create = runc(&["create", "--bundle"])
        .arg(bundle.path())
        .arg("--console-socket")
        .arg(&socket_path)
        .arg(&id)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let limit = Instant::now() + HANG_LIMIT;
    let connection = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = create.try_wait().unwrap() {
                    let mut err = String::new();
                    create
                        .stderr
                        .take()
                        .unwrap()
                        .read_to_string(&mut err)
                        .unwrap();
                    panic!("runc create exited ({status}) without connecting: {err}");
                }
                assert!(Instant::now() < limit, "runc never connected");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    connection.set_nonblocking(false).unwrap();
    bound_reads(connection.as_fd());
    let master = recv_pty_master(connection.as_fd()).unwrap();
    assert!(wait_bounded(&mut create).success(), "runc create failed");

    let started = wait_bounded(&mut runc(&["start", &id]).spawn().unwrap());
    let output = read_terminal(master.as_fd(), None);
    let _ = wait_bounded(&mut runc(&["delete", "--force", &id]).spawn().unwrap());

    assert!(started.success());
    assert!(output.lines().any(|l| l == "from-runc"), "{output}");
    assert!(
        output.lines().any(|l| l.starts_with("/dev/pts/")),
        "{output}"
    );
}
