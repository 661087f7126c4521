//! A container made ahead of its create: cloned into its namespaces and cgroup, its mounts,
//! pivot_root, sysctls and masked paths done — everything but its process, which it waits for.
//!
//! Why: that setup is most of a create (~40 mounts, several milliseconds of kernel work) and
//! depends only on the spec's non-process parts, which repeat from one `run` to the next. A
//! spare shim makes a sandbox for the container its daemon expects next; the create that
//! follows hands it the process (args, env, user, cwd, capabilities, rlimits, ...) and it
//! goes on from there as any create would. A spec that differs anywhere else does not fit:
//! the sandbox is let go (killed, its cgroup and state removed) and the create made as usual.

use std::path::Path;

use oci_spec::runtime::Spec;

use crate::cgroups::{self, Manager};
use crate::container::{
    created_state, finish_create, hook_state_json, make_exec_fifo, Container, CreateCleanup,
    CreateOptions, Runtime,
};
use crate::error::{Error, Result};
use crate::process::{self, Sandboxed};
use crate::spec::Bundle;
use crate::state::{StateDir, Status};

/// A container set up but for its process (see the module's note). Dropped unfinished: its
/// process is killed, its cgroup and state directory removed.
pub struct Sandbox {
    id: String,
    bundle: Bundle,
    cgroups_path: Option<String>,
    start: bool,
    parts: Option<Parts>,
}

struct Parts {
    sandboxed: Sandboxed,
    dir: StateDir,
    cgroup: Box<dyn Manager>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("id", &self.id)
            .field("bundle", &self.bundle.dir)
            .field("pid", &self.pid())
            .finish()
    }
}

impl Runtime {
    /// Make container `id` from the bundle at `bundle_dir` up to its process (see the
    /// module's note); `Sandbox::finish` completes the create. Not for a terminal (its
    /// console is made at the create). `opts.start`: the finished process runs at once.
    pub fn create_sandbox(
        &self,
        id: &str,
        bundle_dir: &Path,
        opts: &CreateOptions,
        ahead: process::MadeAhead,
    ) -> Result<Sandbox> {
        let plan = self.plan_create(bundle_dir)?;
        if plan.terminal || opts.console_socket.is_some() {
            return Err(Error::config(
                "process.terminal",
                "a container with a terminal is not made ahead",
            ));
        }
        let cgroup = cgroups::open(plan.cgroups_path.as_deref(), id)?;
        let dir = StateDir::create(&self.root, id)?;
        let mut cleanup = CreateCleanup {
            dir: &dir,
            cgroup: Some(cgroup.as_ref()),
            armed: true,
        };
        let exec_fifo = if opts.start {
            None
        } else {
            Some(make_exec_fifo(&dir.fifo_path())?)
        };
        let bundle = &plan.bundle;
        let sandboxed = process::spawn_sandbox(
            bundle,
            cgroup.as_ref(),
            plan.spawn_options(self, opts, None, exec_fifo, ahead),
            &|pid| hook_state_json(&bundle.spec, id, pid, Status::Creating, &bundle.dir),
        )?;
        cleanup.armed = false;
        drop(cleanup);
        Ok(Sandbox {
            id: id.to_string(),
            bundle: plan.bundle,
            cgroups_path: plan.cgroups_path,
            start: opts.start,
            parts: Some(Parts {
                sandboxed,
                dir,
                cgroup,
            }),
        })
    }
}

impl Sandbox {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The sandbox's process (the container's first, once finished).
    pub fn pid(&self) -> Option<i32> {
        self.parts.as_ref().map(|p| p.sandboxed.pid().as_raw())
    }

    /// Whether a container with `spec` can be made from this sandbox: the specs differ at
    /// most in the process's fields a sandbox has not acted on yet.
    pub fn fits(&self, spec: &Spec) -> bool {
        same_but_process(&mut self.bundle.spec.clone(), &mut spec.clone())
    }

    /// `Runtime::create_held` of container `id` from `bundle_dir` (whose spec was rewritten for
    /// it since), made from this sandbox: its process is sent the spec's `process` and set up
    /// as any container's. Refused, and the sandbox let go, when the container is another or
    /// its spec does not fit (`fits`); the caller then creates it as usual.
    pub fn finish(
        mut self,
        id: &str,
        bundle_dir: &Path,
        opts: &CreateOptions,
    ) -> Result<Container> {
        let mut bundle = Bundle::load(bundle_dir)?;
        let process = bundle
            .spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "missing: nothing to run"))?;
        let personality = bundle
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.personality().as_ref());
        crate::security::check(process, personality)?;
        if id != self.id
            || bundle.dir != self.bundle.dir
            || opts.start != self.start
            || opts.console_socket.is_some()
            || !same_but_process(&mut self.bundle.spec, &mut bundle.spec)
        {
            return Err(Error::Other(format!(
                "container {id} does not fit the sandbox made for {}",
                self.id
            )));
        }
        let Parts {
            sandboxed,
            dir,
            cgroup,
        } = self
            .parts
            .take()
            .ok_or_else(|| Error::Other("the sandbox was used already".into()))?;
        let mut cleanup = CreateCleanup {
            dir: &dir,
            cgroup: Some(cgroup.as_ref()),
            armed: true,
        };
        let mut spawned = sandboxed.finish(&bundle.spec)?;
        let st = created_state(id, spawned.pid.as_raw(), bundle, self.cgroups_path.take());
        finish_create(&st, &dir, opts, false)?;
        cleanup.armed = false;
        drop(cleanup);
        let mount_ns = spawned.mount_ns.take();
        // `spawned.channel` goes here: the process has its own end, closed when it execs.
        Ok(Container {
            state: st,
            dir,
            cgroup,
            mount_ns,
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(Parts {
            sandboxed,
            dir,
            cgroup,
        }) = self.parts.take()
        {
            // Killed and reaped first: a cgroup with a process cannot be removed.
            drop(sandboxed);
            let _ = cgroup.destroy();
            let _ = dir.remove();
        }
    }
}

/// Whether specs `a` and `b` are the same but for the process fields a sandbox lets change.
/// The processes are taken out for the comparison (no copy of either spec) and put back.
fn same_but_process(a: &mut Spec, b: &mut Spec) -> bool {
    let (pa, pb) = (a.process_mut().take(), b.process_mut().take());
    let rest_equal = a == b;
    *a.process_mut() = pa;
    *b.process_mut() = pb;
    let settled = |s: &Spec| {
        s.process().as_ref().map(|p| {
            (
                p.terminal().unwrap_or(false),
                p.console_size().as_ref().map(|c| (c.height(), c.width())),
                p.oom_score_adj(),
            )
        })
    };
    rest_equal && settled(a) == settled(b)
}
