//! `berth`: Docker's command line over the Docker Engine API (through `berth_api::client` only).
//!
//! Without std's `main` wrapper: it reads /proc/self/maps (to place the main thread's stack
//! guard) and sets up a signal stack, ~0.15 ms of every command's start; `main` below sets the
//! one thing of it the CLI relies on (SIGPIPE ignored: a daemon that hangs up is an error, not
//! a silent death). Arguments still come through `std::env::args` (captured at load time).
#![cfg_attr(not(test), no_main)]

mod args;
mod commit;
mod containers;
mod cp;
mod events;
mod format;
mod health;
mod images;
mod manage;
mod networks;
mod registry;
mod run;
mod runflags;
mod security;
mod stream;
mod system;
mod template;
mod tty;
mod update;
mod volumes;

use clap::Parser;

use berth_api::client::{Client, ClientError};

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN, before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    run()
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> ! {
    let cli = args::Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async {
        let client = match Client::from_host(cli.host.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("berth: {e}");
                return 1;
            }
        };
        match dispatch(&client, cli.command).await {
            Ok(code) => code,
            Err(e) => {
                match &e {
                    ClientError::Api { .. } | ClientError::Connect { .. } => eprintln!("{e}"),
                    _ => eprintln!("berth: {e}"),
                }
                // Docker's CLI: 125 when the daemon refused a run/create, 1 elsewhere.
                1
            }
        }
    });
    std::process::exit(code);
}

async fn dispatch(c: &Client, cmd: args::Command) -> Result<i32, ClientError> {
    use args::Command as C;
    match cmd {
        C::Version(a) => system::version(c, a).await,
        C::Info(a) => system::info(c, a).await,
        C::Images(a) => images::list(c, a).await,
        C::Load(a) => images::load(c, a).await,
        C::Run(a) => run::run(c, a).await,
        C::Create(a) => run::create_only(c, a).await,
        C::Start(a) => run::start(c, a).await,
        C::Ps(a) => containers::ps(c, a).await,
        C::Stop(a) => containers::stop(c, a).await,
        C::Restart(a) => containers::restart(c, a).await,
        C::Kill(a) => containers::kill(c, a).await,
        C::Rm(a) => containers::rm(c, a).await,
        C::Wait(a) => containers::wait(c, a).await,
        C::Logs(a) => containers::logs(c, a).await,
        C::Inspect(a) => containers::inspect(c, a).await,
        C::Exec(a) => run::exec(c, a).await,
        C::Pause(a) => containers::pause(c, a, true).await,
        C::Unpause(a) => containers::pause(c, a, false).await,
        C::Rename(a) => containers::rename(c, a).await,
        C::Top(a) => containers::top(c, a).await,
        C::Stats(a) => containers::stats(c, a).await,
        C::Tag(a) => images::tag(c, a).await,
        C::Rmi(a) => images::rmi(c, a).await,
        C::Volume(v) => volumes::run(c, v).await,
        C::Network(n) => networks::run(c, n).await,
        C::Pull(a) => registry::pull(c, a).await,
        C::Push(a) => registry::push(c, a).await,
        C::Login(a) => registry::login(c, a).await,
        C::Logout(a) => registry::logout(a).await,
        C::Registry(r) => registry::registry(r).await,
        C::Save(a) => images::save(c, a).await,
        C::Commit(a) => commit::commit(c, a).await,
        C::Import(a) => commit::import(c, a).await,
        C::Export(a) => commit::export(c, a).await,
        C::Diff(a) => commit::diff(c, a).await,
        C::History(a) => commit::history(c, a).await,
        C::Container(m) => manage::container(c, m).await,
        C::Image(m) => manage::image(c, m).await,
        C::System(m) => system::system(c, m).await,
        C::Cp(a) => cp::cp(c, a).await,
        C::Update(a) => update::update(c, a).await,
        C::Events(a) => events::events(c, a).await,
        C::Port(a) => manage::port(c, a).await,
    }
}
