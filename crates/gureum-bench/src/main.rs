//! `gureum-bench`: the benchmark harness of gureum.
//!
//! Without a subcommand (or with `load`) it is a closed-loop load generator for AWS Query
//! endpoints: `--connections` persistent keep-alive HTTP/1.1 connections each send one
//! SigV4-signed request after another (a fresh signature, with the current time, for every
//! request) for `--warmup` + `--duration` seconds, and it prints one JSON line (stdout) and
//! one human line (stderr) with requests/s, latency percentiles, errors and its own CPU share.
//!
//! The other subcommands are the pieces `scripts/bench` needs around it: `seed` (import
//! OpenSSH public keys as key pairs), `call` (one signed request, body to stdout),
//! `wait-ready` (poll `/healthz`), `startup` (time-to-ready of a server command, N times),
//! `free-port` and `report` (render the results as the markdown section of
//! `docs/BENCHMARKS.md`).
//!
//! Modules:
//! * [`creds`]: access keys from flags or a shared-credentials file.
//! * [`http1`]: a minimal keep-alive HTTP/1.1 client over tokio's `TcpStream`.
//! * [`signer`]: request bytes, signed with `gureum_sigv4` per request.
//! * [`load`]: the closed-loop generator and its statistics.
//! * [`cpu`]: CPU time of a process from `/proc`.
//! * [`seed`]: `ImportKeyPair` for a directory of `*.pub` files.
//! * [`ready`]: `/healthz` polling and start-up timing.
//! * [`report`]: the markdown report and the `docs/BENCHMARKS.md` section splice.

mod cpu;
mod creds;
mod http1;
mod load;
mod ready;
mod report;
mod seed;
mod signer;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::creds::Credentials;
use crate::signer::RequestTemplate;

#[derive(Parser, Debug)]
#[command(
    name = "gureum-bench",
    version,
    about = "Closed-loop SigV4 load generator and benchmark harness for gureum",
    after_help = "Without a subcommand, `gureum-bench --url ... --body ...` means `gureum-bench load ...`."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Closed-loop load: N keep-alive connections, one signed request after another.
    Load(LoadArgs),
    /// Import every `*.pub` file of a directory as a key pair named after the file.
    Seed(SeedArgs),
    /// Send one request; print the status on stderr and the body on stdout.
    Call(CallArgs),
    /// Poll `GET /healthz` until it answers 200.
    WaitReady(WaitReadyArgs),
    /// Start a server command N times and time how long until `/healthz` answers 200.
    Startup(StartupArgs),
    /// Print a free TCP port on 127.0.0.1.
    FreePort,
    /// Render results (JSON lines) as markdown; splice them into a doc between markers.
    Report(report::ReportArgs),
}

/// Where requests go and how they are signed.
#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// Endpoint, `http://HOST:PORT[/PATH]` (plain HTTP only).
    #[arg(long)]
    url: String,
    /// Shared-credentials file (the `credentials` gureum writes in its data dir).
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Profile of --credentials.
    #[arg(long, default_value = "gureum")]
    profile: String,
    /// Access key id (instead of --credentials).
    #[arg(long, requires = "secret_key")]
    access_key: Option<String>,
    /// Secret access key (instead of --credentials).
    #[arg(long, requires = "access_key")]
    secret_key: Option<String>,
    /// SigV4 service of the credential scope.
    #[arg(long, default_value = "ec2")]
    service: String,
    /// SigV4 region of the credential scope.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Sign requests with SigV4 (`--sign false` sends them unsigned).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sign: bool,
    /// Name of the target in the JSON output (e.g. `gureum`, `moto`).
    #[arg(long, default_value = "target")]
    label: String,
}

#[derive(Args, Debug, Clone)]
struct LoadArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Form body of every request, e.g. `Action=DescribeKeyPairs&Version=2016-11-15`.
    #[arg(long)]
    body: String,
    /// Concurrent keep-alive connections (each with one request in flight).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring (not counted).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Worker threads of the generator (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Server process to account CPU time for during the measured window.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Args, Debug)]
struct SeedArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Directory of OpenSSH public keys (`NAME.pub`).
    #[arg(long)]
    key_dir: PathBuf,
}

#[derive(Args, Debug)]
struct CallArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Form body of the request.
    #[arg(long)]
    body: String,
}

#[derive(Args, Debug)]
struct WaitReadyArgs {
    /// Server base URL.
    #[arg(long)]
    url: String,
    /// Path to poll (moto_server has no `/healthz`).
    #[arg(long, default_value = "/healthz")]
    path: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
}

