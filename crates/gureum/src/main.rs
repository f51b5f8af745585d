//! `gureum`: the one binary. `gureum up` runs the cloud (API, and later console, metadata
//! service and host agent) in the foreground; the other subcommands manage accounts and
//! print shell completions.

mod api;
mod cli;
mod host;
mod images;
mod setup;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    cli::run(cli)
}
