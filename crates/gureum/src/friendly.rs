//! The friendly subcommands, for people who do not use the AWS CLI: `launch`, `ls`, `ssh`,
//! `logs`, `stop`, `start`, `reboot` and `terminate`. Each is a sequence of ordinary EC2 API
//! calls through [`crate::client`]; this module owns naming instances by their `Name` tag,
//! choosing a default image, saving created keys, waiting for states and the table output.
//!
//! Errors are printed as `error: …` (API errors as `error: Code: Message`) with exit code 1.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use clap::{Args, Subcommand};
use gureum_types::InstanceState;

use crate::client::{ApiError, Client, Connection, Node, Overrides};

/// How to reach the API; the defaults come from the data dir `gureum up` wrote.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// The API endpoint, e.g. http://127.0.0.1:8773 (default: endpoint_url in
    /// <data-dir>/config).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The profile to use from <data-dir>/credentials and <data-dir>/config (default: gureum).
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, when set, take precedence.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    /// Wait until the instances reach the new state; when that is running (launch, start,
    /// reboot), also until their SSH server answers.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "wait")]
    timeout: u64,
}

impl WaitArgs {
    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.timeout)
    }
}

#[derive(Subcommand, Debug)]
pub enum FriendlyCmd {
    /// Launch instances (default: the newest image owned by gureum, as a t2.micro).
    Launch(LaunchArgs),
    /// List instances.
    Ls(LsArgs),
    /// SSH into an instance (by id or Name tag) with the system's ssh.
    Ssh(SshArgs),
    /// Print an instance's console output.
    Logs(LogsArgs),
    /// Stop instances (by id or Name tag).
    Stop(StopArgs),
    /// Start stopped instances (by id or Name tag).
    Start(StateArgs),
    /// Reboot instances (by id or Name tag).
    Reboot(StateArgs),
    /// Terminate instances (by id or Name tag).
    Terminate(StateArgs),
}

#[derive(Args, Debug)]
pub struct LaunchArgs {
    /// An AMI id, or an image name (wildcards allowed; the newest available match wins).
    /// Default: the newest available image owned by gureum.
    #[arg(long, value_name = "AMI|NAME")]
    image: Option<String>,
    /// The instance type.
    #[arg(long = "type", value_name = "TYPE", default_value = "t2.micro")]
    instance_type: String,
    /// An existing key pair whose public key is installed for the login user.
    #[arg(long, value_name = "NAME", conflicts_with = "create_key")]
    key: Option<String>,
    /// Create the key pair NAME and save its private key as NAME.pem (mode 0600) here.
    #[arg(long, value_name = "NAME")]
    create_key: Option<String>,
    /// The instance's name (its Name tag).
    #[arg(long)]
    name: Option<String>,
    /// A file of user data (a script or cloud-config) run at first boot.
    #[arg(long, value_name = "FILE")]
    user_data: Option<PathBuf>,
    /// How many instances to launch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    count: u32,
    /// Security groups (ids or names). Default: `launch-wizard`, made on first use with SSH
    /// open to anywhere, as the console's launch wizard does.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct SshArgs {
    /// The instance: its id or its Name tag.
    instance: String,
    /// The private key (default: ./KEYNAME.pem for the instance's key pair, if it exists).
    #[arg(short = 'i', value_name = "KEY.pem")]
    identity: Option<PathBuf>,
    /// The login user (default: the image's, from its description; else admin).
    #[arg(short = 'l', long = "user", value_name = "USER")]
    user: Option<String>,
    /// More ssh options and/or a command to run, after `--`
    /// (e.g. `-- -o BatchMode=yes uptime`).
    #[arg(last = true, value_name = "SSH ARGS")]
    args: Vec<String>,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The instance: its id or its Name tag.
    instance: String,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Instances: ids or Name tags.
    #[arg(required = true, value_name = "INSTANCE")]
    instances: Vec<String>,
    /// Stop at once, without a clean shutdown of the guest.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args, Debug)]
pub struct StateArgs {
    /// Instances: ids or Name tags.
    #[arg(required = true, value_name = "INSTANCE")]
    instances: Vec<String>,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    conn: ConnArgs,
}

/// Run one friendly subcommand. Failures are reported here, not returned, so that they read
/// `error: Code: Message` rather than anyhow's `Error: …` from `main`.
pub fn run(data_dir: &Path, cmd: FriendlyCmd) -> anyhow::Result<()> {
    match dispatch(data_dir, cmd) {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("error: {}", describe_error(&e));
            std::process::exit(1);
        }
    }
}

