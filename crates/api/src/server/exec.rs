//! /containers/{id}/exec and /exec/{id}/…

use hyper::{Response, StatusCode};
use serde_json::json;

use super::body::{self, Body};
use super::{convert, error, hijack, json_body, Ctx};
use crate::types::{ExecConfig, ExecStartBody, IdResponse};

pub async fn create(ctx: Ctx, id: &str) -> Response<Body> {
    let c: ExecConfig = match json_body(ctx.req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match ctx.engine.create_exec(id, convert::exec_spec(c)) {
        Ok(exec_id) => body::json(StatusCode::CREATED, &IdResponse { id: exec_id }),
        Err(e) => error::response(&e),
    }
}

pub async fn start(ctx: Ctx, id: &str) -> Response<Body> {
    let upgrade = hijack::wants_upgrade(&ctx.req);
    let engine = ctx.engine.clone();
    let mut req = ctx.req;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let b: ExecStartBody = match json_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let attachment = match engine.start_exec(id).await {
        Ok(a) => a,
        Err(e) => return error::response(&e),
    };
    if b.detach || !upgrade {
        // Nobody listens: drain the output so the exit code is still recorded.
        tokio::spawn(attachment.run(tokio::io::empty(), tokio::io::sink()));
        return body::empty(StatusCode::OK);
    }
    hijack::upgrade(on_upgrade, attachment)
}

pub async fn resize(ctx: &Ctx, id: &str) -> Response<Body> {
    let h = ctx.query.int("h").unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = ctx.query.int("w").unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    match ctx.engine.resize_exec(id, h, w).await {
        Ok(()) => body::empty(StatusCode::OK),
        Err(e) => error::response(&e),
    }
}

pub fn inspect(ctx: &Ctx, id: &str) -> Response<Body> {
    match ctx.engine.inspect_exec(id) {
        Ok(x) => body::json(
            StatusCode::OK,
            &json!({
                "ID": x.id,
                "ContainerID": x.container_id,
                "Running": x.running,
                "ExitCode": x.exit_code,
                "OpenStdin": x.spec.attach_stdin,
                "OpenStdout": x.spec.attach_stdout,
                "OpenStderr": x.spec.attach_stderr,
                "ProcessConfig": {
                    "tty": x.spec.tty,
                    "entrypoint": x.spec.cmd.first(),
                    "arguments": x.spec.cmd.iter().skip(1).collect::<Vec<_>>(),
                    "privileged": x.spec.privileged,
                    "user": x.spec.user,
                },
                "CanRemove": false,
                "Pid": 0,
            }),
        ),
        Err(e) => error::response(&e),
    }
}
