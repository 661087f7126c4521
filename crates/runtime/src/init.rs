//! TEMPORARY (replaced by the ttyhooks branch).
pub fn run_as_init(_kill_group: bool, exec_child: impl FnOnce() -> std::convert::Infallible) -> ! {
    match exec_child() {}
}
