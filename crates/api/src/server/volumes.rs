//! /volumes/…

use hyper::{Response, StatusCode};

use super::body::{self, Body};
use super::{error, json_body, Ctx};
use crate::types::{Volume, VolumeCreateBody, VolumeList};

fn to_api(v: berth_engine::volumes::Volume) -> Volume {
    Volume {
        name: v.name,
        driver: "local".into(),
        mountpoint: v.mountpoint.display().to_string(),
        created_at: v.created,
        labels: v.labels,
        scope: "local".into(),
        options: Default::default(),
    }
}

pub async fn create(ctx: Ctx) -> Response<Body> {
    let b: VolumeCreateBody = match json_body(ctx.req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !b.driver.is_empty() && b.driver != "local" {
        return body::error(
            StatusCode::BAD_REQUEST,
            format!(
                "volume driver {:?} is not supported (only \"local\")",
                b.driver
            ),
        );
    }
    match ctx
        .engine
        .create_volume(&b.name, b.labels.unwrap_or_default())
    {
        Ok(v) => body::json(StatusCode::CREATED, &to_api(v)),
        Err(e) => error::response(&e),
    }
}

pub fn list(ctx: &Ctx) -> Response<Body> {
    match ctx.engine.list_volumes() {
        Ok(v) => body::json(
            StatusCode::OK,
            &VolumeList {
                volumes: v.into_iter().map(to_api).collect(),
                warnings: Vec::new(),
            },
        ),
        Err(e) => error::response(&e),
    }
}

pub fn inspect(ctx: &Ctx, name: &str) -> Response<Body> {
    match ctx.engine.inspect_volume(name) {
        Ok(v) => body::json(StatusCode::OK, &to_api(v)),
        Err(e) => error::response(&e),
    }
}

pub fn remove(ctx: &Ctx, name: &str) -> Response<Body> {
    match ctx
        .engine
        .remove_volume(name, ctx.query.flag("force", false))
    {
        Ok(()) => body::empty(StatusCode::NO_CONTENT),
        Err(e) => error::response(&e),
    }
}

pub fn prune(ctx: &Ctx) -> Response<Body> {
    match ctx.engine.prune_volumes() {
        Ok((names, freed)) => body::json(
            StatusCode::OK,
            &serde_json::json!({"VolumesDeleted": names, "SpaceReclaimed": freed}),
        ),
        Err(e) => error::response(&e),
    }
}
