//! Link `berth` as a position-dependent executable: a PIE is relocated at every start (~7,800
//! relocations and a private copy of each page of relocated read-only data), which is a
//! measurable part of a short command such as `berth run --rm` (docs/PERFORMANCE.md). The CLI
//! has no ASLR for its own code then — as the docker CLI, a Go binary, has none by default.
fn main() {
    // A static build (`scripts/build-release`) is position-dependent already (its
    // relocation model is static); -no-pie there would leave a broken interpreter request.
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !features.split(',').any(|f| f == "crt-static") {
        println!("cargo:rustc-link-arg-bin=berth=-no-pie");
    }
}
