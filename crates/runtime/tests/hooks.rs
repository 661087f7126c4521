//! runtime-spec hooks run as real processes: argv, env, stdin, exit status, timeout.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use berth_runtime::hooks::{container_state, run_hooks, state_json};
use berth_runtime::Error;
use oci_spec::runtime::{ContainerState, Hook, HookBuilder};

fn hook(path: &str, args: &[&str], env: &[String], timeout: Option<i64>) -> Hook {
    let mut builder = HookBuilder::default().path(path);
    if !args.is_empty() {
        builder = builder.args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
    if !env.is_empty() {
        builder = builder.env(env.to_vec());
    }
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    builder.build().unwrap()
}

fn sample_state(bundle: &Path) -> Vec<u8> {
    let annotations = HashMap::from([("org.example/key".to_string(), "value".to_string())]);
    state_json(&container_state(
        "hooked-1",
        ContainerState::Created,
        Some(4242),
        bundle,
        Some(annotations),
    ))
    .unwrap()
}

#[test]
fn hook_gets_state_on_stdin_exact_env_and_argv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let state = sample_state(dir.path());
    let script = r#"cat > "$OUT/state"; env > "$OUT/env"; cat /proc/$$/cmdline > "$OUT/cmdline""#;
    let hooks = [hook(
        "/bin/sh",
        &["custom-argv0", "-c", script],
        &[format!("OUT={out}"), "GREETING=hello world".into()],
        Some(30),
    )];

    run_hooks("createRuntime", &hooks, &state).unwrap();

    assert_eq!(fs::read(dir.path().join("state")).unwrap(), state);
    let env = fs::read_to_string(dir.path().join("env")).unwrap();
    // Exactly the configured environment; the shell itself adds only PWD.
    let mut vars: Vec<&str> = env.lines().filter(|v| !v.starts_with("PWD=")).collect();
    vars.sort();
    assert_eq!(
        vars,
        ["GREETING=hello world", &format!("OUT={out}")],
        "{env}"
    );
    let cmdline = fs::read(dir.path().join("cmdline")).unwrap();
    let argv: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    assert_eq!(argv[0], b"custom-argv0");
    assert_eq!(argv[1], b"-c");
    assert_eq!(argv[2], script.as_bytes());
}

#[test]
fn state_json_has_the_runtime_spec_fields() {
    let dir = tempfile::tempdir().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&sample_state(dir.path())).unwrap();
    assert_eq!(value["ociVersion"], oci_spec::runtime::VERSION);
    assert_eq!(value["id"], "hooked-1");
    assert_eq!(value["status"], "created");
    assert_eq!(value["pid"], 4242);
    assert_eq!(value["bundle"], dir.path().display().to_string());
    assert_eq!(value["annotations"]["org.example/key"], "value");

    let stopped = container_state("gone", ContainerState::Stopped, None, dir.path(), None);
    let value: serde_json::Value = serde_json::from_slice(&state_json(&stopped).unwrap()).unwrap();
    assert_eq!(value["status"], "stopped");
    assert!(value.get("pid").is_none(), "{value}");
}

#[test]
fn failing_hook_is_named_with_phase_index_path_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("third-ran");
    let hooks = [
        hook("/bin/true", &["true"], &[], None),
        hook(
            "/bin/sh",
            &["sh", "-c", "echo boom-from-hook >&2; exit 3"],
            &[],
            None,
        ),
        hook(
            "/bin/sh",
            &["sh", "-c", &format!("touch {}", marker.display())],
            &[],
            None,
        ),
    ];

    let err = run_hooks("prestart", &hooks, b"{}").unwrap_err();

    let Error::Hook { path, .. } = &err else {
        panic!("expected Error::Hook, got {err:?}");
    };
    assert_eq!(path, Path::new("/bin/sh"));
    let message = err.to_string();
    for needle in ["prestart", "#1", "/bin/sh", "status 3", "boom-from-hook"] {
        assert!(message.contains(needle), "{needle:?} missing in: {message}");
    }
    assert!(!marker.exists(), "hooks after a failure must not run");
}

#[test]
fn hook_killed_by_signal_is_an_error() {
    let hooks = [hook("/bin/sh", &["sh", "-c", "kill -KILL $$"], &[], None)];
    let message = run_hooks("poststart", &hooks, b"{}")
        .unwrap_err()
        .to_string();
    assert!(message.contains("signal 9"), "{message}");
    assert!(message.contains("poststart hook #0"), "{message}");
}

#[test]
fn only_the_tail_of_a_chatty_hooks_stderr_is_kept() {
    let script = "i=0; while [ $i -lt 2000 ]; do echo line-$i >&2; i=$((i+1)); done; exit 1";
    let hooks = [hook("/bin/sh", &["sh", "-c", script], &[], None)];
    let message = run_hooks("createContainer", &hooks, b"{}")
        .unwrap_err()
        .to_string();
    assert!(message.contains("line-1999"), "the end must be kept");
    assert!(!message.contains("line-0\n"), "the start must be dropped");
    assert!(message.len() < 2 * berth_runtime::hooks::OUTPUT_TAIL_BYTES);
}

#[test]
fn hook_past_its_timeout_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("sleeper.pid");
    let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
    let hooks = [hook("/bin/sh", &["sh", "-c", &script], &[], Some(2))];

    let message = run_hooks("startContainer", &hooks, b"{}")
        .unwrap_err()
        .to_string();

    assert!(message.contains("timed out after 2s"), "{message}");
    assert!(message.contains("startContainer hook #0"), "{message}");
    let sleeper: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until_exited(sleeper),
        "the hook's `sleep` (pid {sleeper}) is still running"
    );
}

/// True once `pid` has exited (it may still be a zombie waiting for its new parent). The poll
/// limit only bounds a failing run; a sleeper that survived would run for 1000 s.
fn wait_until_exited(pid: i32) -> bool {
    // SAFETY: pidfd_open has no memory arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is a valid pollfd; fd is ours and closed right after.
    let ready = unsafe { libc::poll(&mut pfd, 1, 60_000) };
    unsafe { libc::close(fd) };
    ready == 1
}

#[test]
fn missing_hook_binary_is_a_clear_error() {
    let hooks = [hook("/nonexistent/berth-hook", &[], &[], None)];
    let err = run_hooks("poststop", &hooks, b"{}").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Hook { .. }), "{err:?}");
    for needle in [
        "/nonexistent/berth-hook",
        "poststop hook #0",
        "could not be started",
        "No such file",
    ] {
        assert!(message.contains(needle), "{needle:?} missing in: {message}");
    }
}

#[test]
fn relative_path_bad_env_and_bad_timeout_are_rejected() {
    let relative = run_hooks("prestart", &[hook("bin/true", &[], &[], None)], b"{}");
    assert!(relative.unwrap_err().to_string().contains("absolute"));

    let bad_env = run_hooks(
        "prestart",
        &[hook("/bin/true", &[], &["NOEQUALS".into()], None)],
        b"{}",
    );
    assert!(bad_env.unwrap_err().to_string().contains("NOEQUALS"));

    let zero = run_hooks("prestart", &[hook("/bin/true", &[], &[], Some(0))], b"{}");
    assert!(zero.unwrap_err().to_string().contains("greater than zero"));
}

#[test]
fn hook_that_ignores_stdin_and_large_state_still_succeeds() {
    let big = vec![b'x'; 1 << 20];
    run_hooks("prestart", &[hook("/bin/true", &["true"], &[], None)], &big).unwrap();
}
