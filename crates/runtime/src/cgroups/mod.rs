//! cgroups v1 and v2 behind one interface.
//!
//! Contract used by the lifecycle code (`container`, `process`):
//! - `open(cgroups_path, id)` picks v1 or v2 from the host's mounts and returns a `Manager`.
//! - `Manager::create` makes the cgroup(s) and applies `LinuxResources` BEFORE the container's
//!   process is added (`add_process`), so limits hold from the first instruction.
//! - `freeze`/`thaw` implement pause/resume; `pids` lists every process for `kill --all` / `ps`;
//!   `stats` feeds `berth stats`/`events --stats`; `destroy` removes everything on delete.
