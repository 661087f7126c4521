//! `exec` sessions and `attach`: both end in an [`Attachment`], a shim stream the API pumps to
//! its client connection.

use std::sync::Arc;

use berth_shim::Request;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;

use super::shim;
use super::spec;
use super::stream::{pump, StreamOptions};
use crate::error::{Error, Result};
use crate::{ids, lock, ContainerRecord, Engine};

#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    /// [height, width] for the terminal.
    pub console_size: Option<[u16; 2]>,
}

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub spec: ExecSpec,
    pub running: bool,
    pub exit_code: Option<i32>,
}

/// A shim stream to pump to a client: connected already (attach), or connected when the
/// client is ready (exec: the process starts only once the client's connection is hijacked, so
/// none of its output can arrive before the client is reading the raw stream).
pub struct Attachment {
    engine: Arc<Engine>,
    stream: Option<UnixStream>,
    pending: Option<(std::path::PathBuf, Request)>,
    opts: StreamOptions,
    exec_id: Option<String>,
}

impl Attachment {
    pub fn tty(&self) -> bool {
        self.opts.tty
    }

    /// Pump until the process's output ends; an exec's exit code is recorded.
    pub async fn run<R, W>(self, from_client: R, to_client: W)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut to_client = to_client;
        let Attachment {
            engine,
            stream,
            pending,
            opts,
            exec_id,
        } = self;
        let record = |code: Option<i32>| record_exec(&engine, exec_id.as_deref(), code);
        let stream = match (stream, pending) {
            (Some(s), _) => s,
            (None, Some((socket, req))) => match shim::call(&socket, &req).await {
                Ok((_, s)) => s,
                Err(e) => {
                    // Docker writes a failed exec's error into the stream; the code says why.
                    let msg = format!("{e}\r\n");
                    let code = if msg.contains("not found") || msg.contains("No such file") {
                        127
                    } else {
                        126
                    };
                    let bytes = if opts.tty {
                        msg.into_bytes()
                    } else {
                        berth_shim::frame::encode(berth_shim::STREAM_STDERR, msg.as_bytes())
                    };
                    record(Some(code));
                    let _ = tokio::io::AsyncWriteExt::write_all(&mut to_client, &bytes).await;
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut to_client).await;
                    return;
                }
            },
            (None, None) => return,
        };
        let code = pump(stream, from_client, &mut to_client, opts).await;
        record(code);
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut to_client).await;
    }
}

/// What a client attached to the container's own stdio gets.
fn stdio_options(rec: &ContainerRecord, stdin: bool, stdout: bool, stderr: bool) -> StreamOptions {
    StreamOptions {
        tty: rec.spec.tty,
        stdin,
        stdout,
        stderr,
    }
}

fn record_exec(engine: &Engine, exec_id: Option<&str>, code: Option<i32>) {
    if let Some(id) = exec_id {
        if let Some(x) = lock(&engine.containers.execs).get_mut(id) {
            x.running = false;
            x.exit_code = Some(code.unwrap_or(126));
        }
    }
}

