//! `gureum`: the one binary. `gureum up` runs the cloud (API, and later console, metadata
//! service and host agent) in the foreground; the other subcommands manage accounts and
//! print shell completions.

mod account;
mod api;
mod billing;
mod cli;
mod client;
mod doctor;
mod ebs;
mod friendly;
mod host;
mod host_images;
mod host_keys;
mod images;
mod imds;
mod packages;
mod serve;
mod setup;
mod throttle;

use clap::Parser;

/// The hidden argument that turns this binary into an instance's console relay (a small
/// detached process per running guest; see `gureum_runtime::console`).
pub const CONSOLE_RELAY_ARG: &str = "__console-relay";
/// The hidden argument that turns this binary into the mount interception daemon (one per
/// data directory; see `gureum_runtime`'s mountd module).
pub const MOUNTD_ARG: &str = "__mountd";

fn main() -> anyhow::Result<()> {
    if std::env::args_os().nth(1).as_deref() == Some(CONSOLE_RELAY_ARG.as_ref()) {
        let args: Vec<_> = std::env::args_os().skip(2).collect();
        std::process::exit(gureum_runtime::console_relay_main(&args));
    }
    if std::env::args_os().nth(1).as_deref() == Some(MOUNTD_ARG.as_ref()) {
        let args: Vec<_> = std::env::args_os().skip(2).collect();
        std::process::exit(gureum_runtime::mountd_main(&args));
    }
    let cli = cli::Cli::parse();
    cli::run(cli)
}
