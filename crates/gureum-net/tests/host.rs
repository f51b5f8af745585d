//! The driver against the real kernel: bridges, namespaces, veths and nftables on this host.
//!
//! Every test needs root, `ip` and `nft` (and `ping` or `python3` where it sends traffic);
//! without them it prints `skipped: <why>` and returns. Each test works under its own random
//! prefix (`gt` + 3 hex digits) and its own addresses: private ones in 172.31.128.0/17 (four
//! /24s per test), loopback publics in 127.101.0.0/16 (production uses 127.100.0.0/16) and
//! "routable" publics in 198.51.100.0/24 (TEST-NET-2, configured nowhere), both keyed by the
//! test's octet; a guard tears everything down even when the test panics, and a normal end
//! also asserts that nothing is left. Traffic only flows between our own namespaces, our
//! bridges and this host: `ping -c 1 -W 1`, and short-lived Python listeners (killed on drop,
//! with their own timeouts) and clients. Connections from the host to a routable public are
//! bound to our bridge (SO_BINDTODEVICE), and the `forward` chain drops anything from our
//! bridges that is not DNATed to an instance, so not one packet can leave the host.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gureum_net::{Firewall, NetDriver, NetError, NicSpec, Peer, Proto, Rule, SubnetNet, VpcNet};
use ipnet::Ipv4Net;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;
use tokio::process::{Child, Command};

static NEXT_TEST: AtomicU32 = AtomicU32::new(0);

/// One test's driver and address block; tears down on drop.
struct Env {
    driver: NetDriver,
    /// Third octet of this test's first /24 (each test owns four).
    octet: u8,
}

impl Env {
    fn new(needs_ping: bool) -> Option<Env> {
        if let Err(why) = gureum_net::preflight() {
            println!("skipped: {why}");
            return None;
        }
        if needs_ping && !on_path("ping") {
            println!("skipped: ping is not installed (Debian package iputils-ping)");
            return None;
        }
        let n = NEXT_TEST.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Random per process, distinct per test within it.
        let prefix = format!(
            "gt{:03x}",
            (std::process::id() ^ nanos ^ (nanos >> 12)).wrapping_add(n) & 0xfff
        );
        let octet = u8::try_from(128 + 4 * n).expect("at most 32 tests");
        Some(Env {
            driver: NetDriver::new(&prefix).unwrap(),
            octet,
        })
    }

    fn prefix(&self) -> &str {
        self.driver.names().prefix()
    }

    /// This test's `k`-th /24 (k < 4).
    fn subnet(&self, id: &str, k: u8) -> SubnetNet {
        let third = self.octet + k;
        SubnetNet {
            subnet_id: id.into(),
            cidr: Ipv4Net::new(Ipv4Addr::new(172, 31, third, 0), 24).unwrap(),
            gateway: Ipv4Addr::new(172, 31, third, 1),
        }
    }

    fn vpc(&self, vpc_id: &str, subnets: &[u8]) -> VpcNet {
        VpcNet {
            vpc_id: vpc_id.into(),
            subnets: subnets
                .iter()
                .map(|&k| self.subnet(&format!("subnet-{vpc_id}-{k}"), k))
                .collect(),
        }
    }

    fn nic(&self, instance_id: &str, vpc_id: &str, k: u8, host: u8) -> NicSpec {
        let subnet = self.subnet("s", k);
        let [_, _, c, d] = subnet.cidr.network().octets();
        NicSpec {
            instance_id: instance_id.into(),
            vpc_id: vpc_id.into(),
            mac: [0x0a, 0x5e, c, d, k, host],
            ip: Ipv4Addr::new(172, 31, c, host),
            prefix_len: 24,
            gateway: subnet.gateway,
            netns_of: None,
        }
    }

    /// A loopback public address of this test (127.101.0.0/16; production uses 127.100/16).
    fn loopback_public(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 101, self.octet, host)
    }

    /// A "routable" public address of this test: TEST-NET-2, configured nowhere, `k` < 4.
    fn routable_public(&self, k: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, self.octet + k)
    }

    /// Tear down and prove nothing is left under the prefix.
    async fn finish(self) {
        self.driver.teardown_all().await.unwrap();
        assert_nothing_left(&self.driver).await;
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Drop cannot await and may run inside the test's runtime: tear down on a thread with
        // its own runtime. Idempotent, so a `finish` that already ran makes this a no-op.
        let driver = self.driver.clone();
        let result = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(driver.teardown_all())
        })
        .join();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("teardown of {} failed: {e}", self.prefix()),
            Err(_) => eprintln!("teardown of {} panicked", self.prefix()),
        }
    }
}

async fn assert_nothing_left(driver: &NetDriver) {
    let prefix = driver.names().prefix().to_string();
    assert!(driver.list_attachments().await.unwrap().is_empty());
    let links = run("ip", &["-o", "link", "show"]).await;
    for line in links.lines() {
        let name = line.split(':').nth(1).unwrap_or("").trim();
        let name = name.split('@').next().unwrap();
        assert!(!name.starts_with(&prefix), "link {name} left behind");
    }
    for entry in std::fs::read_dir("/run/netns").into_iter().flatten() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(&prefix), "namespace {name} left behind");
    }
    let tables = run("nft", &["list", "tables"]).await;
    for family in ["inet", "bridge"] {
        assert!(
            !tables
                .lines()
                .any(|l| l.trim() == format!("table {family} {}", driver.table())),
            "nft table {family} {} left behind",
            driver.table()
        );
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

async fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().await.unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// One echo request from inside an instance namespace, one second at most.
async fn ping_from(netns: &str, ip: Ipv4Addr) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", netns, "ping", "-n", "-q", "-c", "1", "-W", "1",
        ])
        .arg(ip.to_string())
        .output()
        .await
        .unwrap()
        .status
        .success()
}

/// One echo request from the host, bound to our bridge so it cannot leave by another route.
async fn ping_from_host(bridge: &str, ip: Ipv4Addr) -> bool {
    Command::new("ping")
        .args(["-n", "-q", "-c", "1", "-W", "1", "-I", bridge])
        .arg(ip.to_string())
        .output()
        .await
        .unwrap()
        .status
        .success()
}

fn sysctl(path: &str) -> String {
    std::fs::read_to_string(Path::new("/proc/sys/net").join(path))
        .unwrap()
        .trim()
        .to_string()
}

fn ifindex(ifname: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
        .unwrap()
        .trim()
        .to_string()
}

/// `ip -j` output as JSON.
async fn ip_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    serde_json::from_str(&run("ip", &all).await).unwrap()
}

/// IPv4 and IPv6 addresses of `eth0` in a namespace, and its MAC.
async fn eth0(netns: &str) -> (String, Vec<String>, String) {
    let v = ip_json(&["-n", netns, "addr", "show", "dev", "eth0"]).await;
    let link = &v[0];
    let addrs = link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    (
        link["address"].as_str().unwrap().to_string(),
        addrs,
        link["ifindex"].to_string(),
    )
}

