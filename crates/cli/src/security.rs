//! `--security-opt seccomp=<file>`: like the docker CLI, send the profile's content, not its path.

use berth_api::client::ClientError;

pub fn security_opts(opts: &[String]) -> Result<Vec<String>, ClientError> {
    opts.iter()
        .map(|o| {
            let Some(path) = o
                .strip_prefix("seccomp=")
                .or_else(|| o.strip_prefix("seccomp:"))
            else {
                return Ok(o.clone());
            };
            if matches!(path, "unconfined" | "builtin") || path.trim_start().starts_with('{') {
                return Ok(o.clone());
            }
            let body = std::fs::read(path).map_err(|e| {
                ClientError::Protocol(format!("opening seccomp profile ({path}) failed: {e}"))
            })?;
            // Compact, as docker does: the option travels in a JSON array of strings.
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                ClientError::Protocol(format!("seccomp profile {path} is not JSON: {e}"))
            })?;
            Ok(format!("seccomp={v}"))
        })
        .collect()
}
