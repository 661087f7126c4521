//! Rough figures for berth's bridge networking (root; needs iperf3):
//! connect+disconnect latency, container-to-container TCP throughput vs host loopback, and
//! published-port (DNAT via 127.0.0.1) throughput.
//!
//! `cargo run -p berth-network --example netbench`

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_network::ports::PortSpec;
use berth_network::{ConnectOptions, NetnsRef, NetworkConfig, NetworkState, Settings};

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn iperf_server(ns: Option<&str>, port: u16) -> Child {
    let mut cmd = Command::new(if ns.is_some() { "ip" } else { "iperf3" });
    if let Some(ns) = ns {
        cmd.args(["netns", "exec", ns, "iperf3"]);
    }
    let child = cmd
        .args(["-s", "-1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 -s");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Gbit/s received, from `iperf3 -J`.
fn iperf_client(ns: Option<&str>, target: &str, port: u16) -> f64 {
    let mut args = Vec::new();
    if let Some(ns) = ns {
        args.extend(["ip", "netns", "exec", ns]);
    }
    let port = port.to_string();
    args.extend(["iperf3", "-J", "-t", "5", "-c", target, "-p", &port]);
    let json: serde_json::Value = serde_json::from_str(&sh(&args)).expect("iperf3 json");
    json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e9
}

fn main() {
    let mut state = NetworkState::new(Settings {
        table: "berth_bench".into(),
        ..Settings::default()
    });
    state
        .create_network(NetworkConfig {
            name: "bench".into(),
            bridge: Some("btbench0".into()),
            subnet: Some("10.232.0.0/24".parse().unwrap()),
            // BENCH_MTU=65520 shows what the 1500-byte default costs against loopback's 64 KiB.
            mtu: std::env::var("BENCH_MTU").ok().and_then(|m| m.parse().ok()),
            ..Default::default()
        })
        .unwrap();
    for ns in ["bench-a", "bench-b"] {
        sh(&["ip", "netns", "add", ns]);
    }
    let a = NetnsRef::Path("/run/netns/bench-a".into());
    let b = NetnsRef::Path("/run/netns/bench-b".into());

    let (mut conn, mut disc) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let t = Instant::now();
        state
            .connect("a", &a, "bench", &ConnectOptions::default())
            .unwrap();
        conn.push(t.elapsed());
        let t = Instant::now();
        state.disconnect("a", "bench").unwrap();
        disc.push(t.elapsed());
    }
    conn.sort();
    disc.sort();
    println!("connect: median {:?}, max {:?}", conn[10], conn[19]);
    println!(
        "disconnect (deletes the veth): median {:?}, max {:?}",
        disc[10], disc[19]
    );

    // The `run --rm` path: the namespace dies with the container, berth only releases.
    let mut cycle = Vec::new();
    for _ in 0..20 {
        sh(&["ip", "netns", "add", "bench-t"]);
        let t = Instant::now();
        let ns = NetnsRef::Path("/run/netns/bench-t".into());
        state
            .connect("t", &ns, "bench", &ConnectOptions::default())
            .unwrap();
        let connected = t.elapsed();
        sh(&["ip", "netns", "del", "bench-t"]);
        let t = Instant::now();
        state.release_container("t").unwrap();
        cycle.push(connected + t.elapsed());
    }
    cycle.sort();
    println!(
        "connect + release (namespace gone): median {:?}, max {:?}",
        cycle[10], cycle[19]
    );

    state
        .connect("a", &a, "bench", &ConnectOptions::default())
        .unwrap();
    let eb = state
        .connect("b", &b, "bench", &ConnectOptions::default())
        .unwrap();
    let t = Instant::now();
    state
        .publish("b", &[PortSpec::parse("127.0.0.1:15202:5201").unwrap()])
        .unwrap();
    println!("publish (nft replace): {:?}", t.elapsed());

    let s = iperf_server(None, 15301);
    let lo = iperf_client(None, "127.0.0.1", 15301);
    drop(s);
    let s = iperf_server(Some("bench-b"), 5201);
    let c2c = iperf_client(Some("bench-a"), &eb.ip.to_string(), 5201);
    drop(s);
    let s = iperf_server(Some("bench-b"), 5201);
    let published = iperf_client(None, "127.0.0.1", 15202);
    drop(s);
    println!("TCP host loopback:          {lo:.2} Gbit/s");
    println!(
        "TCP container-to-container: {c2c:.2} Gbit/s ({:.0}% of loopback)",
        100.0 * c2c / lo
    );
    println!("TCP published port (127.0.0.1 DNAT): {published:.2} Gbit/s");

    let _ = state.teardown();
    for ns in ["bench-a", "bench-b"] {
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
}
