//! The container state hooks read on stdin (runtime-spec "State": ociVersion, id, status, pid,
//! bundle, annotations).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{ContainerState, State, VERSION};

use crate::error::{Error, Result};

/// The state of container `id` as the runtime-spec defines it. `pid` is the container's init
/// process as seen from the runtime (omitted when there is none, e.g. in poststop).
pub fn container_state(
    id: &str,
    status: ContainerState,
    pid: Option<i32>,
    bundle: &Path,
    annotations: Option<HashMap<String, String>>,
) -> State {
    let mut state = State::default();
    state
        .set_version(VERSION.to_string())
        .set_id(id.to_string())
        .set_status(status)
        .set_pid(pid)
        .set_bundle(bundle.to_path_buf())
        .set_annotations(annotations.filter(|a| !a.is_empty()));
    state
}

/// `state` as the JSON bytes hooks get on stdin.
pub fn state_json(state: &State) -> Result<Vec<u8>> {
    serde_json::to_vec(state).map_err(|e| {
        Error::Other(format!(
            "serialize state of container {:?}: {e}",
            state.id()
        ))
    })
}

/// An in-memory file holding `bytes`, positioned at the start. A file rather than a
/// pipe: nothing to pump while the hook runs, and a hook that never reads stdin can't block us
/// or earn us a SIGPIPE.
pub(super) fn stdin_file(bytes: &[u8]) -> io::Result<File> {
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"berth-hook-state".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file)
}
