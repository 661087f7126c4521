//! Helpers for the root tests: network namespaces as stand-in containers, an "outside" host,
//! busybox httpd servers, and a state guard that tears everything down.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use berth_network::{NetnsRef, NetworkState, Settings};

/// A short unique token (interface names are at most 15 bytes).
pub fn token() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{:04x}{:x}", std::process::id() & 0xffff, n)
}

pub fn run(cmd: &[&str]) -> std::process::Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

pub fn run_ok(cmd: &[&str]) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Tools the tests drive; under CI=true their absence fails the test.
pub fn prerequisites() -> bool {
    berth_testsupport::require_root!()
        && berth_testsupport::require(
            berth_testsupport::which("ip").is_some(),
            "iproute2 (apt-get install iproute2)",
        )
        && berth_testsupport::require(
            berth_testsupport::which("nft").is_some(),
            "nft (apt-get install nftables)",
        )
        && berth_testsupport::require(
            std::path::Path::new("/bin/busybox").exists(),
            "busybox (apt-get install busybox-static)",
        )
}

/// A network namespace made with `ip netns add`, deleted on drop (with /etc/netns/<name>).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = format!("{prefix}-{}", token());
        run_ok(&["ip", "netns", "add", &name]);
        Netns { name }
    }

    pub fn reference(&self) -> NetnsRef {
        NetnsRef::Path(PathBuf::from(format!("/run/netns/{}", self.name)))
    }

    pub fn exec(&self, cmd: &[&str]) -> std::process::Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(cmd);
        run(&full)
    }

    /// Links in the namespace, as `ip -o link` names.
    pub fn links(&self) -> Vec<String> {
        let out = run_ok(&["ip", "-n", &self.name, "-o", "link", "show"]);
        out.lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
            .collect()
    }

    /// `busybox wget` inside the namespace; None on failure. (Debian's busybox 1.35 wget
    /// crashes with `-T`, so coreutils' timeout bounds it.)
    pub fn wget(&self, url: &str) -> Option<String> {
        let out = self.exec(&["timeout", "5", "busybox", "wget", "-q", "-O", "-", url]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Files `ip netns exec` bind-mounts over /etc (resolv.conf, hosts).
    pub fn etc_file(&self, name: &str, text: &str) {
        let dir = format!("/etc/netns/{}", self.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}"), text).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

/// busybox httpd in a namespace serving one file `index.html` with `body`.
pub struct Httpd {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Httpd {
    pub fn start(ns: &Netns, port: u16, body: &str) -> Httpd {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), body).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "busybox", "httpd", "-f"])
            .args(["-p", &port.to_string(), "-h"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Readiness: the listener shows up in the namespace's socket table.
        let needle = format!(":{port} ");
        for _ in 0..200 {
            let out = run(&[
                "ip", "netns", "exec", &ns.name, "busybox", "netstat", "-ltn",
            ]);
            if String::from_utf8_lossy(&out.stdout).contains(&needle) {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Httpd { child, _dir: dir }
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plain HTTP GET from the test process (host namespace). Err on any failure.
pub fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// A NetworkState with its own nft table; its bridges and table go away on drop.
pub struct StateGuard {
    pub state: NetworkState,
}

impl StateGuard {
    pub fn new() -> StateGuard {
        let settings = Settings {
            table: format!("berth_t{}", token()),
            ..Settings::default()
        };
        StateGuard {
            state: NetworkState::new(settings),
        }
    }

    pub fn table(&self) -> String {
        self.state.settings.table.clone()
    }
}

impl Drop for StateGuard {
    fn drop(&mut self) {
        let _ = self.state.teardown();
    }
}

/// A host link that is not berth's: a veth pair whose far end sits in namespace `outside`,
/// host end `host_ip`/24, far end `far_ip`/24 — the "outside" host of the NAT tests.
pub struct OutsideLink {
    pub host_if: String,
    pub host_ip: Ipv4Addr,
    pub far_ip: Ipv4Addr,
}

impl OutsideLink {
    pub fn new(outside: &Netns, host_ip: Ipv4Addr, far_ip: Ipv4Addr) -> OutsideLink {
        let t = token();
        let host_if = format!("bo{t}");
        let far_if = format!("bf{t}");
        run_ok(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &far_if,
        ]);
        run_ok(&["ip", "link", "set", &far_if, "netns", &outside.name]);
        run_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &host_if,
        ]);
        run_ok(&["ip", "link", "set", &host_if, "up"]);
        run_ok(&[
            "ip",
            "-n",
            &outside.name,
            "addr",
            "add",
            &format!("{far_ip}/24"),
            "dev",
            &far_if,
        ]);
        run_ok(&["ip", "-n", &outside.name, "link", "set", &far_if, "up"]);
        run_ok(&["ip", "-n", &outside.name, "link", "set", "lo", "up"]);
        OutsideLink {
            host_if,
            host_ip,
            far_ip,
        }
    }
}

impl Drop for OutsideLink {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.host_if]);
    }
}

/// `nft -j list table`, with handles stripped so two listings compare by content.
pub fn table_json(table: &str) -> serde_json::Value {
    let mut v = berth_network::nft::list_json(table).unwrap();
    strip_handles(&mut v);
    v
}

fn strip_handles(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("handle");
            m.values_mut().for_each(strip_handles);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_handles),
        _ => {}
    }
}

/// The DNAT rules (chain `published`) in a `nft -j` listing.
pub fn dnat_rules(listing: &serde_json::Value) -> usize {
    rules(listing)
        .iter()
        .filter(|r| r["chain"] == "published")
        .count()
}

/// Every rule object in a `nft -j` listing.
pub fn rules(listing: &serde_json::Value) -> Vec<serde_json::Value> {
    listing["nftables"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o.get("rule").cloned()).collect())
        .unwrap_or_default()
}
