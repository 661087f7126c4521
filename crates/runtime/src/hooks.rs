//! TEMPORARY (replaced by the ttyhooks branch).
pub fn run_hooks(
    phase: &str,
    hooks: &[oci_spec::runtime::Hook],
    _state_json: &[u8],
) -> crate::Result<()> {
    if hooks.is_empty() {
        Ok(())
    } else {
        Err(crate::Error::Other(format!(
            "{phase} hooks not implemented yet"
        )))
    }
}