#[derive(Args, Debug)]
struct StartupArgs {
    /// Server base URL the command listens on; `/healthz` is polled.
    #[arg(long)]
    url: String,
    /// How many starts.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Name of the target in the JSON output.
    #[arg(long, default_value = "target")]
    label: String,
    /// Give up on one start after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Keep the running server's pid in this file (so a caller can clean up after us).
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// The server command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

impl TargetArgs {
    fn credentials(&self) -> anyhow::Result<Option<Credentials>> {
        if !self.sign {
            return Ok(None);
        }
        if let (Some(a), Some(s)) = (&self.access_key, &self.secret_key) {
            return Ok(Some(Credentials {
                access_key_id: a.clone(),
                secret_access_key: s.clone(),
            }));
        }
        let file = self
            .credentials
            .as_ref()
            .context("--sign needs --credentials FILE or --access-key/--secret-key")?;
        Credentials::from_file(file, &self.profile).map(Some)
    }

    fn template(&self, body: &str) -> anyhow::Result<(SocketAddr, RequestTemplate)> {
        let (addr, host, path) = http1::parse_url(&self.url)?;
        let t = RequestTemplate::new(
            host,
            path,
            body.as_bytes().to_vec(),
            self.credentials()?,
            self.region.clone(),
            self.service.clone(),
        );
        Ok((addr, t))
    }
}

/// The action named in a form body, for labels.
fn action_of(body: &str) -> String {
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("?")
        .to_string()
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    Ok(rt)
}

fn run_load(a: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.connections >= 1, "--connections must be at least 1");
    anyhow::ensure!(a.duration > 0.0, "--duration must be positive");
    let (addr, template) = a.target.template(&a.body)?;
    let opts = load::LoadOpts {
        addr,
        template,
        connections: a.connections,
        warmup: Duration::from_secs_f64(a.warmup.max(0.0)),
        duration: Duration::from_secs_f64(a.duration),
        server_pid: a.server_pid,
    };
    let rt = runtime(a.threads)?;
    let result = rt.block_on(load::run(opts))?;
    let record = result.to_json(
        &a.target.label,
        &action_of(&a.body),
        a.target.sign,
        a.threads,
    );
    eprintln!("{}", result.human(&a.target.label, &action_of(&a.body)));
    println!("{}", serde_json::to_string(&record)?);
    Ok(())
}

/// The command line, with `load` put in front of options given without a subcommand.
fn args() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let first = args.get(1).and_then(|a| a.to_str());
    if first.is_some_and(|a| a.starts_with("--") && !matches!(a, "--help" | "--version")) {
        args.insert(1, "load".into());
    }
    args
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(args());
    match cli.command {
        Cmd::Load(a) => run_load(a),
        Cmd::Seed(a) => {
            let (addr, template) = a.target.template("")?;
            let rt = runtime(1)?;
            let record = rt.block_on(seed::run(addr, template, &a.key_dir, &a.target.label))?;
            println!("{}", serde_json::to_string(&record)?);
            Ok(())
        }
        Cmd::Call(a) => {
            let (addr, template) = a.target.template(&a.body)?;
            let rt = runtime(1)?;
            let (status, body) = rt.block_on(seed::call(addr, &template))?;
            eprintln!("HTTP {status}, {} bytes", body.len());
            use std::io::Write;
            std::io::stdout().write_all(&body)?;
            anyhow::ensure!(status == 200, "HTTP {status}");
            Ok(())
        }
        Cmd::WaitReady(a) => {
            let (addr, host, _) = http1::parse_url(&a.url)?;
            let waited = ready::wait_ready(
                addr,
                &host,
                &a.path,
                Duration::from_secs_f64(a.timeout),
                || Ok(()),
            )?;
            eprintln!("ready after {:.1} ms", waited.as_secs_f64() * 1e3);
            Ok(())
        }
        Cmd::Startup(a) => {
            let (addr, host, _) = http1::parse_url(&a.url)?;
            let record = ready::startup(
                addr,
                &host,
                &a.command,
                a.runs,
                Duration::from_secs_f64(a.timeout),
                &a.label,
                a.pid_file.as_deref(),
            )?;
            println!("{}", serde_json::to_string(&record)?);
            Ok(())
        }
        Cmd::FreePort => {
            let l = TcpListener::bind("127.0.0.1:0")?;
            println!("{}", l.local_addr()?.port());
            Ok(())
        }
        Cmd::Report(a) => report::run(&a),
    }
}
