//! Link `berth-shim` as a position-dependent executable. A PIE's relocated read-only data
//! (vtables, panic locations: ~260 KiB) becomes a private, dirty copy in *every* shim process;
//! linked at a fixed address those pages stay clean and shared by all shims. That halves an idle
//! shim's private memory. The shim has no ASLR for its own code then — the same as Go's
//! non-PIE default for containerd's shims.
fn main() {
    // A static build (`scripts/build-release`) is position-dependent already (its
    // relocation model is static); -no-pie there would leave a broken interpreter request.
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
    }
}
