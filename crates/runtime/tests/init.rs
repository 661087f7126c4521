//! The built-in init (`--init`), run for real: each test spawns a process whose pre_exec hook
//! calls `run_as_init` (the forked child is single-threaded, and the init only makes
//! async-signal-safe calls), with `sh` as the program it supervises.

mod procs;

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};

use berth_runtime::init::run_as_init;
use procs::{cloexec_pty, read_terminal, wait_bounded, wait_for_file, Argv};

/// Spawn an init (the returned child) supervising `sh -c script`.
fn spawn_init(kill_group: bool, script: &str) -> Child {
    spawn_init_argv(kill_group, &["/bin/sh", "-c", script])
}

/// Spawn an init supervising the program `args[0]` with argv `args`.
fn spawn_init_argv(kill_group: bool, args: &[&str]) -> Child {
    let argv = Argv::new(args);
    let mut command = Command::new("/bin/false"); // never exec'd: pre_exec doesn't return
                                                  // Not the developer's terminal: the init would hand it to its child's process group.
    command.stdin(Stdio::null());
    // SAFETY: the hook only calls run_as_init, which makes async-signal-safe syscalls, and execv
    // with pointers prepared before the fork.
    unsafe {
        command.pre_exec(move || run_as_init(kill_group, || argv.exec()));
    }
    command.spawn().unwrap()
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill takes no pointers; the child is ours and not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

#[test]
fn exit_code_of_the_child_is_the_inits_exit_code() {
    let mut init = spawn_init(false, "exit 7");
    assert_eq!(wait_bounded(&mut init).code(), Some(7));

    let mut init = spawn_init(false, "true");
    assert_eq!(wait_bounded(&mut init).code(), Some(0));
}

#[test]
fn child_killed_by_a_signal_gives_128_plus_signal() {
    let mut init = spawn_init(false, "kill -KILL $$");
    let status = wait_bounded(&mut init);
    assert_eq!(status.code(), Some(128 + 9), "{status:?}");
    assert_eq!(status.signal(), None, "the init itself exits normally");
}

#[test]
fn sigterm_to_the_init_reaches_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'exit 42' TERM; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut init = spawn_init(false, &script);
    wait_for_file(&ready);

    signal(&init, libc::SIGTERM);

    assert_eq!(wait_bounded(&mut init).code(), Some(42));
}

#[test]
fn other_catchable_signals_are_forwarded_too() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'exit 51' USR1; trap 'exit 52' HUP; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut init = spawn_init(false, &script);
    wait_for_file(&ready);

    signal(&init, libc::SIGHUP);

    assert_eq!(wait_bounded(&mut init).code(), Some(52));
}

#[test]
fn orphans_reparented_to_the_init_are_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // The orphan waits until its parent ($2) is gone (it has been reparented), reports its pid and
    // new parent, and exits: from then on only the init can reap it.
    fs::write(
        dir.path().join("orphan.sh"),
        r#"
while [ "$(cut -d' ' -f4 /proc/$$/stat)" = "$2" ]; do sleep 0.01; done
echo "$$ $(cut -d' ' -f4 /proc/$$/stat)" > "$1.tmp" && mv "$1.tmp" "$1"
"#,
    )
    .unwrap();
    // The main program double-forks the orphan, then checks its new parent is the init and waits
    // for its /proc entry to vanish, which happens only once it is reaped.
    fs::write(
        dir.path().join("main.sh"),
        format!(
            r#"sh -c 'sh {d}/orphan.sh {d}/orphan $$ & exit 0'
i=0; while [ ! -e {d}/orphan ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 2; sleep 0.01; done
read pid parent < {d}/orphan
[ "$parent" = "$PPID" ] || exit 3
i=0; while [ -e /proc/$pid ]; do i=$((i+1)); [ $i -gt 2000 ] && exit 4; sleep 0.01; done
exit 0
"#
        ),
    )
    .unwrap();

    let main = format!("{d}/main.sh");
    let mut init = spawn_init_argv(false, &["/bin/sh", &main]);

    let status = wait_bounded(&mut init);
    assert_eq!(
        status.code(),
        Some(0),
        "2: orphan never ran, 3: not reparented to the init, 4: left a zombie"
    );
}

#[test]
fn kill_group_reaches_grandchildren_in_the_childs_group() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    fs::write(
        dir.path().join("main.sh"),
        format!(
            r#"sh -c 'trap "echo got-term > {d}/grandchild; exit 0" TERM; touch {d}/grandchild.ready; while :; do sleep 0.05; done' &
gc=$!
trap 'wait $gc; exit 42' TERM
while [ ! -e {d}/grandchild.ready ]; do sleep 0.01; done
touch {d}/ready
while :; do sleep 0.05; done
"#
        ),
    )
    .unwrap();

    let main = format!("{d}/main.sh");
    let mut init = spawn_init_argv(true, &["/bin/sh", &main]);
    wait_for_file(&dir.path().join("ready"));

    signal(&init, libc::SIGTERM);

    assert_eq!(wait_bounded(&mut init).code(), Some(42));
    assert_eq!(
        fs::read_to_string(dir.path().join("grandchild")).unwrap(),
        "got-term\n"
    );
}

#[test]
fn child_runs_in_its_own_process_group() {
    // Field 5 of /proc/self/stat is the process group; the child leads its own, not the init's.
    let mut init = spawn_init(
        false,
        r#"set -- $(cat /proc/$$/stat); [ "$5" = "$$" ] && [ "$5" != "$(cut -d' ' -f5 /proc/$PPID/stat)" ] || exit 1"#,
    );
    assert_eq!(wait_bounded(&mut init).code(), Some(0));
}

#[test]
fn child_becomes_the_terminals_foreground_group() {
    let (master, slave) = cloexec_pty();
    let argv = Argv::new(&[
        "/bin/sh",
        "-c",
        // Fields 5 and 8 of /proc/self/stat: process group and the terminal's foreground group.
        r#"set -- $(cat /proc/$$/stat); [ "$5" = "$$" ] && [ "$8" = "$5" ] && echo fg-ok || echo "fg-bad pgrp=$5 tpgid=$8""#,
    ]);
    let mut command = Command::new("/bin/false");
    command
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid/ioctl, then the async-signal-safe init and an execv prepared beforehand.
    unsafe {
        command.pre_exec(move || {
            // The init leads a session with the pty as controlling terminal, as in a container.
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            run_as_init(false, || argv.exec())
        });
    }
    let mut init = command.spawn().unwrap();
    drop(command);

    let output = read_terminal(master.as_fd(), None);
    assert!(wait_bounded(&mut init).success(), "{output}");
    assert_eq!(output.trim(), "fg-ok");
}
