//! version, info.

use berth_api::client::{Client, ClientError};

pub async fn version(c: &Client) -> Result<i32, ClientError> {
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", berth_api::API_VERSION);
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    println!();
    let v = c.version().await?;
    println!("Server: berth");
    println!(" Engine:");
    println!("  Version:          {}", v.version);
    println!(
        "  API version:      {} (minimum version {})",
        v.api_version, v.min_api_version
    );
    println!("  OS/Arch:          {}/{}", v.os, v.arch);
    println!("  Kernel:           {}", v.kernel_version);
    Ok(0)
}

pub async fn info(c: &Client) -> Result<i32, ClientError> {
    let i = c.info().await?;
    let g = |k: &str| {
        i.get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    println!("Server:");
    println!(" Containers: {}", g("Containers"));
    println!("  Running: {}", g("ContainersRunning"));
    println!("  Paused: {}", g("ContainersPaused"));
    println!("  Stopped: {}", g("ContainersStopped"));
    println!(" Images: {}", g("Images"));
    println!(" Server Version: {}", g("ServerVersion"));
    println!(" Storage Driver: {}", g("Driver"));
    println!(" Logging Driver: {}", g("LoggingDriver"));
    println!(" Cgroup Driver: {}", g("CgroupDriver"));
    println!(" Cgroup Version: {}", g("CgroupVersion"));
    println!(" Kernel Version: {}", g("KernelVersion"));
    println!(" CPUs: {}", g("NCPU"));
    println!(" Total Memory: {}", g("MemTotal"));
    println!(" Name: {}", g("Name"));
    println!(" Docker Root Dir: {}", g("DockerRootDir"));
    Ok(0)
}