/// An API error as `Code: Message`; anything else with its chain of causes.
fn describe_error(e: &anyhow::Error) -> String {
    match e.downcast_ref::<ApiError>() {
        Some(api) => api.to_string(),
        None => format!("{e:#}"),
    }
}

fn connect(data_dir: &Path, c: &ConnArgs) -> anyhow::Result<Client> {
    let conn = Connection::resolve(
        data_dir,
        &Overrides {
            endpoint: c.endpoint.clone(),
            profile: c.profile.clone(),
        },
    )?;
    Client::new(conn)
}

fn dispatch(data_dir: &Path, cmd: FriendlyCmd) -> anyhow::Result<()> {
    match cmd {
        FriendlyCmd::Launch(a) => launch(&connect(data_dir, &a.conn)?, &a),
        FriendlyCmd::Ls(a) => ls(&connect(data_dir, &a.conn)?),
        FriendlyCmd::Ssh(a) => ssh(&connect(data_dir, &a.conn)?, &a),
        FriendlyCmd::Logs(a) => logs(&connect(data_dir, &a.conn)?, &a.instance),
        FriendlyCmd::Stop(a) => {
            let extra = if a.force {
                vec![("Force".to_owned(), "true".to_owned())]
            } else {
                Vec::new()
            };
            change_state(
                &connect(data_dir, &a.conn)?,
                Transition::Stop,
                &a.instances,
                extra,
                &a.wait,
            )
        }
        FriendlyCmd::Start(a) => change_state(
            &connect(data_dir, &a.conn)?,
            Transition::Start,
            &a.instances,
            Vec::new(),
            &a.wait,
        ),
        FriendlyCmd::Reboot(a) => change_state(
            &connect(data_dir, &a.conn)?,
            Transition::Reboot,
            &a.instances,
            Vec::new(),
            &a.wait,
        ),
        FriendlyCmd::Terminate(a) => change_state(
            &connect(data_dir, &a.conn)?,
            Transition::Terminate,
            &a.instances,
            Vec::new(),
            &a.wait,
        ),
    }
}

type Params = Vec<(String, String)>;

fn param(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

/// One instance as the friendly commands show it.
#[derive(Debug, Clone)]
struct Instance {
    id: String,
    name: Option<String>,
    state: InstanceState,
    instance_type: String,
    private_ip: Option<String>,
    public_ip: Option<String>,
    key_name: Option<String>,
    launch_time: String,
    image_id: String,
    state_reason: Option<String>,
}

/// The state named at `path` under `n` (`instanceState`, `currentState`, …), parsed once here
/// so the rest of the module matches on it.
fn state_at(n: &Node, path: &[&str]) -> anyhow::Result<InstanceState> {
    let text = n
        .text_at(path)
        .with_context(|| format!("the API answered no {}", path.join("/")))?;
    text.parse()
        .with_context(|| format!("the API answered an unknown {}", path.join("/")))
}

impl Instance {
    fn from_xml(n: &Node) -> anyhow::Result<Instance> {
        let text = |name: &str| n.text_of(name).map(str::to_owned);
        let name = n
            .items("tagSet")
            .find(|t| t.text_of("key") == Some("Name"))
            .and_then(|t| t.text_of("value"))
            .map(str::to_owned);
        Ok(Instance {
            id: text("instanceId").unwrap_or_default(),
            name,
            state: state_at(n, &["instanceState", "name"])?,
            instance_type: text("instanceType").unwrap_or_default(),
            private_ip: text("privateIpAddress"),
            public_ip: text("ipAddress"),
            key_name: text("keyName"),
            launch_time: text("launchTime").unwrap_or_default(),
            image_id: text("imageId").unwrap_or_default(),
            state_reason: n.text_at(&["stateReason", "message"]).map(str::to_owned),
        })
    }

    /// `web (i-…)`, or the bare id of an unnamed instance.
    fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.id),
            None => self.id.clone(),
        }
    }

    /// Where SSH reaches it: the public address if it has one, else the private one.
    fn address(&self) -> Option<&str> {
        self.public_ip.as_deref().or(self.private_ip.as_deref())
    }

    /// Terminated or on its way there: a name no longer means it.
    fn is_gone(&self) -> bool {
        match self.state {
            InstanceState::ShuttingDown | InstanceState::Terminated => true,
            InstanceState::Pending
            | InstanceState::Running
            | InstanceState::Stopping
            | InstanceState::Stopped => false,
        }
    }
}

