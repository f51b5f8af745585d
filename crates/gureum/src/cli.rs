//! The command line: flags, their `GUREUM_*` environment equivalents, and each subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::{CommandFactory, Parser, Subcommand};

use crate::setup;

#[derive(Parser, Debug)]
#[command(
    name = "gureum",
    version,
    about = "A self-hosted, EC2-compatible compute cloud"
)]
pub struct Cli {
    /// Where the cloud keeps its state (default: /var/lib/gureum for root, else
    /// $XDG_DATA_HOME/gureum).
    #[arg(long, global = true, env = "GUREUM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the cloud in the foreground: the EC2 API on --listen.
    Up(UpArgs),
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Manage access keys.
    #[command(subcommand, name = "access-key")]
    AccessKey(AccessKeyCmd),
    /// Build, import and list images (AMIs).
    #[command(subcommand)]
    Image(ImageCmd),
    /// launch, ls, ssh, logs, stop, start, reboot, terminate: API clients of a running cloud.
    #[command(flatten)]
    Friendly(crate::friendly::FriendlyCmd),
    /// Print an account's monthly bill (usage rated with the price list, free tier applied).
    Bill {
        /// Account id or name.
        #[arg(long, default_value = "admin")]
        account: String,
        /// YYYY-MM; the current month (to date) when absent.
        #[arg(long)]
        month: Option<String>,
        #[arg(long, env = "GUREUM_REGION", default_value = "us-east-1")]
        region: String,
    },
    /// An account's monthly budget: an alert in the log and the console when the month's
    /// actual or forecast cost crosses it, optionally stopping the account's instances.
    #[command(subcommand)]
    Budget(BudgetCmd),
    /// Report what works on this host: each package group, runc, cgroups, nftables, KVM, TCG.
    Doctor,
    /// Install the system packages instances need, each group on its own (`gureum up` does
    /// this too); a group that cannot be installed says why and turns off only its feature.
    Install {
        /// For VMs: install Debian's qemu-system-x86 with the qemu-utils of its own release,
        /// replacing an installed qemu-utils of another version.
        #[arg(long)]
        replace_qemu_utils: bool,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Address of the API (and console).
    #[arg(long, env = "GUREUM_LISTEN", default_value = "127.0.0.1:8773")]
    pub listen: SocketAddr,
    /// The region this cloud serves; zones are <region>a, b and c.
    #[arg(long, env = "GUREUM_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Where built images are cached (shared by all data dirs).
    #[arg(long, env = "GUREUM_CACHE_DIR", default_value = gureum_image::DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,
    /// Do not build the default debian-12 image on first start.
    #[arg(long, env = "GUREUM_NO_DEFAULT_IMAGE", value_parser = clap::builder::BoolishValueParser::new(),
          num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub no_default_image: bool,
    /// Live instances allowed per account (AWS's classic default is 20).
    #[arg(long, env = "GUREUM_INSTANCE_LIMIT", default_value_t = 20)]
    pub instance_limit: usize,
    /// Where auto-assigned public IPv4 addresses come from: loopback addresses of this host by
    /// default (nothing leaves the machine); a real range routed to this host in a deployment.
    #[arg(long, env = "GUREUM_PUBLIC_IPS", default_value = gureum_core::DEFAULT_PUBLIC_POOL)]
    pub public_ips: ipnet::Ipv4Net,
    /// Live instances allowed on this host.
    #[arg(long, env = "GUREUM_HOST_CAPACITY", default_value_t = 200)]
    pub host_capacity: usize,
    /// What launches run on unless their tag gureum:hypervisor asks otherwise.
    #[arg(long, env = "GUREUM_HYPERVISOR", default_value = "container", value_parser = hypervisor_parser())]
    pub hypervisor: gureum_types::Hypervisor,
    /// Guests of the default image kept booted ahead of launches: a launch of that image takes
    /// one and skips the boot (0: none). They use about 10 MiB each while they wait.
    #[arg(long, env = "GUREUM_WARM_POOL", default_value_t = 10)]
    pub warm_pool: usize,
    /// Throttle EC2 API requests per account and action as EC2 does (token buckets of 100,
    /// refilled 20/s, for Describe*/Get*/List*; 50, refilled 5/s, for the others), answering
    /// RequestLimitExceeded. `off` for benchmarks.
    #[arg(long, env = "GUREUM_THROTTLE", value_parser = clap::builder::BoolishValueParser::new(),
          default_value = "on")]
    pub throttle: bool,
    /// Open connections at most on the API/console port, all clients together (default: 4096,
    /// or half the open-file limit if that is lower). Over it, the longest-idle connection is
    /// closed to make room.
    #[arg(long, env = "GUREUM_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections at most from one IP address (default: 512, or half the open-file
    /// limit if that is lower); over it, that address's longest-idle connection is closed.
    #[arg(long, env = "GUREUM_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Seconds a client has to send a request's head once it started.
    #[arg(long, env = "GUREUM_HEADER_READ_TIMEOUT", default_value_t = 10.0)]
    pub header_read_timeout: f64,
    /// Seconds a connection with no request in flight stays open (keep-alive).
    #[arg(long, env = "GUREUM_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout: f64,
}

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Create an account with a first access key; prints its id and credentials.
    Create { name: String },
    /// List accounts and their access key ids.
    List,
    /// Set the console password of an account (by name or id); asks for it twice.
    Passwd {
        account: String,
        /// Read the password from the first line of standard input instead (scripts).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Build an image from a recipe (debian-12, debian-11, ubuntu-22.04, ubuntu-18.04) and
    /// register it as a public AMI owned by gureum.
    Build {
        recipe: String,
        /// A package mirror to build from (needed for the Ubuntu recipes).
        #[arg(long)]
        mirror: Option<String>,
        #[arg(long, env = "GUREUM_CACHE_DIR", default_value = gureum_image::DEFAULT_CACHE_DIR)]
        cache_dir: PathBuf,
    },
    /// Import a rootfs tarball (.tar, .tar.gz, .tar.zst) or a disk image (qcow2, raw) as a
    /// private AMI of an account.
    Import {
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// The image's default login user.
        #[arg(long)]
        login_user: Option<String>,
        /// The owning account (id or name; default: admin).
        #[arg(long, default_value = "admin")]
        account: String,
    },
    /// List the registered images.
    List,
}

