//! Terminal window size (TIOCGWINSZ / TIOCSWINSZ).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::error::{Error, Result};

/// Set the window size of the terminal behind `fd` (a pty master or slave). The foreground
/// process group gets SIGWINCH when it changes.
pub fn set_window_size(fd: BorrowedFd, rows: u16, cols: u16) -> Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct through a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
        return Err(Error::io(
            format!("set terminal size {rows}x{cols} on fd {}", fd.as_raw_fd()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The (rows, cols) of the terminal behind `fd`.
pub fn get_window_size(fd: BorrowedFd) -> Result<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize struct through a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } != 0 {
        return Err(Error::io(
            format!("get terminal size of fd {}", fd.as_raw_fd()),
            io::Error::last_os_error(),
        ));
    }
    Ok((size.ws_row, size.ws_col))
}