/// DescribeInstances with `params`, following `NextToken` to the end.
fn describe_instances(
    client: &Client,
    params: &[(String, String)],
) -> anyhow::Result<Vec<Instance>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut p = params.to_vec();
        if let Some(t) = &token {
            p.push(param("NextToken", t));
        }
        let root = client.call("DescribeInstances", &p)?;
        for i in root
            .items("reservationSet")
            .flat_map(|r| r.items("instancesSet"))
        {
            out.push(Instance::from_xml(i)?);
        }
        match root.text_of("nextToken") {
            Some(t) if Some(t) != token.as_deref() => token = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// An instance id as EC2 makes them (`i-` and 8 or 17 hex digits); anything else is a name,
/// so an instance may well be called `i-love-tea`.
fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Turn ids and names into instances, in the order given, without duplicates. A name means
/// the one live instance with that Name tag; when none is live, the most recently launched
/// terminated one (so `logs` still explains why it died); several live ones are ambiguous.
fn resolve(client: &Client, targets: &[String]) -> anyhow::Result<Vec<Instance>> {
    let ids: Vec<&String> = targets.iter().filter(|t| is_instance_id(t)).collect();
    let names: Vec<&String> = targets.iter().filter(|t| !is_instance_id(t)).collect();
    let mut found = Vec::new();
    if !ids.is_empty() {
        let p: Params = ids
            .iter()
            .enumerate()
            .map(|(n, id)| param(format!("InstanceId.{}", n + 1), id.as_str()))
            .collect();
        found.extend(describe_instances(client, &p)?);
    }
    if !names.is_empty() {
        let mut p = vec![param("Filter.1.Name", "tag:Name")];
        p.extend(
            names
                .iter()
                .enumerate()
                .map(|(n, v)| param(format!("Filter.1.Value.{}", n + 1), v.as_str())),
        );
        found.extend(describe_instances(client, &p)?);
    }

    let mut out: Vec<Instance> = Vec::new();
    for t in targets {
        let inst = if is_instance_id(t) {
            found
                .iter()
                .find(|i| &i.id == t)
                .cloned()
                .with_context(|| format!("instance {t} does not exist"))?
        } else {
            let named: Vec<&Instance> = found
                .iter()
                .filter(|i| i.name.as_deref() == Some(t.as_str()))
                .collect();
            let live: Vec<&Instance> = named.iter().copied().filter(|i| !i.is_gone()).collect();
            match live.as_slice() {
                [one] => (*one).clone(),
                [] => named
                    .iter()
                    .max_by(|a, b| (&a.launch_time, &a.id).cmp(&(&b.launch_time, &b.id)))
                    .map(|i| (*i).clone())
                    .with_context(|| {
                        format!("no instance named {t:?} (list them with `gureum ls`)")
                    })?,
                many => {
                    let ids: Vec<&str> = many.iter().map(|i| i.id.as_str()).collect();
                    bail!(
                        "{} instances are named {t:?} ({}); name one by its id",
                        many.len(),
                        ids.join(", ")
                    )
                }
            }
        };
        if !out.iter().any(|i| i.id == inst.id) {
            out.push(inst);
        }
    }
    Ok(out)
}

fn resolve_one(client: &Client, target: &str) -> anyhow::Result<Instance> {
    let mut v = resolve(client, &[target.to_owned()])?;
    v.pop().context("no such instance")
}

// ---------------------------------------------------------------- images

#[derive(Debug, Clone)]
struct Image {
    id: String,
    name: String,
    description: String,
    creation_date: String,
}

fn describe_images(client: &Client, params: &[(String, String)]) -> anyhow::Result<Vec<Image>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut p = params.to_vec();
        if let Some(t) = &token {
            p.push(param("NextToken", t));
        }
        let root = client.call("DescribeImages", &p)?;
        out.extend(root.items("imagesSet").map(|n| Image {
            id: n.text_of("imageId").unwrap_or_default().to_owned(),
            name: n.text_of("name").unwrap_or_default().to_owned(),
            description: n.text_of("description").unwrap_or_default().to_owned(),
            creation_date: n.text_of("creationDate").unwrap_or_default().to_owned(),
        }));
        match root.text_of("nextToken") {
            Some(t) if Some(t) != token.as_deref() => token = Some(t.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// The newest of `images` (creation dates are ISO 8601, so they sort as strings).
fn newest(images: Vec<Image>) -> Option<Image> {
    images
        .into_iter()
        .max_by(|a, b| (&a.creation_date, &a.id).cmp(&(&b.creation_date, &b.id)))
}

fn pick_image(client: &Client, wanted: Option<&str>) -> anyhow::Result<Image> {
    let available = param("Filter.1.Name", "state");
    let available_value = param("Filter.1.Value.1", "available");
    match wanted {
        None => {
            let p = vec![param("Owner.1", "gureum"), available, available_value];
            newest(describe_images(client, &p)?).context(
                "no image owned by gureum is available yet (the default image is built on \
                 the first `gureum up`; `gureum image list` shows its progress), or pass --image",
            )
        }
        Some(id) if id.starts_with("ami-") => {
            let img = describe_images(client, &[param("ImageId.1", id)])?;
            img.into_iter()
                .next()
                .with_context(|| format!("image {id} does not exist"))
        }
        Some(name) => {
            let p = vec![
                available,
                available_value,
                param("Filter.2.Name", "name"),
                param("Filter.2.Value.1", name),
            ];
            newest(describe_images(client, &p)?)
                .with_context(|| format!("no available image named {name:?}"))
        }
    }
}

/// The login user an image's description names (`…; login user: admin`).
fn login_user_in(description: &str) -> Option<&str> {
    let rest = &description[description.find("login user:")? + "login user:".len()..];
    let user = rest
        .trim_start()
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ')'))
        .next()?;
    (!user.is_empty()).then_some(user)
}

/// The login user of `image_id`, defaulting to `admin` when the image says nothing or no
/// longer exists (an instance outlives a deregistered image).
fn login_user(client: &Client, image_id: &str) -> anyhow::Result<String> {
    let images = match describe_images(client, &[param("ImageId.1", image_id)]) {
        Ok(v) => v,
        Err(e) if e.downcast_ref::<ApiError>().is_some() => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(images
        .iter()
        .find_map(|i| login_user_in(&i.description))
        .unwrap_or("admin")
        .to_owned())
}

// ---------------------------------------------------------------- launch

/// The group `gureum launch` uses by default: SSH from anywhere, like the EC2 console's
/// `launch-wizard-N` groups, so `gureum ssh` works right after a launch.
const LAUNCH_GROUP: &str = "launch-wizard";

fn ensure_launch_wizard_group(client: &Client) -> anyhow::Result<String> {
    let ignore_dup = |r: anyhow::Result<_>| match r {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains(".Duplicate") => Ok(()),
        Err(e) => Err(e),
    };
    ignore_dup(client.call(
        "CreateSecurityGroup",
        &[
            param("GroupName", LAUNCH_GROUP),
            param(
                "GroupDescription",
                "made by gureum launch: SSH from anywhere",
            ),
        ],
    ))?;
    ignore_dup(client.call(
        "AuthorizeSecurityGroupIngress",
        &[
            param("GroupName", LAUNCH_GROUP),
            param("IpProtocol", "tcp"),
            param("FromPort", "22"),
            param("ToPort", "22"),
            param("CidrIp", "0.0.0.0/0"),
        ],
    ))?;
    Ok(LAUNCH_GROUP.to_string())
}

fn launch(client: &Client, a: &LaunchArgs) -> anyhow::Result<()> {
    // Everything that can fail locally or read-only comes first, so a mistake does not
    // leave a key pair behind.
    let image = pick_image(client, a.image.as_deref())?;
    let user_data = match &a.user_data {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        None => None,
    };

    let (key_name, key_file) = match (&a.create_key, &a.key) {
        (Some(name), _) => (Some(name.clone()), Some(create_key(client, name)?)),
        (None, Some(name)) => (Some(name.clone()), None),
        (None, None) => (None, None),
    };

    let mut p = vec![
        param("ImageId", &image.id),
        param("InstanceType", &a.instance_type),
        param("MinCount", a.count.to_string()),
        param("MaxCount", a.count.to_string()),
    ];
    if let Some(k) = &key_name {
        p.push(param("KeyName", k));
    }
    if let Some(u) = user_data {
        p.push(param("UserData", u));
    }
    let groups = if a.groups.is_empty() {
        vec![ensure_launch_wizard_group(client)?]
    } else {
        a.groups.clone()
    };
    for (i, g) in groups.iter().enumerate() {
        let key = if g.starts_with("sg-") {
            "SecurityGroupId"
        } else {
            "SecurityGroup"
        };
        p.push(param(format!("{key}.{}", i + 1), g));
    }
    if let Some(n) = &a.name {
        p.push(param("TagSpecification.1.ResourceType", "instance"));
        p.push(param("TagSpecification.1.Tag.1.Key", "Name"));
        p.push(param("TagSpecification.1.Tag.1.Value", n));
    }
    let root = client.call("RunInstances", &p)?;
    let launched: Vec<Instance> = root
        .items("instancesSet")
        .map(Instance::from_xml)
        .collect::<anyhow::Result<_>>()?;
    eprintln!(
        "launched {} {} from {} ({})",
        launched.len(),
        if launched.len() == 1 {
            "instance"
        } else {
            "instances"
        },
        image.name,
        image.id
    );
    for i in &launched {
        println!("{}", i.id);
    }
    if key_name.is_none() {
        eprintln!("note: no key pair, so no SSH; launch with --create-key NAME or --key NAME");
    }
    if !a.wait.wait {
        return Ok(());
    }

    let deadline = a.wait.deadline();
    let running = wait_for(client, &launched, InstanceState::Running, deadline)?;
    wait_ssh(&running, deadline);
    let user = login_user_in(&image.description).unwrap_or("admin");
    let key_arg = match (&key_file, &key_name) {
        (Some(f), _) => format!("-i {} ", f.display()),
        (None, Some(k)) => format!("-i {k}.pem "),
        (None, None) => String::new(),
    };
    for i in &running {
        if let Some(addr) = i.address() {
            println!("ssh {key_arg}{user}@{addr}");
        }
    }
    Ok(())
}

/// Create the key pair `name` and save its private key as `./name.pem`, mode 0600. The file
/// is created (exclusively) before the key pair, so an existing file or an unwritable
/// directory fails before anything exists on the server.
fn create_key(client: &Client, name: &str) -> anyhow::Result<PathBuf> {
    if name.contains('/') || name == "." || name == ".." {
        bail!("--create-key {name:?}: a key name used as a file name cannot contain '/'");
    }
    let path = PathBuf::from(format!("{name}.pem"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| match path.exists() {
            true => format!(
                "{} already exists; launch with --key {name} to use that key pair",
                path.display()
            ),
            false => format!("creating {}", path.display()),
        })?;
    let write = |file: &mut File| -> anyhow::Result<()> {
        let root = client.call("CreateKeyPair", &[param("KeyName", name)])?;
        let pem = root
            .text_of("keyMaterial")
            .context("CreateKeyPair answered without keyMaterial")?;
        file.write_all(pem.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
            .with_context(|| format!("writing {}", path.display()))
    };
    if let Err(e) = write(&mut file) {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    eprintln!(
        "created key pair {name}; private key saved to {}",
        path.display()
    );
    Ok(path)
}

/// Port 22 of an instance, if it has an address.
fn ssh_socket(i: &Instance) -> Option<SocketAddr> {
    let ip = i.address()?.parse::<std::net::IpAddr>().ok()?;
    Some(SocketAddr::new(ip, 22))
}

/// Whether an SSH server answers at `sock` now (its banner, not just an open port).
fn ssh_banner(sock: &SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(sock, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut banner = [0u8; 4];
    s.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}

/// Poll `pred` every `every` until it holds (true) or `deadline` passes (false).
fn poll(deadline: Instant, every: Duration, mut pred: impl FnMut() -> bool) -> bool {
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// How long to wait for SSH at most, whatever --timeout says: a client that cannot reach the
/// guests' addresses (a remote --endpoint) should not sit out the whole timeout.
const SSH_WAIT: Duration = Duration::from_secs(120);

/// Wait until SSH answers on each instance: "running" means the guest's init has started,
/// not that sshd is up, and what `--wait` promises is that ssh works at once. Only warns:
/// the instances did reach the state asked for.
fn wait_ssh(instances: &[Instance], deadline: Instant) {
    let deadline = deadline.min(Instant::now() + SSH_WAIT);
    for i in instances {
        let Some(sock) = ssh_socket(i) else { continue };
        if !poll(deadline, Duration::from_millis(200), || ssh_banner(&sock)) {
            eprintln!(
                "warning: {} is running, but nothing answers SSH at {sock} yet",
                i.label()
            );
        }
    }
}

// ---------------------------------------------------------------- waiting

/// States from which `target` can no longer be reached without another request (the ones
/// the AWS SDK waiters treat as failures).
fn dead_ends(target: InstanceState) -> &'static [InstanceState] {
    use InstanceState::*;
    match target {
        Running => &[ShuttingDown, Terminated, Stopping, Stopped],
        Stopped => &[ShuttingDown, Terminated],
        Pending | ShuttingDown | Terminated | Stopping => &[],
    }
}

/// Poll DescribeInstances until every instance is in `target`; fail when one cannot get
/// there, or at `deadline`.
fn wait_for(
    client: &Client,
    instances: &[Instance],
    target: InstanceState,
    deadline: Instant,
) -> anyhow::Result<Vec<Instance>> {
    let p: Params = instances
        .iter()
        .enumerate()
        .map(|(n, i)| param(format!("InstanceId.{}", n + 1), &i.id))
        .collect();
    let what = match instances {
        [one] => one.label(),
        many => format!("{} instances", many.len()),
    };
    eprintln!("waiting for {what} to be {target}…");
    loop {
        let now = describe_instances(client, &p)?;
        for i in &now {
            if dead_ends(target).contains(&i.state) {
                let why = i
                    .state_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                bail!("{} is {}, not {target}{why}", i.label(), i.state);
            }
        }
        if now.len() >= instances.len() && now.iter().all(|i| i.state == target) {
            eprintln!("{what}: {target}");
            return Ok(now);
        }
        if Instant::now() >= deadline {
            let states: Vec<String> = now
                .iter()
                .map(|i| format!("{} is {}", i.label(), i.state))
                .collect();
            bail!("gave up waiting for {target}: {}", states.join(", "));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

// ---------------------------------------------------------------- ls

fn ls(client: &Client) -> anyhow::Result<()> {
    let mut all = describe_instances(client, &[])?;
    all.sort_by(|a, b| (&a.launch_time, &a.id).cmp(&(&b.launch_time, &b.id)));
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_owned());
    let rows: Vec<[String; 8]> = all
        .iter()
        .map(|i| {
            [
                dash(&i.name),
                i.id.clone(),
                i.state.to_string(),
                i.instance_type.clone(),
                dash(&i.private_ip),
                dash(&i.public_ip),
                dash(&i.key_name),
                short_time(&i.launch_time),
            ]
        })
        .collect();
    let header = [
        "NAME",
        "ID",
        "STATE",
        "TYPE",
        "PRIVATE IP",
        "PUBLIC IP",
        "KEY",
        "LAUNCHED",
    ]
    .map(str::to_owned);
    print!("{}", table(&header, &rows));
    if rows.is_empty() {
        eprintln!("no instances; start one with `gureum launch --create-key NAME --wait`");
    }
    Ok(())
}

/// `2024-05-01T10:00:00.000Z` as `2024-05-01 10:00:00` (UTC, as EC2 reports it).
fn short_time(t: &str) -> String {
    match t.get(..19) {
        Some(s) if t.as_bytes().get(10) == Some(&b'T') => s.replacen('T', " ", 1),
        _ => t.to_owned(),
    }
}

/// Left-aligned columns, two spaces apart, no trailing blanks.
fn table<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut width = [0usize; N];
    for row in std::iter::once(header).chain(rows) {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (n, cell) in row.iter().enumerate() {
            if n + 1 < N {
                line.push_str(&format!("{cell:<w$}  ", w = width[n]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------- ssh and logs

fn ssh(client: &Client, a: &SshArgs) -> anyhow::Result<()> {
    let inst = resolve_one(client, &a.instance)?;
    let hint = match inst.state {
        InstanceState::Running => None,
        InstanceState::Pending => Some(" (still booting: try again in a moment)".to_owned()),
        InstanceState::Stopped => Some(format!(" (start it with `gureum start {}`)", a.instance)),
        InstanceState::ShuttingDown | InstanceState::Terminated | InstanceState::Stopping => {
            Some(String::new())
        }
    };
    if let Some(hint) = hint {
        bail!("{} is {}{hint}", inst.label(), inst.state);
    }
    let addr = inst
        .address()
        .with_context(|| format!("{} has no IP address", inst.label()))?;
    let user = match &a.user {
        Some(u) => u.clone(),
        None => login_user(client, &inst.image_id)?,
    };
    // Without -i, the instance's own key pair saved the way `launch --create-key` saves it.
    let identity = a.identity.clone().or_else(|| {
        let guess = PathBuf::from(format!("{}.pem", inst.key_name.as_deref()?));
        guess.is_file().then_some(guess)
    });

    let mut cmd = std::process::Command::new("ssh");
    if let Some(key) = &identity {
        cmd.arg("-i").arg(key);
    }
    // Host keys are remembered under the instance id rather than the address: private IPs
    // are reused by later instances, whose new host keys would otherwise look like an attack.
    cmd.args(["-o", "StrictHostKeyChecking=accept-new"])
        .arg("-o")
        .arg(format!("HostKeyAlias={}", inst.id))
        .arg(format!("{user}@{addr}"))
        // OpenSSH reads options that follow the destination too, so the extra arguments can
        // mix options and the remote command.
        .args(&a.args);
    let err = cmd.exec();
    Err(err).context("running ssh (is the OpenSSH client installed?)")
}

fn logs(client: &Client, target: &str) -> anyhow::Result<()> {
    let inst = resolve_one(client, target)?;
    let root = client.call("GetConsoleOutput", &[param("InstanceId", &inst.id)])?;
    let encoded: String = root
        .text_of("output")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .context("GetConsoleOutput answered output that is not base64")?;
    if bytes.is_empty() {
        eprintln!("{} has no console output yet", inst.label());
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    if !bytes.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

// ---------------------------------------------------------------- stop, start, reboot, terminate

#[derive(Debug, Clone, Copy)]
enum Transition {
    Stop,
    Start,
    Reboot,
    Terminate,
}

impl Transition {
    fn action(self) -> &'static str {
        match self {
            Transition::Stop => "StopInstances",
            Transition::Start => "StartInstances",
            Transition::Reboot => "RebootInstances",
            Transition::Terminate => "TerminateInstances",
        }
    }

    /// The state `--wait` waits for (a reboot keeps the instance running throughout).
    fn target(self) -> InstanceState {
        match self {
            Transition::Stop => InstanceState::Stopped,
            Transition::Start | Transition::Reboot => InstanceState::Running,
            Transition::Terminate => InstanceState::Terminated,
        }
    }
}

fn change_state(
    client: &Client,
    t: Transition,
    targets: &[String],
    extra: Params,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let deadline = wait.deadline();
    let instances = resolve(client, targets)?;
    // A reboot never leaves `running`, so waiting for it means watching SSH go away and come
    // back; that needs to know, before asking, which guests answer SSH from here.
    let answering: Vec<(&Instance, SocketAddr)> = match t {
        Transition::Reboot if wait.wait => instances
            .iter()
            .filter_map(|i| ssh_socket(i).map(|s| (i, s)))
            .filter(|(_, s)| ssh_banner(s))
            .collect(),
        _ => Vec::new(),
    };
    let mut p: Params = instances
        .iter()
        .enumerate()
        .map(|(n, i)| param(format!("InstanceId.{}", n + 1), &i.id))
        .collect();
    p.extend(extra);
    let root = client.call(t.action(), &p)?;
    match t {
        // RebootInstances answers only `true`.
        Transition::Reboot => {
            for i in &instances {
                println!("{}: rebooting", i.label());
            }
        }
        _ => {
            for change in root.items("instancesSet") {
                let id = change.text_of("instanceId").unwrap_or_default();
                let label = instances
                    .iter()
                    .find(|i| i.id == id)
                    .map(Instance::label)
                    .unwrap_or_else(|| id.to_owned());
                println!(
                    "{label}: {} -> {}",
                    state_at(change, &["previousState", "name"])?,
                    state_at(change, &["currentState", "name"])?
                );
            }
        }
    }
    if !wait.wait {
        return Ok(());
    }
    match t {
        Transition::Reboot => {
            for (i, sock) in &answering {
                // A guest reboot is a clean shutdown (bounded by the graceful-stop timeout)
                // and a boot; sshd is gone for a fraction of a second, so poll often.
                let down_by = deadline.min(Instant::now() + SSH_WAIT);
                if !poll(down_by, Duration::from_millis(50), || !ssh_banner(sock)) {
                    bail!("{} did not go down to reboot", i.label());
                }
            }
            let running = wait_for(client, &instances, InstanceState::Running, deadline)?;
            let back: Vec<Instance> = running
                .into_iter()
                .filter(|r| answering.iter().any(|(i, _)| i.id == r.id))
                .collect();
            wait_ssh(&back, deadline);
            if answering.len() < instances.len() {
                eprintln!(
                    "note: SSH of some instances is not reachable from here; \
                     for those, --wait only waited for the running state"
                );
            }
        }
        Transition::Start => {
            let running = wait_for(client, &instances, InstanceState::Running, deadline)?;
            wait_ssh(&running, deadline);
        }
        Transition::Stop | Transition::Terminate => {
            wait_for(client, &instances, t.target(), deadline)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::parse_xml;

    #[test]
    fn ids_and_names() {
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(is_instance_id("i-12345678"));
        assert!(!is_instance_id("i-love-tea"));
        assert!(!is_instance_id("web"));
        assert!(!is_instance_id("i-0123456789abcdefg"));
    }

    #[test]
    fn login_user_from_the_description() {
        assert_eq!(
            login_user_in("Debian 12 (bookworm) amd64, built by gureum; login user: admin"),
            Some("admin")
        );
        assert_eq!(login_user_in("Ubuntu (login user: ubuntu)"), Some("ubuntu"));
        assert_eq!(
            login_user_in("login user: ec2-user, sudo"),
            Some("ec2-user")
        );
        assert_eq!(login_user_in("my image"), None);
        assert_eq!(login_user_in("login user: "), None);
    }

    #[test]
    fn instance_from_describe_xml() {
        let root = parse_xml(
            "<r><instanceId>i-1</instanceId><imageId>ami-1</imageId>\
             <instanceState><code>80</code><name>stopped</name></instanceState>\
             <keyName>demo</keyName><instanceType>t2.micro</instanceType>\
             <launchTime>2025-01-02T03:04:05.000Z</launchTime><privateIpAddress>172.31.0.5</privateIpAddress>\
             <stateReason><code>Client.UserInitiatedShutdown</code><message>User initiated shutdown</message></stateReason>\
             <tagSet><item><key>env</key><value>x</value></item><item><key>Name</key><value>web</value></item></tagSet>\
             <networkInterfaceSet><item><privateIpAddress>10.0.0.1</privateIpAddress></item></networkInterfaceSet></r>",
        )
        .unwrap();
        let i = Instance::from_xml(&root).unwrap();
        assert_eq!(i.label(), "web (i-1)");
        assert_eq!(i.state, InstanceState::Stopped);
        assert_eq!(i.address(), Some("172.31.0.5"));
        assert_eq!(i.key_name.as_deref(), Some("demo"));
        assert_eq!(i.state_reason.as_deref(), Some("User initiated shutdown"));
        assert_eq!(short_time(&i.launch_time), "2025-01-02 03:04:05");
        assert!(!i.is_gone());
    }

    /// The state is parsed where the XML is read: a text EC2 never sends, or none, is an
    /// error rather than a state the waiting code would compare as text.
    #[test]
    fn instance_state_is_parsed_from_the_xml() {
        let with = |state: &str| {
            parse_xml(&format!(
                "<r><instanceId>i-1</instanceId>{state}<tagSet/></r>"
            ))
            .unwrap()
        };
        let i = Instance::from_xml(&with(
            "<instanceState><code>32</code><name>shutting-down</name></instanceState>",
        ))
        .unwrap();
        assert_eq!(i.state, InstanceState::ShuttingDown);
        assert!(i.is_gone());
        for bad in [
            "<instanceState><code>16</code><name>Running</name></instanceState>",
            "<instanceState><code>16</code></instanceState>",
            "",
        ] {
            assert!(Instance::from_xml(&with(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            dead_ends(Transition::Stop.target()),
            [InstanceState::ShuttingDown, InstanceState::Terminated]
        );
        assert!(dead_ends(InstanceState::Running).contains(&InstanceState::Stopped));
        assert!(dead_ends(Transition::Terminate.target()).is_empty());
    }

    #[test]
    fn table_aligns_columns() {
        let header = ["A".to_owned(), "LONG".to_owned(), "C".to_owned()];
        let rows = [["xyz".to_owned(), "1".to_owned(), "-".to_owned()]];
        assert_eq!(table(&header, &rows), "A    LONG  C\nxyz  1     -\n");
        assert_eq!(table(&header, &[]), "A  LONG  C\n");
    }

    #[test]
    fn newest_image_wins() {
        let img = |id: &str, d: &str| Image {
            id: id.into(),
            name: String::new(),
            description: String::new(),
            creation_date: d.into(),
        };
        let n = newest(vec![
            img("ami-1", "2025-01-01T00:00:00.000Z"),
            img("ami-2", "2025-03-01T00:00:00.000Z"),
            img("ami-3", "2025-02-01T00:00:00.000Z"),
        ]);
        assert_eq!(n.unwrap().id, "ami-2");
        assert!(newest(Vec::new()).is_none());
    }
}
