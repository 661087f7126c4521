//! Command line: flags only, parsed by hand to keep the shim small.

use std::path::PathBuf;

pub const USAGE: &str = "usage: berth-shim --id ID --bundle DIR --runtime-root DIR --socket PATH \
--log PATH --exit-file PATH [--tty] [--stdin] [--stdin-once] [--log-max-size BYTES] \
[--log-max-files N] [--start-held MS]";

#[derive(Debug, Default)]
pub struct Args {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime_root: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub exit_file: PathBuf,
    pub tty: bool,
    /// Keep the container's stdin open for attach (Docker's OpenStdin).
    pub stdin: bool,
    /// Close the container's stdin when the first attached client ends it (StdinOnce).
    pub stdin_once: bool,
    /// Log rotation: bytes per file (0: never rotate) and files kept.
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Start the container as soon as it is created, but hold its output (and so the report of
    /// its exit) until the first client attaches, or this long: berth's `run`, whose attach
    /// follows at once, then skips a round trip through berthd before the start.
    pub start_held: Option<std::time::Duration>,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut a = Args::default();
        while let Some(flag) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match flag.as_str() {
                "--id" => a.id = value("--id")?,
                "--bundle" => a.bundle = value("--bundle")?.into(),
                "--runtime-root" => a.runtime_root = value("--runtime-root")?.into(),
                "--socket" => a.socket = value("--socket")?.into(),
                "--log" => a.log = value("--log")?.into(),
                "--exit-file" => a.exit_file = value("--exit-file")?.into(),
                "--tty" => a.tty = true,
                "--stdin" => a.stdin = true,
                "--stdin-once" => a.stdin_once = true,
                "--start-held" => {
                    let ms = value("--start-held")?
                        .parse()
                        .map_err(|_| "--start-held: not a number of milliseconds".to_string())?;
                    a.start_held = Some(std::time::Duration::from_millis(ms))
                }
                "--log-max-size" => {
                    a.log_max_size = value("--log-max-size")?
                        .parse()
                        .map_err(|_| "--log-max-size: not a number".to_string())?
                }
                "--log-max-files" => {
                    a.log_max_files = value("--log-max-files")?
                        .parse()
                        .map_err(|_| "--log-max-files: not a number".to_string())?
                }
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        for (name, empty) in [
            ("--id", a.id.is_empty()),
            ("--bundle", a.bundle.as_os_str().is_empty()),
            ("--runtime-root", a.runtime_root.as_os_str().is_empty()),
            ("--socket", a.socket.as_os_str().is_empty()),
            ("--log", a.log.as_os_str().is_empty()),
            ("--exit-file", a.exit_file.as_os_str().is_empty()),
        ] {
            if empty {
                return Err(format!("missing {name}"));
            }
        }
        Ok(a)
    }
}
