//! `volume create|ls|inspect|rm|prune`.

use berth_api::client::{Client, ClientError, Method};
use berth_api::types::{Volume, VolumeCreateBody, VolumeList};

use crate::args::VolumeCommand;
use crate::format;

pub async fn run(c: &Client, cmd: VolumeCommand) -> Result<i32, ClientError> {
    match cmd {
        VolumeCommand::Create { label, name } => {
            let body = VolumeCreateBody {
                name: name.unwrap_or_default(),
                driver: "local".into(),
                labels: Some(
                    label
                        .iter()
                        .map(|l| match l.split_once('=') {
                            Some((k, v)) => (k.to_string(), v.to_string()),
                            None => (l.clone(), String::new()),
                        })
                        .collect(),
                ),
                driver_opts: None,
            };
            let v: Volume = c.post("/volumes/create", &body).await?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls { quiet, format } => {
            let l: VolumeList = c.get("/volumes").await?;
            if let Some(f) = format.filter(|_| !quiet) {
                let rows: Vec<serde_json::Value> = l
                    .volumes
                    .iter()
                    .map(|v| {
                        serde_json::json!({"Name": v.name, "Driver": v.driver, "Mountpoint": v.mountpoint,
                            "Scope": v.scope, "CreatedAt": v.created_at,
                            "Labels": v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")})
                    })
                    .collect();
                format::templated_with(&f, &rows, &[("Name", "VOLUME NAME")])?;
            } else if quiet {
                for v in &l.volumes {
                    println!("{}", v.name);
                }
            } else {
                let rows: Vec<Vec<String>> = l
                    .volumes
                    .iter()
                    .map(|v| vec![v.driver.clone(), v.name.clone()])
                    .collect();
                format::table(&["DRIVER", "VOLUME NAME"], &rows);
            }
            Ok(0)
        }
        VolumeCommand::Inspect { names } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &names {
                match c.get::<serde_json::Value>(&format!("/volumes/{n}")).await {
                    Ok(v) => out.push(v),
                    Err(e @ ClientError::Connect { .. }) => return Err(e),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".into())
            );
            Ok(code)
        }
        VolumeCommand::Rm { force, names } => {
            let mut code = 0;
            for n in &names {
                match c
                    .call_bytes(
                        Method::DELETE,
                        &format!("/volumes/{n}?force={}", u8::from(force)),
                        None,
                    )
                    .await
                {
                    Ok(_) => println!("{n}"),
                    Err(e @ ClientError::Connect { .. }) => return Err(e),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune { .. } => {
            let r: serde_json::Value = c.post("/volumes/prune", &serde_json::json!({})).await?;
            if let Some(names) = r["VolumesDeleted"].as_array() {
                if !names.is_empty() {
                    println!("Deleted Volumes:");
                    for n in names {
                        println!("{}", n.as_str().unwrap_or(""));
                    }
                    println!();
                }
            }
            println!(
                "Total reclaimed space: {}",
                format::human_size(r["SpaceReclaimed"].as_i64().unwrap_or(0))
            );
            Ok(0)
        }
    }
}
