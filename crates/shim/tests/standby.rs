//! `berth-shim --standby`: the spare berthd keeps. What it does with a bad flags line, and
//! with a daemon that goes away before needing it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Start a spare with one end of a socket pair as its stdin; returns our end once the spare's
/// first process has exited (the waiting one is detached).
fn spare(owner: &str) -> UnixStream {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let status = Command::new(env!("CARGO_BIN_EXE_berth-shim"))
        .args(["--standby", "--owner", owner, "--nice", "0"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .status()
        .expect("run berth-shim --standby");
    assert!(status.success(), "{status}");
    // Ready (back in the normal scheduling class) before berthd may hand it out.
    let mut mark = [0u8; 1];
    ours.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    std::io::Read::read_exact(&mut &ours, &mut mark).expect("the ready mark");
    assert_eq!(&mark, b".");
    ours
}

fn answer(s: &UnixStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("read answer");
    line
}

#[test]
fn a_bad_flags_line_is_refused_with_its_reason() {
    let mut s = spare("0");
    s.write_all(b"this is not json\n").expect("write");
    let line = answer(&s);
    assert!(
        line.contains("\"error\"") && line.contains("bad flags line"),
        "{line}"
    );

    let mut s = spare("0");
    s.write_all(b"[\"--id\", \"x\", \"--bogus\"]\n")
        .expect("write");
    let line = answer(&s);
    assert!(
        line.contains("unknown flag") && line.contains("--bogus"),
        "{line}"
    );

    let mut s = spare("0");
    s.write_all(b"[\"--id\", \"x\"]\n").expect("write");
    let line = answer(&s);
    assert!(line.contains("missing --bundle"), "{line}");
}

#[test]
fn a_spare_whose_daemon_goes_away_exits_quietly() {
    // A made-up owner names this spare among the processes (the spare only shows it).
    let owner = format!("{}{}", std::process::id(), 424242);
    let s = spare(&owner);
    let pid = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&format!("--owner\0{owner}\0")))
                .unwrap_or(false)
        })
        .expect("the waiting spare");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| {
                st.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "spare {pid} still waits after EOF"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