impl Engine {
    /// Start, with the client's attach hooked up in the same call to the shim (berth's `run`):
    /// the stream of the started container. One running already (started for this attach, see
    /// `Prepare::StartForAttach`, or by someone else) just gets the attach.
    pub async fn attach_and_start(
        self: &Arc<Self>,
        key: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<Attachment> {
        let opts = stdio_options(&self.container(key)?, stdin, stdout, stderr);
        let stream = self
            .start_with(key, Some(stdin))
            .await?
            .ok_or_else(|| Error::Conflict("the container gave no stream".into()))?;
        Ok(self.container_attachment(Some(stream), opts))
    }

    /// An attachment to the container's own stdio (None: the attach just ends).
    fn container_attachment(
        self: &Arc<Self>,
        stream: Option<UnixStream>,
        opts: StreamOptions,
    ) -> Attachment {
        Attachment {
            engine: self.clone(),
            stream,
            pending: None,
            opts,
            exec_id: None,
        }
    }

    /// Attach to a container's stdio. A created or stopped container gets its process (held
    /// by a new shim, waiting for start) so nothing it prints is missed.
    pub async fn attach_container(
        self: &Arc<Self>,
        key: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<Attachment> {
        let id = self.container(key)?.id;
        let opts = |rec: &ContainerRecord| stdio_options(rec, stdin, stdout, stderr);
        {
            let lock = self.containers.op_lock(&id);
            let _g = lock.lock().await;
            let mut rec = self.container(&id)?;
            if !rec.state.task && !rec.state.running() && self.links_unready(&rec) {
                // Docker reports a link target that is not running when the container starts
                // (`run` attaches first): the attach just ends, start gives the error.
                return Ok(self.container_attachment(None, opts(&rec)));
            }
            if let Err(e) = self.ensure_task(&mut rec).await {
                // As with Docker, where attach makes no process: the attach just ends and the
                // start that follows reports the failure (it tries again).
                tracing::debug!("attach to {id}: set up the process: {e}");
                return Ok(self.container_attachment(None, opts(&rec)));
            }
        }
        let rec = self.container(&id)?;
        let stream = self.attach_shim(&id, stdin).await?;
        Ok(self.container_attachment(Some(stream), opts(&rec)))
    }

    /// A client added to the stdio of the container's (created or running) process.
    pub(crate) async fn attach_shim(&self, id: &str, stdin: bool) -> Result<UnixStream> {
        let req = Request::Attach {
            stdin,
            start: false,
        };
        Ok(shim::call(&self.shim_socket(id), &req).await?.1)
    }

    pub fn create_exec(&self, key: &str, spec: ExecSpec) -> Result<String> {
        let rec = self.container(key)?;
        if !rec.state.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        if spec.cmd.is_empty() {
            return Err(Error::InvalidParameter("No exec command specified".into()));
        }
        let id = ids::new_id();
        lock(&self.containers.execs).insert(
            id.clone(),
            ExecRecord {
                id: id.clone(),
                container_id: rec.id,
                spec,
                running: false,
                exit_code: None,
            },
        );
        Ok(id)
    }

    pub fn inspect_exec(&self, exec_id: &str) -> Result<ExecRecord> {
        lock(&self.containers.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("No such exec instance: {exec_id}")))
    }

    /// Start an exec: the process runs in the container, held by its shim.
    pub async fn start_exec(self: &Arc<Self>, exec_id: &str) -> Result<Attachment> {
        let x = self.inspect_exec(exec_id)?;
        if x.running || x.exit_code.is_some() {
            return Err(Error::Conflict(format!(
                "Exec {exec_id} has already been started"
            )));
        }
        let rec = self.container(&x.container_id)?;
        if !rec.state.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let rootfs = self.container_dir(&rec.id).join("rootfs");
        // Legacy link variables first, as in the container's own process.
        let mut env = crate::networks::merge_env(self.link_env_of(&rec), &rec.spec.env);
        env.extend(x.spec.env.iter().cloned());
        let caps = if x.spec.privileged {
            let mut r = rec.clone();
            r.spec.host.privileged = true;
            spec::capabilities(&r)
        } else {
            spec::capabilities(&rec)
        };
        let user = if x.spec.user.is_empty() {
            &rec.spec.user
        } else {
            &x.spec.user
        };
        let cwd = if x.spec.working_dir.is_empty() {
            &rec.spec.working_dir
        } else {
            &x.spec.working_dir
        };
        let process = spec::process(
            &rootfs,
            &spec::ProcessParams {
                args: &x.spec.cmd,
                env: &env,
                cwd,
                user,
                tty: x.spec.tty,
                caps: &caps,
                no_new_privileges: false,
                console_size: x.spec.console_size,
                ulimits: &rec.spec.host.ulimits,
            },
        )
        .map_err(Error::InvalidParameter)?;
        let request = Request::Exec {
            exec_id: exec_id.to_string(),
            process,
            stdin: x.spec.attach_stdin,
            privileged: x.spec.privileged,
        };
        if let Some(x) = lock(&self.containers.execs).get_mut(exec_id) {
            x.running = true;
        }
        Ok(Attachment {
            engine: self.clone(),
            stream: None,
            pending: Some((self.shim_socket(&rec.id), request)),
            opts: StreamOptions {
                tty: x.spec.tty,
                stdin: x.spec.attach_stdin,
                stdout: true,
                stderr: true,
            },
            exec_id: Some(exec_id.to_string()),
        })
    }

    pub async fn resize_exec(
        self: &Arc<Self>,
        exec_id: &str,
        height: u16,
        width: u16,
    ) -> Result<()> {
        let x = self.inspect_exec(exec_id)?;
        shim::call(
            &self.shim_socket(&x.container_id),
            &Request::Resize {
                height,
                width,
                exec_id: Some(exec_id.to_string()),
            },
        )
        .await?;
        Ok(())
    }
}
