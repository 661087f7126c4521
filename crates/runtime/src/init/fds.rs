//! Close the close-on-exec descriptors, as execve would — for a process (the init) that stands in
//! for an exec that never happens. Allocation-free, so it is safe right after fork().

/// Close every descriptor above stderr that has FD_CLOEXEC set.
pub fn close_cloexec_fds() {
    if !close_listed_in_proc() {
        close_by_probing();
    }
}

/// Walk /proc/self/fd with getdents64 into a stack buffer. False if /proc is not there.
fn close_listed_in_proc() -> bool {
    // SAFETY: a NUL-terminated path and flags; returns a new fd or -1.
    let dir = unsafe {
        libc::open(
            c"/proc/self/fd".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return false;
    }
    // u64 elements keep the linux_dirent64 records 8-byte aligned.
    let mut buf = [0u64; 512];
    loop {
        // SAFETY: buf is writable for its full byte length.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir,
                buf.as_mut_ptr(),
                std::mem::size_of_val(&buf),
            )
        };
        if n <= 0 {
            break;
        }
        let bytes = unsafe {
            // SAFETY: the kernel filled the first n bytes of buf.
            std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize)
        };
        let mut offset = 0;
        while offset + 19 < bytes.len() {
            // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[].
            let reclen = u16::from_ne_bytes([bytes[offset + 16], bytes[offset + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let name = &bytes[offset + 19..(offset + reclen).min(bytes.len())];
            if let Some(fd) = parse_fd(name) {
                if fd != dir {
                    close_if_cloexec(fd);
                }
            }
            offset += reclen;
        }
    }
    // SAFETY: dir is ours.
    unsafe { libc::close(dir) };
    true
}

/// Without /proc: probe each possible descriptor number.
fn close_by_probing() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a valid out-pointer.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(65536) as i32
    } else {
        1024
    };
    for fd in 3..max {
        close_if_cloexec(fd);
    }
}

fn close_if_cloexec(fd: libc::c_int) {
    if fd <= libc::STDERR_FILENO {
        return;
    }
    // SAFETY: fcntl/close on a descriptor number; an invalid one just fails with EBADF.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
            libc::close(fd);
        }
    }
}

/// The descriptor number in a NUL-terminated directory entry name ("." and ".." give None).
fn parse_fd(name: &[u8]) -> Option<libc::c_int> {
    let mut fd: libc::c_int = 0;
    let mut digits = 0;
    for &b in name.iter().take_while(|&&b| b != 0) {
        if !b.is_ascii_digit() {
            return None;
        }
        fd = fd
            .checked_mul(10)?
            .checked_add(libc::c_int::from(b - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(fd)
}
