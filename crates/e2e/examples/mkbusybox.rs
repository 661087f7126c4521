//! Write the busybox test image archive: `mkbusybox OUT.tar [NAME]`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args.get(1).expect("usage: mkbusybox OUT.tar [NAME]");
    let name = args.get(2).map(String::as_str).unwrap_or("busybox:latest");
    berth_e2e::busybox_tar(std::path::Path::new(out), name);
}