#[derive(Subcommand, Debug)]
pub enum BudgetCmd {
    /// Set (or replace) the budget.
    Set {
        /// Account id or name.
        account: String,
        /// The monthly limit in USD.
        #[arg(long)]
        monthly_usd: f64,
        /// Stop the account's instances once the actual cost crosses it.
        #[arg(long)]
        stop_instances: bool,
    },
    /// The budget, the month's cost so far and its forecast, and the last alert.
    Show {
        account: String,
    },
    Delete {
        account: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccessKeyCmd {
    /// Create another access key for an account (by id or name).
    Create { account: String },
}

/// `--hypervisor`: `container` or `vm` (listed in `--help`), parsed into its type here.
fn hypervisor_parser() -> impl clap::builder::TypedValueParser<Value = gureum_types::Hypervisor> {
    clap::builder::PossibleValuesParser::new(
        gureum_types::Hypervisor::ALL.map(gureum_types::Hypervisor::as_str),
    )
    .try_map(|s| s.parse::<gureum_types::Hypervisor>())
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = match cli.data_dir {
        Some(d) => d,
        None => setup::default_data_dir()?,
    };
    match cli.command {
        Command::Up(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let served = rt.block_on(crate::api::up(data_dir, args));
            // A default-image build still running (a blocking task) must not hold up a stop:
            // dropping the runtime would wait for it. Its mmdebstrap dies with this process
            // (see gureum-image's sandbox), and the next start takes the build up again.
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
            served
        }
        Command::Account(AccountCmd::Create { name }) => {
            let cloud = setup::open_cloud(&data_dir, "us-east-1")?;
            let (acct, key) = cloud
                .create_account_sync(&name)
                .map_err(anyhow::Error::msg)?;
            println!("account {} ({})", acct.id, acct.name);
            println!("aws_access_key_id = {}", key.access_key_id);
            println!("aws_secret_access_key = {}", key.secret_access_key);
            Ok(())
        }
        Command::Account(AccountCmd::List) => {
            let cloud = setup::open_cloud(&data_dir, "us-east-1")?;
            println!("{:<14} {:<24} {:<26} ACCESS KEYS", "ID", "NAME", "CREATED");
            for (a, keys) in cloud.list_accounts_sync().map_err(anyhow::Error::msg)? {
                let ids: Vec<&str> = keys.iter().map(|k| k.access_key_id.as_str()).collect();
                println!(
                    "{:<14} {:<24} {:<26} {}",
                    a.id,
                    a.name,
                    a.create_time,
                    ids.join(",")
                );
            }
            Ok(())
        }
        Command::Account(AccountCmd::Passwd {
            account,
            password_stdin,
        }) => crate::account::passwd(&data_dir, &account, password_stdin),
        Command::AccessKey(AccessKeyCmd::Create { account }) => {
            let cloud = setup::open_cloud(&data_dir, "us-east-1")?;
            let key = cloud
                .create_access_key_sync(&account)
                .map_err(anyhow::Error::msg)?;
            println!("account {}", key.account_id);
            println!("aws_access_key_id = {}", key.access_key_id);
            println!("aws_secret_access_key = {}", key.secret_access_key);
            Ok(())
        }
        Command::Image(cmd) => crate::images::run(&data_dir, cmd),
        Command::Friendly(cmd) => crate::friendly::run(&data_dir, cmd),
        Command::Bill {
            account,
            month,
            region,
        } => crate::billing::bill(&data_dir, &account, month.as_deref(), &region),
        Command::Budget(cmd) => crate::billing::budget(&data_dir, cmd),
        Command::Doctor => {
            crate::doctor::run(std::path::Path::new(gureum_image::DEFAULT_CACHE_DIR))
        }
        Command::Install { replace_qemu_utils } => {
            let report = crate::packages::install_all(
                Some(std::path::Path::new(gureum_image::DEFAULT_CACHE_DIR)),
                replace_qemu_utils,
            );
            for (group, state) in &report.groups {
                if let crate::packages::State::Ready = state {
                    println!("{}: ready", group.name());
                }
            }
            match report.state(crate::packages::Group::Core) {
                Some(s) if s.is_usable() => Ok(()),
                _ => anyhow::bail!("the core packages are not installed: instances cannot run"),
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "gureum", &mut std::io::stdout());
            Ok(())
        }
    }
}
