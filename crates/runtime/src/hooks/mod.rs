//! runtime-spec hooks (prestart, createRuntime, createContainer, startContainer, poststart,
//! poststop): run each hook with its exact argv and environment, the container state on stdin,
//! and its timeout enforced — without threads, because createContainer hooks run in a forked
//! child of a single-threaded process.

mod state;
mod supervise;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};
use supervise::{supervise, Outcome, Supervised};

pub use state::{container_state, state_json};

/// How much of a failing hook's stderr (and stdout) ends up in the error: the last bytes.
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// Run `hooks` in order for `phase` (used in error messages); the first failure stops the run.
///
/// Each hook gets `path` as the program, `args` as its argv (args[0] is argv[0]), exactly the
/// environment in `env` (empty if none), and `state_json` on stdin. A hook that exits non-zero, is
/// killed by a signal, outlives its `timeout` (its whole process group is then killed) or cannot
/// be started is an [`Error::Hook`] naming the phase, the hook's index and path and the tail of
/// its stderr.
pub fn run_hooks(phase: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for (index, hook) in hooks.iter().enumerate() {
        run_hook(phase, index, hook, state_json)?;
    }
    Ok(())
}

fn run_hook(phase: &str, index: usize, hook: &Hook, state_json: &[u8]) -> Result<()> {
    let path = hook.path();
    let fail = |reason: String| Error::Hook {
        path: path.clone(),
        reason: format!("{phase} hook #{index} {reason}"),
    };
    if !path.is_absolute() {
        return Err(fail(
            "has a relative path; hook paths must be absolute".into(),
        ));
    }
    let timeout = match hook.timeout() {
        None => None,
        Some(secs) if secs > 0 => Some(Duration::from_secs(secs.unsigned_abs())),
        Some(secs) => {
            return Err(fail(format!(
                "has timeout {secs}; it must be greater than zero"
            )))
        }
    };
    let mut command = hook_command(path, hook).map_err(fail)?;
    let stdin = state::stdin_file(state_json)
        .map_err(|e| fail(format!("could not prepare the state for stdin: {e}")))?;
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group: on timeout the hook and everything it started are killed together.
        .process_group(0);
    let child = command
        .spawn()
        .map_err(|e| fail(format!("could not be started: {e}")))?;
    let Supervised {
        outcome,
        stdout,
        stderr,
    } = supervise(child, timeout).map_err(|e| fail(format!("could not be waited for: {e}")))?;

    let problem = match outcome {
        Outcome::Exited(status) if status.success() => return Ok(()),
        Outcome::Exited(status) => describe_status(status),
        Outcome::TimedOut(limit) => format!("timed out after {}s and was killed", limit.as_secs()),
    };
    Err(fail(format!("{problem}{}", output_note(&stderr, &stdout))))
}

/// The hook's argv and environment, exactly as configured.
fn hook_command(path: &Path, hook: &Hook) -> std::result::Result<Command, String> {
    let mut command = Command::new(path);
    if let Some((argv0, rest)) = hook.args().as_deref().unwrap_or_default().split_first() {
        command.arg0(argv0).args(rest);
    }
    command.env_clear();
    for entry in hook.env().as_deref().unwrap_or_default() {
        let (key, value) = entry
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| format!("has env entry {entry:?}; entries must be KEY=value"))?;
        command.env(key, value);
    }
    Ok(command)
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended abnormally ({status})"),
    }
}

fn output_note(stderr: &[u8], stdout: &[u8]) -> String {
    let mut note = String::new();
    for (name, bytes) in [("stderr", stderr), ("stdout", stdout)] {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        if !text.is_empty() {
            note.push_str(&format!("; {name}: {text}"));
        }
    }
    note
}

/// Keep only the last [`OUTPUT_TAIL_BYTES`] of `buf`.
fn keep_tail(buf: &mut Vec<u8>) {
    if buf.len() > OUTPUT_TAIL_BYTES {
        buf.drain(..buf.len() - OUTPUT_TAIL_BYTES);
    }
}