async fn bridge_addrs(bridge: &str) -> Vec<String> {
    let v = ip_json(&["addr", "show", "dev", bridge]).await;
    v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

/// Packets counted by the forward chain's rule with this comment.
async fn drop_counter(table: &str, comment: &str) -> u64 {
    counter("inet", table, "forward", comment).await
}

/// Packets counted by the rules of `family table chain` with this comment (summed).
async fn counter(family: &str, table: &str, chain: &str, comment: &str) -> u64 {
    let text = run("nft", &["list", "chain", family, table, chain]).await;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&format!("comment \"{comment}")))
        .collect();
    assert!(!lines.is_empty(), "no rule {comment:?} in {text}");
    lines
        .iter()
        .map(|line| {
            let after = line.split("counter packets ").nth(1).unwrap();
            after.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum()
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_vpc_is_idempotent_and_converges() {
    let Some(env) = Env::new(false) else { return };
    let d = &env.driver;
    let vpc = env.vpc("vpc-idem", &[0, 1]);
    d.ensure_vpc(&vpc).await.unwrap();
    let bridge = d.names().bridge("vpc-idem");
    let index = ifindex(&bridge);
    d.ensure_vpc(&vpc).await.unwrap();
    assert_eq!(
        ifindex(&bridge),
        index,
        "the second ensure_vpc recreated the bridge"
    );

    let mut addrs = bridge_addrs(&bridge).await;
    addrs.sort();
    let o = env.octet;
    assert_eq!(
        addrs,
        [
            "169.254.169.254/32".to_string(),
            format!("172.31.{o}.1/24"),
            format!("172.31.{}.1/24", o + 1)
        ]
    );
    assert_eq!(
        gureum_net::metadata_address().to_string(),
        "169.254.169.254"
    );
    // br_netfilter by the bridge's own option, not the host-wide sysctl.
    assert_eq!(
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/bridge/nf_call_iptables"))
            .unwrap()
            .trim(),
        "1"
    );
    assert_eq!(sysctl(&format!("ipv4/conf/{bridge}/route_localnet")), "1");
    // A connection attempt made before the instance is plugged in waits in the ARP queue.
    assert_eq!(
        sysctl(&format!("ipv4/neigh/{bridge}/retrans_time_ms")),
        "100"
    );
    let link = &ip_json(&["link", "show", "dev", &bridge]).await[0];
    assert!(link["flags"].to_string().contains("\"UP\""), "{link}");
    assert_eq!(
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/ifalias"))
            .unwrap()
            .trim(),
        "vpc-idem"
    );
    assert_eq!(sysctl(&format!("ipv4/conf/{bridge}/forwarding")), "1");
    assert_eq!(sysctl(&format!("ipv6/conf/{bridge}/disable_ipv6")), "1");
    assert_eq!(sysctl(&format!("ipv6/conf/{bridge}/accept_ra")), "0");
    // The host's own forwarding switch is never touched.
    let global = sysctl("ipv4/conf/all/forwarding");

    let table = d.table();
    let set = run("nft", &["list", "set", "inet", &table, "vpc_bridges"]).await;
    assert!(set.contains(&bridge), "{set}");
    for chain in [
        "guard", "nat_pre", "egress", "input", "forward", "nat_out", "output", "nat_post",
        "ingress",
    ] {
        run("nft", &["list", "chain", "inet", &table, chain]).await;
    }
    run("nft", &["list", "chain", "bridge", &table, "prerouting"]).await;
    run("nft", &["list", "chain", "bridge", &table, "postrouting"]).await;

    // Dropping a subnet removes its gateway address.
    d.ensure_vpc(&env.vpc("vpc-idem", &[0])).await.unwrap();
    let mut addrs = bridge_addrs(&bridge).await;
    addrs.sort();
    assert_eq!(
        addrs,
        ["169.254.169.254/32".to_string(), format!("172.31.{o}.1/24")]
    );

    d.remove_vpc("vpc-idem").await.unwrap();
    assert!(!Path::new("/sys/class/net").join(&bridge).exists());
    let set = run("nft", &["list", "set", "inet", &table, "vpc_bridges"]).await;
    assert!(!set.contains(&bridge), "{set}");
    d.remove_vpc("vpc-idem").await.unwrap();
    assert_eq!(sysctl("ipv4/conf/all/forwarding"), global);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_instances_reach_each_other_and_the_host() {
    let Some(env) = Env::new(true) else { return };
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-a", &[0, 1])).await.unwrap();
    let bridge = d.names().bridge("vpc-a");
    let a = env.nic("i-a", "vpc-a", 0, 10);
    let b = env.nic("i-b", "vpc-a", 0, 11);
    let c = env.nic("i-c", "vpc-a", 1, 10); // another subnet of the same VPC
    let (pa, pb, pc) = tokio::join!(d.attach(&a), d.attach(&b), d.attach(&c));
    let path_a = pa.unwrap();
    pb.unwrap();
    pc.unwrap();
    let ns_a = d.names().netns("i-a");
    assert_eq!(path_a, Path::new("/run/netns").join(&ns_a));
    assert!(path_a.exists());

    // The spec, as seen inside the namespace.
    let (mac, addrs, eth0_index) = eth0(&ns_a).await;
    assert_eq!(mac, mac_text(a.mac));
    assert_eq!(addrs, [format!("{}/24", a.ip)], "no IPv6 link-local either");
    let routes = ip_json(&["-n", &ns_a, "route", "show", "default"]).await;
    assert_eq!(routes[0]["gateway"], a.gateway.to_string());
    let lo = ip_json(&["-n", &ns_a, "link", "show", "dev", "lo"]).await;
    assert!(lo[0]["flags"].to_string().contains("\"UP\""));
    let veth = d.names().veth("i-a");
    assert_eq!(
        std::fs::read_link(format!("/sys/class/net/{veth}/master"))
            .unwrap()
            .file_name()
            .unwrap(),
        bridge.as_str()
    );
    let accept_ra = run(
        "ip",
        &[
            "netns",
            "exec",
            &ns_a,
            "cat",
            "/proc/sys/net/ipv6/conf/eth0/accept_ra",
        ],
    )
    .await;
    assert_eq!(accept_ra.trim(), "0");
    assert_eq!(sysctl(&format!("ipv6/conf/{veth}/disable_ipv6")), "1");

    // Traffic: only our own addresses, one packet each.
    assert!(ping_from(&ns_a, b.ip).await, "a -> b (same subnet)");
    // The gateway routes but serves nothing to guests, not even echo.
    let before = counter(
        "inet",
        &d.table(),
        "input",
        "a guest reaching a host service",
    )
    .await;
    assert!(!ping_from(&ns_a, a.gateway).await, "a -> gateway");
    let after = counter(
        "inet",
        &d.table(),
        "input",
        "a guest reaching a host service",
    )
    .await;
    assert!(after > before, "input drop counter {before} -> {after}");
    assert!(
        ping_from(&ns_a, c.ip).await,
        "a -> c (routed between subnets)"
    );
    assert!(ping_from_host(&bridge, a.ip).await, "host -> a");
    assert!(ping_from_host(&bridge, b.ip).await, "host -> b");
    assert!(ping_from_host(&bridge, c.ip).await, "host -> c");
    let counters = d.counters("i-a").await.unwrap();
    assert!(
        counters.rx_packets >= 3 && counters.tx_packets >= 3,
        "{counters:?}"
    );
    assert!(counters.rx_bytes > 0 && counters.tx_bytes > 0);

    // Same spec again: nothing is recreated.
    let veth_index = ifindex(&veth);
    let started = Instant::now();
    d.attach(&a).await.unwrap();
    println!("re-attach (no change): {:?}", started.elapsed());
    assert_eq!(ifindex(&veth), veth_index);
    assert_eq!(eth0(&ns_a).await.2, eth0_index);

    // A changed IP and MAC are reconfigured in place.
    let moved = NicSpec {
        ip: Ipv4Addr::new(172, 31, env.octet, 20),
        mac: [0x0a, 0x5e, 0, 0, 0, 0x20],
        ..a.clone()
    };
    let started = Instant::now();
    d.attach(&moved).await.unwrap();
    println!("re-attach (new IP and MAC): {:?}", started.elapsed());
    let (mac, addrs, index) = eth0(&ns_a).await;
    assert_eq!(
        (mac, addrs),
        (mac_text(moved.mac), vec![format!("{}/24", moved.ip)])
    );
    assert_eq!(index, eth0_index);
    let routes = ip_json(&["-n", &ns_a, "route", "show", "default"]).await;
    assert_eq!(routes[0]["gateway"], moved.gateway.to_string());
    assert!(
        ping_from_host(&bridge, moved.ip).await,
        "host -> a at its new IP"
    );
    assert!(ping_from(&ns_a, b.ip).await, "a (new IP) -> b");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpcs_are_isolated() {
    let Some(env) = Env::new(true) else { return };
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-one", &[0])).await.unwrap();
    d.ensure_vpc(&env.vpc("vpc-two", &[1])).await.unwrap();
    let a = env.nic("i-one", "vpc-one", 0, 10);
    let c = env.nic("i-two", "vpc-two", 1, 10);
    d.attach(&a).await.unwrap();
    d.attach(&c).await.unwrap();
    let ns_a = d.names().netns("i-one");
    let ns_c = d.names().netns("i-two");

    // Each instance is reachable within its own VPC...
    assert!(ping_from_host(&d.names().bridge("vpc-one"), a.ip).await);
    assert!(ping_from_host(&d.names().bridge("vpc-two"), c.ip).await);
    // ...but the host will not forward between the VPCs, in either direction, and it is our
    // rule that stops it (its counter moves).
    let before = drop_counter(&d.table(), "leaves its vpc").await;
    assert!(!ping_from(&ns_c, a.ip).await, "vpc-two reached vpc-one");
    assert!(!ping_from(&ns_a, c.ip).await, "vpc-one reached vpc-two");
    let after = drop_counter(&d.table(), "leaves its vpc").await;
    assert!(after >= before + 2, "drop counter {before} -> {after}");
    // The host still reaches both.
    assert!(ping_from_host(&d.names().bridge("vpc-one"), a.ip).await);
    assert!(ping_from_host(&d.names().bridge("vpc-two"), c.ip).await);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_is_idempotent_and_leaves_no_attachment() {
    let Some(env) = Env::new(false) else { return };
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-d", &[0])).await.unwrap();
    let nic = env.nic("i-d", "vpc-d", 0, 10);
    let path = d.attach(&nic).await.unwrap();
    assert_eq!(d.list_attachments().await.unwrap(), ["i-d"]);

    match d.remove_vpc("vpc-d").await {
        Err(NetError::VpcInUse { ports, .. }) => assert_eq!(ports, [d.names().veth("i-d")]),
        other => panic!("remove_vpc with an attachment: {other:?}"),
    }

    d.detach("i-d").await.unwrap();
    assert!(d.list_attachments().await.unwrap().is_empty());
    assert!(!path.exists());
    assert!(!Path::new("/sys/class/net")
        .join(d.names().veth("i-d"))
        .exists());
    d.detach("i-d").await.unwrap();
    assert!(matches!(
        d.counters("i-d").await,
        Err(NetError::NotAttached { .. })
    ));
    d.remove_vpc("vpc-d").await.unwrap();
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_needs_its_vpc_and_leaves_nothing_when_refused() {
    let Some(env) = Env::new(false) else { return };
    let d = &env.driver;
    let nic = env.nic("i-orphan", "vpc-missing", 0, 10);
    assert!(matches!(
        d.attach(&nic).await,
        Err(NetError::VpcNotFound { .. })
    ));
    assert!(d.list_attachments().await.unwrap().is_empty());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_vpcs_are_refused() {
    let Some(env) = Env::new(false) else { return };
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-first", &[0])).await.unwrap();
    match d.ensure_vpc(&env.vpc("vpc-second", &[0])).await {
        Err(NetError::CidrConflict { dev, .. }) => {
            assert_eq!(dev, d.names().bridge("vpc-first"))
        }
        other => panic!("overlapping VPC: {other:?}"),
    }
    assert!(!Path::new("/sys/class/net")
        .join(d.names().bridge("vpc-second"))
        .exists());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_all_removes_everything() {
    let Some(env) = Env::new(false) else { return };
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-t1", &[0])).await.unwrap();
    d.ensure_vpc(&env.vpc("vpc-t2", &[1])).await.unwrap();
    for (id, vpc, k, host) in [
        ("i-t1", "vpc-t1", 0, 10),
        ("i-t2", "vpc-t1", 0, 11),
        ("i-t3", "vpc-t2", 1, 10),
    ] {
        d.attach(&env.nic(id, vpc, k, host)).await.unwrap();
    }
    // A leaked namespace without a veth is found and removed too.
    run("ip", &["netns", "add", &d.names().netns("i-leak")]).await;
    assert_eq!(
        d.list_attachments().await.unwrap(),
        ["i-leak", "i-t1", "i-t2", "i-t3"]
    );
    d.teardown_all().await.unwrap();
    assert_nothing_left(d).await;
    d.teardown_all().await.unwrap();
    env.finish().await;
}

/// The guard cleans up after a test that panics half-way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_cleans_up_after_a_panic() {
    let Some(env) = Env::new(false) else { return };
    let probe = env.driver.clone();
    let task = tokio::spawn(async move {
        env.driver
            .ensure_vpc(&env.vpc("vpc-p", &[0]))
            .await
            .unwrap();
        env.driver
            .attach(&env.nic("i-p", "vpc-p", 0, 10))
            .await
            .unwrap();
        panic!("deliberate panic with an attachment in place");
    });
    assert!(task.await.unwrap_err().is_panic());
    assert_nothing_left(&probe).await;
}

/// Attach and detach times, concurrent (as 10 simultaneous launches) and one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_detach_timings() {
    let Some(env) = Env::new(false) else { return };
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-time", &[0])).await.unwrap();
    const N: u8 = 10;
    let nics: Vec<NicSpec> = (0..N)
        .map(|i| env.nic(&format!("i-time{i}"), "vpc-time", 0, 10 + i))
        .collect();

    let timed = |nic: NicSpec| {
        let d = d.clone();
        async move {
            let started = Instant::now();
            d.attach(&nic).await.unwrap();
            started.elapsed()
        }
    };
    let started = Instant::now();
    let each = futures_join_all(nics.iter().cloned().map(timed)).await;
    let wall = started.elapsed();
    report("attach, 10 concurrent", &each, wall);
    assert_eq!(d.list_attachments().await.unwrap().len(), usize::from(N));

    let started = Instant::now();
    let each = futures_join_all(nics.iter().map(|nic| {
        let d = d.clone();
        let id = nic.instance_id.clone();
        async move {
            let started = Instant::now();
            d.detach(&id).await.unwrap();
            started.elapsed()
        }
    }))
    .await;
    report("detach, 10 concurrent", &each, started.elapsed());
    assert!(d.list_attachments().await.unwrap().is_empty());

    let mut attach = Vec::new();
    let mut detach = Vec::new();
    for nic in &nics {
        let started = Instant::now();
        d.attach(nic).await.unwrap();
        attach.push(started.elapsed());
    }
    for nic in &nics {
        let started = Instant::now();
        d.detach(&nic.instance_id).await.unwrap();
        detach.push(started.elapsed());
    }
    report("attach, one at a time", &attach, attach.iter().sum());
    report("detach, one at a time", &detach, detach.iter().sum());
    // Generous bound, only to catch a pathological regression on a loaded machine.
    let mean = attach.iter().sum::<Duration>() / u32::from(N);
    assert!(mean < Duration::from_millis(500), "mean attach {mean:?}");
    env.finish().await;
}

fn report(what: &str, each: &[Duration], wall: Duration) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut sorted: Vec<f64> = each.iter().map(|d| ms(*d)).collect();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    println!(
        "{what}: mean {mean:.1} ms, median {:.1} ms, max {:.1} ms, wall {:.1} ms",
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
        ms(wall)
    );
}

/// Run futures concurrently on the runtime and collect their outputs in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Public addresses, security groups, anti-spoofing and host services.

fn need(tool: &str, package: &str) -> bool {
    if on_path(tool) {
        return true;
    }
    println!("skipped: {tool} is not installed (Debian package {package})");
    false
}

/// A TCP server on all addresses of a namespace: `hi` mode greets with `hi <peer address>` and
/// then echoes; `sink` mode reads to the end and answers the byte count. It exits by itself
/// after 120 s without a connection, and is killed when dropped.
const SERVER: &str = r#"
import socket, sys, threading
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(512)
s.settimeout(120)
print("ready", flush=True)
def handle(c, peer):
    try:
        c.settimeout(60)
        if mode == "sink":
            n = 0
            while True:
                b = c.recv(1 << 20)
                if not b:
                    break
                n += len(b)
            c.sendall(b"%d\n" % n)
        else:
            c.sendall(("hi %s\n" % peer[0]).encode())
            while True:
                b = c.recv(4096)
                if not b:
                    break
                c.sendall(b)
    except Exception:
        pass
    finally:
        c.close()
try:
    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()
except socket.timeout:
    pass
"#;

/// One connection from inside a namespace: `OK <greeting>`, `TIMEOUT`, `REFUSED`, or
/// `CONNECTED` (no greeting within the timeout).
const CLIENT: &str = r#"
import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket()
s.settimeout(timeout)
if len(sys.argv) > 4:
    s.bind((sys.argv[4], 0))
try:
    s.connect((host, port))
except socket.timeout:
    print("TIMEOUT")
    sys.exit(0)
except ConnectionRefusedError:
    print("REFUSED")
    sys.exit(0)
try:
    print("OK " + s.recv(100).decode().strip())
except socket.timeout:
    print("CONNECTED")
except ConnectionRefusedError:
    print("REFUSED")
except OSError as e:
    print("ERROR %s" % e)
"#;

/// `n` connections one after the other; each connect() time in microseconds, sorted.
const CONNECT_TIMES: &str = r#"
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
times = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    t = time.perf_counter()
    s.connect((host, port))
    times.append(time.perf_counter() - t)
    s.close()
times.sort()
print(" ".join("%.1f" % (x * 1e6) for x in times))
"#;

/// Raw frames from `eth0` of a namespace, three of each.
const RAW: &str = r#"
import socket, struct, sys
kind = sys.argv[1]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
mac = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
bcast = b"\xff" * 6
def ip4(a):
    return socket.inet_aton(a)
def checksum(b):
    total = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
if kind == "arp":
    # A gratuitous ARP reply claiming argv[2], from our own (correct) MAC.
    claim = ip4(sys.argv[2])
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + claim + bcast + claim
    frame = bcast + mac + struct.pack("!H", 0x0806) + arp
elif kind == "ipv6":
    frame = bcast + mac + struct.pack("!H", 0x86DD) + bytes([0x60]) + bytes(39)
elif kind == "misdirected":
    # UDP from our own address (argv[4]) to argv[3], sent to the MAC argv[2].
    dst_mac = bytes.fromhex(sys.argv[2].replace(":", ""))
    udp = struct.pack("!HHHH", 40000, 9, 8 + 4, 0) + b"spam"
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, ip4(sys.argv[4]), ip4(sys.argv[3]))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    frame = dst_mac + mac + struct.pack("!H", 0x0800) + hdr + udp
for _ in range(3):
    s.send(frame)
"#;

struct Server(#[allow(dead_code)] Child);

async fn serve(netns: &str, port: u16, mode: &str) -> Server {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "python3", "-c", SERVER])
        .arg(port.to_string())
        .arg(mode)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("server start")
        .unwrap();
    assert_eq!(line.as_deref(), Some("ready"));
    Server(child)
}

async fn python_in(netns: &str, script: &str, args: &[String]) -> String {
    let output = Command::new("ip")
        .args(["netns", "exec", netns, "python3", "-c", script])
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "python in {netns}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// One connection from a namespace (see [`CLIENT`]).
async fn connect_from(netns: &str, ip: Ipv4Addr, port: u16, timeout: f64) -> String {
    let args = [ip.to_string(), port.to_string(), timeout.to_string()];
    python_in(netns, CLIENT, &args).await
}

/// One connection from the host, optionally bound to a device; same answers as [`CLIENT`].
async fn host_connect(ip: Ipv4Addr, port: u16, timeout: Duration, device: Option<&str>) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(device) = device {
        socket.bind_device(Some(device.as_bytes())).unwrap();
    }
    let stream = match tokio::time::timeout(timeout, socket.connect(SocketAddr::from((ip, port))))
        .await
    {
        Err(_) => return "TIMEOUT".into(),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return "REFUSED".into(),
        Ok(Err(e)) => return format!("ERROR {e}"),
        Ok(Ok(stream)) => stream,
    };
    let mut lines = BufReader::new(stream).lines();
    match tokio::time::timeout(Duration::from_secs(2), lines.next_line()).await {
        Ok(Ok(Some(line))) => format!("OK {line}"),
        other => format!("ERROR {other:?}"),
    }
}

fn allow_all() -> Rule {
    Rule::all(Peer::ANYWHERE)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Measurements run one at a time, so they do not disturb each other's figures.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_addresses_reach_instances_through_live_security_groups() {
    let Some(env) = Env::new(false) else { return };
    if !need("python3", "python3") {
        return;
    }
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-pub", &[0])).await.unwrap();
    let bridge = d.names().bridge("vpc-pub");
    let a = env.nic("i-pa", "vpc-pub", 0, 10);
    let b = env.nic("i-pb", "vpc-pub", 0, 11);
    d.attach(&a).await.unwrap();
    d.attach(&b).await.unwrap();
    let ns_b = d.names().netns("i-pb");
    let _server = serve(&d.names().netns("i-pa"), 8080, "hi").await;
    let short = Duration::from_millis(300);
    let long = Duration::from_secs(2);
    let gateway = format!("OK hi {}", a.gateway);

    // A loopback public: the host reaches the instance's real port (masqueraded to the
    // gateway address). No security group yet: open, as before security groups existed.
    let public = env.loopback_public(10);
    d.map_public_ip("i-pa", public, a.ip).await.unwrap();
    d.map_public_ip("i-pa", public, a.ip).await.unwrap();
    assert_eq!(d.public_ip("i-pa").await.unwrap(), Some(public));
    assert_eq!(host_connect(public, 8080, long, None).await, gateway);

    // An empty group admits nothing: not from the host, not from B.
    let closed = Firewall {
        ingress: vec![],
        egress: vec![allow_all()],
    };
    let open = Firewall {
        ingress: vec![Rule::tcp(8080, 8080, Peer::ANYWHERE)],
        egress: vec![allow_all()],
    };
    d.set_instance_firewall("i-pa", &closed).await.unwrap();
    assert_eq!(host_connect(public, 8080, short, None).await, "TIMEOUT");
    assert_eq!(connect_from(&ns_b, a.ip, 8080, 0.3).await, "TIMEOUT");

    // Live: each change applies to the next connection. Time from the call's return to the
    // first successful connection through the public address.
    let _measuring = MEASURING.lock().await;
    let mut set_ms = Vec::new();
    let mut reach_ms = Vec::new();
    for _ in 0..20 {
        d.set_instance_firewall("i-pa", &closed).await.unwrap();
        let started = Instant::now();
        d.set_instance_firewall("i-pa", &open).await.unwrap();
        set_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let returned = Instant::now();
        loop {
            let outcome = host_connect(public, 8080, Duration::from_millis(50), None).await;
            if outcome == gateway {
                break;
            }
            assert!(returned.elapsed() < long, "still unreachable: {outcome}");
        }
        reach_ms.push(returned.elapsed().as_secs_f64() * 1000.0);
    }
    drop(_measuring);
    set_ms.sort_by(f64::total_cmp);
    reach_ms.sort_by(f64::total_cmp);
    println!(
        "set_instance_firewall: p50 {:.2} ms, max {:.2} ms; its return -> first connection through the public address: p50 {:.2} ms, max {:.2} ms (20 rounds)",
        percentile(&set_ms, 0.5),
        percentile(&set_ms, 1.0),
        percentile(&reach_ms, 0.5),
        percentile(&reach_ms, 1.0)
    );
    assert!(percentile(&reach_ms, 0.5) < 100.0, "{reach_ms:?}");
    assert_eq!(
        connect_from(&ns_b, a.ip, 8080, 2.0).await,
        format!("OK hi {}", b.ip)
    );

    // The rule removed: unreachable again.
    d.set_instance_firewall("i-pa", &closed).await.unwrap();
    assert_eq!(host_connect(public, 8080, short, None).await, "TIMEOUT");
    assert_eq!(connect_from(&ns_b, a.ip, 8080, 0.3).await, "TIMEOUT");

    // A routable public replaces the loopback one (which now leads nowhere: refused by the
    // host's own loopback). B reaches it (hairpin), through A's security group.
    let routable = env.routable_public(0);
    d.map_public_ip("i-pa", routable, a.ip).await.unwrap();
    assert_eq!(d.public_ip("i-pa").await.unwrap(), Some(routable));
    assert_eq!(host_connect(public, 8080, short, None).await, "REFUSED");
    assert_eq!(connect_from(&ns_b, routable, 8080, 0.3).await, "TIMEOUT");
    d.set_instance_firewall("i-pa", &open).await.unwrap();
    // B has no public: A sees its private address.
    assert_eq!(
        connect_from(&ns_b, routable, 8080, 2.0).await,
        format!("OK hi {}", b.ip)
    );
    // The host reaches it too (bound to our bridge, so nothing could leave by another way).
    assert_eq!(
        host_connect(routable, 8080, long, Some(&bridge)).await,
        gateway
    );
    // With a routable public of its own, B is seen by it (as in EC2).
    let routable_b = env.routable_public(1);
    d.map_public_ip("i-pb", routable_b, b.ip).await.unwrap();
    assert_eq!(
        connect_from(&ns_b, routable, 8080, 2.0).await,
        format!("OK hi {routable_b}")
    );

    // Exclusive, and never an address the host uses itself.
    assert!(matches!(
        d.map_public_ip("i-pb", routable, b.ip).await,
        Err(NetError::PublicIpInUse { .. })
    ));
    for bad in [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(127, 0, 1, 1),
        a.gateway,
        gureum_net::metadata_address(),
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(0, 0, 0, 0),
    ] {
        assert!(
            matches!(
                d.map_public_ip("i-pb", bad, b.ip).await,
                Err(NetError::Invalid { .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(d.public_ip("i-pb").await.unwrap(), Some(routable_b));

    d.unmap_public_ip("i-pa").await.unwrap();
    d.unmap_public_ip("i-pa").await.unwrap();
    assert_eq!(d.public_ip("i-pa").await.unwrap(), None);
    assert_eq!(connect_from(&ns_b, routable, 8080, 0.3).await, "TIMEOUT");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_groups_are_stateful_and_admit_group_members() {
    let Some(env) = Env::new(true) else { return };
    if !need("python3", "python3") {
        return;
    }
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-sg", &[0])).await.unwrap();
    let a = env.nic("i-sa", "vpc-sg", 0, 10);
    let b = env.nic("i-sb", "vpc-sg", 0, 11);
    let c = env.nic("i-sc", "vpc-sg", 0, 12);
    for nic in [&a, &b, &c] {
        d.attach(nic).await.unwrap();
    }
    let (ns_a, ns_b, ns_c) = (
        d.names().netns("i-sa"),
        d.names().netns("i-sb"),
        d.names().netns("i-sc"),
    );
    let _server_a = serve(&ns_a, 8080, "hi").await;
    let _server_b = serve(&ns_b, 9090, "hi").await;
    let table = d.table();
    let veth_a = d.names().veth("i-sa");
    let chain_in = format!("in_{veth_a}");
    let chain_out = format!("out_{veth_a}");

    // A admits its group (B) on 8080 and may send nothing at all.
    let members = Peer::Group(vec![b.ip]);
    d.set_instance_firewall(
        "i-sa",
        &Firewall {
            ingress: vec![
                Rule::tcp(8080, 8080, members.clone()),
                Rule {
                    proto: Proto::Icmp,
                    ports: Some((8, gureum_net::ICMP_ANY_CODE)),
                    peer: members,
                },
            ],
            egress: vec![],
        },
    )
    .await
    .unwrap();
    // Stateful: A's replies leave although A's egress allows nothing.
    assert_eq!(
        connect_from(&ns_b, a.ip, 8080, 2.0).await,
        format!("OK hi {}", b.ip)
    );
    assert!(ping_from(&ns_b, a.ip).await, "b -> a (icmp echo rule)");
    let dropped_in = counter("inet", &table, &chain_in, "not allowed").await;
    assert_eq!(connect_from(&ns_c, a.ip, 8080, 0.3).await, "TIMEOUT");
    assert!(!ping_from(&ns_c, a.ip).await, "c -> a");
    assert!(counter("inet", &table, &chain_in, "not allowed").await > dropped_in);
    // Egress denied: A cannot open a connection to B (which has no group: open).
    let dropped_out = counter("inet", &table, &chain_out, "not allowed").await;
    assert_eq!(connect_from(&ns_a, b.ip, 9090, 0.3).await, "TIMEOUT");
    assert!(counter("inet", &table, &chain_out, "not allowed").await > dropped_out);

    // The other way round: A may send anything, receive nothing new. Replies still come in.
    d.set_instance_firewall(
        "i-sa",
        &Firewall {
            ingress: vec![],
            egress: vec![allow_all()],
        },
    )
    .await
    .unwrap();
    assert_eq!(
        connect_from(&ns_a, b.ip, 9090, 2.0).await,
        format!("OK hi {}", a.ip)
    );
    assert_eq!(connect_from(&ns_b, a.ip, 8080, 0.3).await, "TIMEOUT");

    // A connection established while allowed outlives the rule (conntrack, as in EC2).
    d.set_instance_firewall(
        "i-sa",
        &Firewall {
            ingress: vec![Rule::tcp(8080, 8080, Peer::ANYWHERE)],
            egress: vec![allow_all()],
        },
    )
    .await
    .unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    let stream = socket
        .connect(SocketAddr::from((a.ip, 8080)))
        .await
        .unwrap();
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();
    assert_eq!(line.trim(), format!("hi {}", a.gateway));
    d.set_instance_firewall("i-sa", &Firewall::default())
        .await
        .unwrap();
    assert_eq!(
        host_connect(a.ip, 8080, Duration::from_millis(300), None).await,
        "TIMEOUT"
    );
    stream.get_mut().write_all(b"still there\n").await.unwrap();
    line.clear();
    tokio::time::timeout(Duration::from_secs(2), stream.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line.trim(), "still there");
    env.finish().await;
}

/// A rule for ICMP, ICMPv6 or another protocol number admits that protocol and nothing else:
/// none of them opens a TCP port (a protocol the host layer did not know once meant "every
/// protocol"). A protocol-number rule for 6 is every TCP port, through `meta l4proto`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_rules_admit_only_their_protocol() {
    let Some(env) = Env::new(true) else { return };
    if !need("python3", "python3") {
        return;
    }
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-pr", &[0])).await.unwrap();
    let a = env.nic("i-pa", "vpc-pr", 0, 10);
    let b = env.nic("i-pb", "vpc-pr", 0, 11);
    for nic in [&a, &b] {
        d.attach(nic).await.unwrap();
    }
    let ns_b = d.names().netns("i-pb");
    let _server = serve(&d.names().netns("i-pa"), 8080, "hi").await;
    let only = |proto, ports| Firewall {
        ingress: vec![Rule {
            proto,
            ports,
            peer: Peer::ANYWHERE,
        }],
        egress: vec![allow_all()],
    };

    // ICMP (every type): ping passes, TCP does not.
    d.set_instance_firewall("i-pa", &only(Proto::Icmp, None))
        .await
        .unwrap();
    assert!(ping_from(&ns_b, a.ip).await, "icmp rule admits ping");
    assert_eq!(connect_from(&ns_b, a.ip, 8080, 0.3).await, "TIMEOUT");

    // ICMPv6 and other protocol numbers: neither ping (IPv4 ICMP) nor TCP.
    for (proto, ports) in [
        (Proto::Icmpv6, None),
        (Proto::Icmpv6, Some((128, 0))),
        (Proto::Number(47), None),
        (Proto::Number(17), None),
    ] {
        d.set_instance_firewall("i-pa", &only(proto, ports))
            .await
            .unwrap();
        assert!(!ping_from(&ns_b, a.ip).await, "{proto:?} admits ping");
        assert_eq!(
            connect_from(&ns_b, a.ip, 8080, 0.3).await,
            "TIMEOUT",
            "{proto:?} opens a TCP port"
        );
    }

    // Protocol 6 by number: every TCP port, still no ping.
    d.set_instance_firewall("i-pa", &only(Proto::Number(6), None))
        .await
        .unwrap();
    assert_eq!(
        connect_from(&ns_b, a.ip, 8080, 2.0).await,
        format!("OK hi {}", b.ip)
    );
    assert!(!ping_from(&ns_b, a.ip).await);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofing_from_inside_is_dropped() {
    let Some(env) = Env::new(true) else { return };
    if !need("python3", "python3") {
        return;
    }
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-spoof", &[0])).await.unwrap();
    let bridge = d.names().bridge("vpc-spoof");
    let a = env.nic("i-xa", "vpc-spoof", 0, 10);
    let b = env.nic("i-xb", "vpc-spoof", 0, 11);
    let c = env.nic("i-xc", "vpc-spoof", 0, 12);
    for nic in [&a, &b, &c] {
        d.attach(nic).await.unwrap();
    }
    let ns_a = d.names().netns("i-xa");
    let table = d.table();
    // Anti-spoofing is one set of rules for all ports (each test has its own table).
    let from_a = "prerouting".to_string();
    let to_b = "postrouting".to_string();
    let count = |chain: String, comment: &'static str| {
        let table = table.clone();
        async move { counter("bridge", &table, &chain, comment).await }
    };
    assert!(ping_from(&ns_a, b.ip).await, "a -> b, honestly");
    // The host has learnt B's MAC.
    assert!(ping_from_host(&bridge, b.ip).await);

    // A second address inside A.
    let before = count(from_a.clone(), "spoofed source ip").await;
    let extra = Ipv4Addr::new(172, 31, env.octet, 99);
    run(
        "ip",
        &[
            "-n",
            &ns_a,
            "addr",
            "add",
            &format!("{extra}/24"),
            "dev",
            "eth0",
        ],
    )
    .await;
    let spoofed = Command::new("ip")
        .args([
            "netns", "exec", &ns_a, "ping", "-n", "-q", "-c", "1", "-W", "1", "-I",
        ])
        .arg(extra.to_string())
        .arg(b.ip.to_string())
        .output()
        .await
        .unwrap();
    assert!(!spoofed.status.success(), "a reached b from {extra}");
    run(
        "ip",
        &[
            "-n",
            &ns_a,
            "addr",
            "del",
            &format!("{extra}/24"),
            "dev",
            "eth0",
        ],
    )
    .await;
    let after = count(from_a.clone(), "spoofed source ip").await;
    println!("second ip inside a: {} packets dropped", after - before);
    assert!(after > before);

    // A changed MAC.
    let before = count(from_a.clone(), "spoofed source mac").await;
    run(
        "ip",
        &[
            "-n",
            &ns_a,
            "link",
            "set",
            "dev",
            "eth0",
            "address",
            "0a:5e:99:99:99:99",
        ],
    )
    .await;
    assert!(
        !ping_from(&ns_a, b.ip).await,
        "a reached b with a foreign mac"
    );
    run(
        "ip",
        &[
            "-n",
            &ns_a,
            "link",
            "set",
            "dev",
            "eth0",
            "address",
            &mac_text(a.mac),
        ],
    )
    .await;
    let after = count(from_a.clone(), "spoofed source mac").await;
    println!("changed mac: {} frames dropped", after - before);
    assert!(after > before);
    assert!(ping_from(&ns_a, b.ip).await, "a -> b, honest again");

    // An ARP reply claiming B's address: dropped, and the host still has B's MAC for it.
    let before = count(from_a.clone(), "spoofed arp sender ip").await;
    python_in(&ns_a, RAW, &["arp".into(), b.ip.to_string()]).await;
    let after = count(from_a.clone(), "spoofed arp sender ip").await;
    println!("arp claiming b's ip: {} frames dropped", after - before);
    assert_eq!(after - before, 3);
    let neigh = run("ip", &["neigh", "show", &b.ip.to_string(), "dev", &bridge]).await;
    assert!(!neigh.contains(&mac_text(a.mac)), "poisoned: {neigh}");

    // IPv6 (router advertisements included) from a guest.
    let before = count(from_a.clone(), "ipv6").await;
    python_in(&ns_a, RAW, &["ipv6".into()]).await;
    assert_eq!(count(from_a.clone(), "ipv6").await - before, 3);

    // A DHCP server's reply (from udp port 67).
    let before = count(from_a.clone(), "dhcp server").await;
    python_in(
        &ns_a,
        "import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind((sys.argv[1], 67))\ns.sendto(b'offer', (sys.argv[2], 68))",
        &[a.ip.to_string(), b.ip.to_string()],
    )
    .await;
    assert_eq!(count(from_a.clone(), "dhcp server").await - before, 1);

    // A frame to B's MAC addressed to C's IP does not reach B's port.
    let before = count(to_b.clone(), "not addressed to this instance").await;
    python_in(
        &ns_a,
        RAW,
        &[
            "misdirected".into(),
            mac_text(b.mac),
            c.ip.to_string(),
            a.ip.to_string(),
        ],
    )
    .await;
    assert_eq!(
        count(to_b.clone(), "not addressed to this instance").await - before,
        3
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_reach_no_host_service_but_the_metadata_address() {
    let Some(env) = Env::new(false) else { return };
    if !need("python3", "python3") {
        return;
    }
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-host", &[0])).await.unwrap();
    let bridge = d.names().bridge("vpc-host");
    let a = env.nic("i-ha", "vpc-host", 0, 10);
    d.attach(&a).await.unwrap();
    let ns_a = d.names().netns("i-ha");
    let table = d.table();

    // A throwaway service on the gateway address: the host reaches it, the guest does not.
    let listener = tokio::net::TcpListener::bind((a.gateway, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"host service\n").await;
        }
    });
    assert_eq!(
        host_connect(a.gateway, port, Duration::from_secs(2), None).await,
        "OK host service"
    );
    let before = counter("inet", &table, "input", "a guest reaching a host service").await;
    // A drop, not a refusal: the packets never reach the host's stack.
    assert_eq!(connect_from(&ns_a, a.gateway, port, 0.5).await, "TIMEOUT");
    assert_eq!(connect_from(&ns_a, a.gateway, 22, 0.5).await, "TIMEOUT");
    let after = counter("inet", &table, "input", "a guest reaching a host service").await;
    assert!(after >= before + 2, "{before} -> {after}");
    accept.abort();

    // The metadata address, port 80: reachable, even when the instance's security groups
    // allow no egress at all (as in EC2); any other port there is dropped.
    let imds = gureum_net::metadata_address();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind_device(Some(bridge.as_bytes())).unwrap();
    match socket.bind(SocketAddr::from((imds, 80))) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // Another process (say a production gureum's metadata server, bound to the address
            // on every interface) has the port: leave it alone rather than connect to it.
            println!(
                "skipped (the metadata part): {imds}:80 is taken by another process on this host"
            );
        }
        Err(e) => panic!("binding {imds}:80 on {bridge}: {e}"),
        Ok(()) => {
            let listener = socket.listen(16).unwrap();
            let accept = tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let _ = stream.write_all(b"metadata\n").await;
                }
            });
            assert_eq!(connect_from(&ns_a, imds, 80, 2.0).await, "OK metadata");
            d.set_instance_firewall("i-ha", &Firewall::default())
                .await
                .unwrap();
            assert_eq!(connect_from(&ns_a, imds, 80, 2.0).await, "OK metadata");
            accept.abort();
        }
    }
    assert_eq!(connect_from(&ns_a, imds, 81, 0.5).await, "TIMEOUT");
    env.finish().await;
}

/// Transfer `mib` MiB from the host to a `sink` server; MiB/s.
async fn transfer(ip: Ipv4Addr, port: u16, mib: usize) -> f64 {
    let socket = TcpSocket::new_v4().unwrap();
    let mut stream = socket.connect(SocketAddr::from((ip, port))).await.unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    let started = Instant::now();
    for _ in 0..mib {
        stream.write_all(&chunk).await.unwrap();
    }
    stream.shutdown().await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(answer.trim(), (mib << 20).to_string());
    mib as f64 / elapsed.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_through_the_public_address() {
    let Some(env) = Env::new(false) else { return };
    if !need("python3", "python3") {
        return;
    }
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-tput", &[0])).await.unwrap();
    let a = env.nic("i-ta", "vpc-tput", 0, 10);
    d.attach(&a).await.unwrap();
    let _server = serve(&d.names().netns("i-ta"), 8080, "sink").await;
    let public = env.loopback_public(10);
    d.map_public_ip("i-ta", public, a.ip).await.unwrap();
    d.set_instance_firewall(
        "i-ta",
        &Firewall {
            ingress: vec![Rule::tcp(8080, 8080, Peer::ANYWHERE)],
            egress: vec![allow_all()],
        },
    )
    .await
    .unwrap();
    let _measuring = MEASURING.lock().await;
    const MIB: usize = 200;
    const ROUNDS: usize = 5;
    let (mut private, mut via_public) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        private.push(transfer(a.ip, 8080, MIB).await);
        via_public.push(transfer(public, 8080, MIB).await);
    }
    private.sort_by(f64::total_cmp);
    via_public.sort_by(f64::total_cmp);
    // Best of five: the path's capacity, less the noise of a shared two-core machine.
    let (p, q) = (private[ROUNDS - 1], via_public[ROUNDS - 1]);
    println!(
        "throughput, {MIB} MiB host -> instance, {ROUNDS} rounds: private best {p:.0} MiB/s (median {:.0}), public best {q:.0} MiB/s (median {:.0}): {:.0}%",
        private[ROUNDS / 2],
        via_public[ROUNDS / 2],
        100.0 * q / p
    );
    // The 90% figure is a benchmark's to measure (it is printed above): on a shared two-core
    // machine the ratio swings with other load. The test only catches a path that is not the
    // kernel's (a userspace relay would be several times slower).
    assert!(
        q >= 0.3 * p,
        "public {q:.0} MiB/s is under a third of private {p:.0} MiB/s"
    );
    env.finish().await;
}

/// 100 groups of 10 rules; the group `allowing` also admits `member` on 8080.
fn thousand_rules(member: Ipv4Addr) -> Vec<Rule> {
    let mut rules = Vec::new();
    for g in 0..100u16 {
        let hosts: Vec<Ipv4Addr> = (1..=5)
            .map(|h| Ipv4Addr::new(10, (g / 50) as u8 + 1, (g % 50) as u8, h))
            .collect();
        let group = Peer::Group(hosts);
        let base = 10_000 + g * 10;
        for r in 0..10u16 {
            let rule = match r {
                0..=5 => Rule::tcp(base + r, base + r, group.clone()),
                6 => Rule::udp(base, base + 9, group.clone()),
                7 => Rule::tcp(
                    base,
                    base + 5,
                    Peer::Cidr(Ipv4Net::new(Ipv4Addr::new(192, 168, g as u8, 0), 24).unwrap()),
                ),
                8 => Rule {
                    proto: Proto::Icmp,
                    ports: Some((8, gureum_net::ICMP_ANY_CODE)),
                    peer: group.clone(),
                },
                _ if g == 42 => Rule::tcp(8080, 8080, Peer::Group(vec![member])),
                _ => Rule::tcp(20_000 + g, 20_000 + g, group.clone()),
            };
            rules.push(rule);
        }
    }
    rules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_rules_do_not_slow_connection_setup() {
    let Some(env) = Env::new(false) else { return };
    if !need("python3", "python3") {
        return;
    }
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-scale", &[0])).await.unwrap();
    let a = env.nic("i-ka", "vpc-scale", 0, 10);
    let b = env.nic("i-kb", "vpc-scale", 0, 11);
    d.attach(&a).await.unwrap();
    d.attach(&b).await.unwrap();
    let ns_b = d.names().netns("i-kb");
    let _server = serve(&d.names().netns("i-ka"), 8080, "hi").await;
    let one = Firewall {
        ingress: vec![Rule::tcp(8080, 8080, Peer::Group(vec![b.ip]))],
        egress: vec![allow_all()],
    };
    let thousand = Firewall {
        ingress: thousand_rules(b.ip),
        egress: vec![allow_all()],
    };
    assert_eq!(thousand.ingress.len(), 1000);
    let _measuring = MEASURING.lock().await;
    const N: usize = 400;
    let measure = |firewall: Firewall| {
        let d = d.clone();
        let ns_b = ns_b.clone();
        async move {
            let started = Instant::now();
            d.set_instance_firewall("i-ka", &firewall).await.unwrap();
            let set = started.elapsed();
            let out = python_in(
                &ns_b,
                CONNECT_TIMES,
                &[a.ip.to_string(), "8080".into(), N.to_string()],
            )
            .await;
            let times: Vec<f64> = out.split(' ').map(|t| t.parse().unwrap()).collect();
            assert_eq!(times.len(), N);
            (set, times)
        }
    };
    // Alternate, to share out any drift of the machine.
    let (mut with_one, mut with_thousand) = (Vec::new(), Vec::new());
    let mut set_thousand = Duration::ZERO;
    for _ in 0..2 {
        with_one.extend(measure(one.clone()).await.1);
        let (set, times) = measure(thousand.clone()).await;
        set_thousand = set_thousand.max(set);
        with_thousand.extend(times);
    }
    with_one.sort_by(f64::total_cmp);
    with_thousand.sort_by(f64::total_cmp);
    let listed = run(
        "nft",
        &[
            "list",
            "set",
            "inet",
            &d.table(),
            &format!("in_{}_l4", d.names().veth("i-ka")),
        ],
    )
    .await;
    let elements = listed.matches(" . tcp . ").count() + listed.matches(" . udp . ").count();
    println!(
        "connection set-up b -> a:8080 ({} connects each): 1 rule p50 {:.0} us p90 {:.0} us; 1,000 rules in 100 groups p50 {:.0} us p90 {:.0} us; set_instance_firewall(1,000 rules) {:.1} ms ({elements} tcp/udp set elements)",
        2 * N,
        percentile(&with_one, 0.5),
        percentile(&with_one, 0.9),
        percentile(&with_thousand, 0.5),
        percentile(&with_thousand, 0.9),
        set_thousand.as_secs_f64() * 1000.0
    );
    // Generous: only a linear scan's order of magnitude would fail it.
    assert!(
        percentile(&with_thousand, 0.5) < 1.5 * percentile(&with_one, 0.5) + 50.0,
        "1,000 rules slowed connection set-up"
    );
    // The other members of the 1,000 rules are not B: a port they allow is closed to it.
    assert_eq!(connect_from(&ns_b, a.ip, 10_000, 0.3).await, "TIMEOUT");
    env.finish().await;
}

/// A new driver (a restarted server) finds what the last one left and removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_driver_takes_over_and_detach_removes_every_rule() {
    let Some(env) = Env::new(false) else { return };
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-re", &[0])).await.unwrap();
    let a = env.nic("i-ra", "vpc-re", 0, 10);
    d.attach(&a).await.unwrap();
    d.set_instance_firewall("i-ra", &Firewall::open())
        .await
        .unwrap();
    let public = env.routable_public(0);
    d.map_public_ip("i-ra", public, a.ip).await.unwrap();
    // Rules for an instance that was never attached.
    d.set_instance_firewall("i-never", &Firewall::default())
        .await
        .unwrap();
    d.map_public_ip(
        "i-never",
        env.routable_public(1),
        Ipv4Addr::new(172, 31, env.octet, 50),
    )
    .await
    .unwrap();

    let again = NetDriver::new(env.prefix()).unwrap();
    assert_eq!(again.public_ip("i-ra").await.unwrap(), Some(public));
    // Re-attaching (a reboot) keeps the security group and the public address.
    again.attach(&a).await.unwrap();
    let table = d.table();
    let veth = d.names().veth("i-ra");
    let inet = run("nft", &["list", "table", "inet", &table]).await;
    assert!(inet.contains(&format!("in_{veth}_all")), "{inet}");
    assert!(inet.contains(&public.to_string()), "{inet}");
    // Moving the instance to another IP moves its dispatch entry.
    let moved = NicSpec {
        ip: Ipv4Addr::new(172, 31, env.octet, 20),
        ..a.clone()
    };
    again.attach(&moved).await.unwrap();
    let map = run("nft", &["list", "map", "inet", &table, "sg_ingress"]).await;
    assert!(
        map.contains(&moved.ip.to_string()) && !map.contains(&format!("{} :", a.ip)),
        "{map}"
    );

    again.detach("i-ra").await.unwrap();
    again.detach("i-never").await.unwrap();
    let inet = run("nft", &["list", "table", "inet", &table]).await;
    let bridge = run("nft", &["list", "table", "bridge", &table]).await;
    let never = d.names().veth("i-never");
    for name in [&veth, &never] {
        assert!(!inet.contains(name.as_str()), "{name} left in {inet}");
        assert!(!bridge.contains(name.as_str()), "{name} left in {bridge}");
    }
    assert!(!inet.contains("198.51.100."), "{inet}");
    // The first driver's view is stale now, and it copes.
    d.detach("i-ra").await.unwrap();
    d.map_public_ip("i-ra", public, a.ip).await.unwrap();
    d.detach("i-ra").await.unwrap();
    env.finish().await;
}

/// A host set up by the previous version (one `inet` table with `forward` and `input` only, a
/// bridge without its own br_netfilter switch or the metadata address) is brought up to date
/// by `ensure_vpc`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_vpc_upgrades_what_the_previous_version_left() {
    let Some(env) = Env::new(false) else { return };
    let d = &env.driver;
    let table = d.table();
    let bridge = d.names().bridge("vpc-up");
    // The previous version's table, as it rendered it.
    let old = format!(
        concat!(
            "table inet {t}\n",
            "delete table inet {t}\n",
            "table inet {t} {{\n",
            "\tcomment \"gureum host networking; generated, replaced as a whole: do not edit\"\n",
            "\tset vpc_bridges {{\n\t\ttype ifname\n\t\telements = {{ \"{b}\" }}\n\t}}\n",
            "\tset vpc_hairpin {{\n\t\ttype ifname . ifname\n\t\telements = {{ \"{b}\" . \"{b}\" }}\n\t}}\n",
            "\tchain forward {{\n",
            "\t\ttype filter hook forward priority filter; policy accept;\n",
            "\t\tiifname @vpc_bridges iifname . oifname != @vpc_hairpin counter drop comment \"leaves its vpc\"\n",
            "\t\toifname @vpc_bridges iifname . oifname != @vpc_hairpin counter drop comment \"enters a vpc from elsewhere\"\n",
            "\t}}\n",
            "\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t}}\n",
            "}}\n"
        ),
        t = table,
        b = bridge
    );
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    nft.stdin
        .take()
        .unwrap()
        .write_all(old.as_bytes())
        .await
        .unwrap();
    assert!(nft.wait().await.unwrap().success());
    d.ensure_vpc(&env.vpc("vpc-up", &[0])).await.unwrap();
    // The previous version's bridge: no per-bridge switch, no metadata address.
    run(
        "ip",
        &[
            "link",
            "set",
            "dev",
            &bridge,
            "type",
            "bridge",
            "nf_call_iptables",
            "0",
        ],
    )
    .await;
    run("ip", &["addr", "del", "169.254.169.254/32", "dev", &bridge]).await;
    d.ensure_vpc(&env.vpc("vpc-up", &[0])).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/bridge/nf_call_iptables"))
            .unwrap()
            .trim(),
        "1"
    );
    assert!(bridge_addrs(&bridge)
        .await
        .contains(&"169.254.169.254/32".to_string()));
    let inet = run("nft", &["list", "table", "inet", &table]).await;
    for chain in [
        "chain guard",
        "chain egress",
        "chain ingress",
        "chain nat_pre",
    ] {
        assert!(inet.contains(chain), "{chain} missing: {inet}");
    }
    run("nft", &["list", "table", "bridge", &table]).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tap_port_is_on_the_bridge_with_the_per_port_rules() {
    let Some(env) = Env::new(false) else { return };
    let d = &env.driver;
    d.ensure_vpc(&env.vpc("vpc-t", &[0])).await.unwrap();
    let nic = env.nic("i-t", "vpc-t", 0, 20);
    let tap = d.attach_tap(&nic).await.unwrap();
    assert_eq!(tap, d.names().veth("i-t"));
    let sys = Path::new("/sys/class/net").join(&tap);
    assert!(sys.join("tun_flags").exists(), "{tap} is not a tap");
    let master = std::fs::read_link(sys.join("master")).unwrap();
    assert!(master.ends_with(d.names().bridge("vpc-t")));
    assert_eq!(d.list_attachments().await.unwrap(), ["i-t"]);
    // Idempotent, and the port's rules (security groups, public address) apply as to a veth.
    assert_eq!(d.attach_tap(&nic).await.unwrap(), tap);
    let fw = Firewall {
        ingress: vec![Rule {
            proto: Proto::Tcp,
            ports: Some((22, 22)),
            peer: Peer::Cidr("0.0.0.0/0".parse().unwrap()),
        }],
        egress: vec![],
    };
    d.set_instance_firewall("i-t", &fw).await.unwrap();
    d.map_public_ip("i-t", env.loopback_public(20), nic.ip)
        .await
        .unwrap();
    assert_eq!(
        d.public_ip("i-t").await.unwrap(),
        Some(env.loopback_public(20))
    );
    d.detach("i-t").await.unwrap();
    assert!(!sys.exists());
    assert!(d.list_attachments().await.unwrap().is_empty());
    d.remove_vpc("vpc-t").await.unwrap();
    env.finish().await;
}
