//! Handing a seccomp notify fd to the agent listening at `linux.seccomp.listenerPath`.

use std::os::fd::{AsFd, OwnedFd};

use oci_spec::runtime::{ContainerProcessState, Spec};

use crate::error::{Error, Result};
use crate::security::seccomp;

/// Send `fd` with the container process state (runtime-spec's ContainerProcessState) to the agent.
pub(super) fn forward(spec: &Spec, pid: i32, state_json: &[u8], fd: OwnedFd) -> Result<()> {
    let profile = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .ok_or_else(|| {
            Error::Seccomp("a listener fd arrived but there is no seccomp profile".into())
        })?;
    let path = profile
        .listener_path()
        .as_ref()
        .ok_or_else(|| Error::config("linux.seccomp.listenerPath", "needed by SCMP_ACT_NOTIFY"))?;
    let state: serde_json::Value = serde_json::from_slice(state_json).unwrap_or_default();
    let doc = serde_json::json!({
        "ociVersion": spec.version(),
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": profile.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    });
    let cps: ContainerProcessState = serde_json::from_value(doc)
        .map_err(|e| Error::Seccomp(format!("build the state for the seccomp agent: {e}")))?;
    seccomp::send_to_agent(path, &cps, fd.as_fd())
}
