//! The driver against the real kernel: bridges, namespaces, veths and nftables on this host.
//!
//! Every test needs root, `ip` and `nft` (and `ping` where it sends traffic); without them it
//! prints `skipped: <why>` and returns. Each test works under its own random prefix (`gt` + 3
//! hex digits) and its own addresses in 172.31.128.0/17, and a guard tears everything down
//! even when the test panics; a normal end also asserts that nothing is left. Traffic is only
//! `ping -c 1 -W 1` between our own namespaces and from the host bound to our own bridge
//! (`-I <bridge>`), so not one packet can leave the host.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gureum_net::{NetDriver, NetError, NicSpec, SubnetNet, VpcNet};
use ipnet::Ipv4Net;
use tokio::process::Command;

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
        }
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
    assert!(
        !tables
            .lines()
            .any(|l| l.trim() == format!("table inet {}", driver.table())),
        "nft table {} left behind",
        driver.table()
    );
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
    let text = run("nft", &["list", "chain", "inet", table, "forward"]).await;
    let line = text
        .lines()
        .find(|l| l.contains(comment))
        .unwrap_or_else(|| panic!("no rule {comment:?} in {text}"));
    let after = line.split("counter packets ").nth(1).unwrap();
    after.split(' ').next().unwrap().parse().unwrap()
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
        [format!("172.31.{o}.1/24"), format!("172.31.{}.1/24", o + 1)]
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
    run("nft", &["list", "chain", "inet", &table, "input"]).await;
    run("nft", &["list", "chain", "inet", &table, "forward"]).await;

    // Dropping a subnet removes its gateway address.
    d.ensure_vpc(&env.vpc("vpc-idem", &[0])).await.unwrap();
    assert_eq!(bridge_addrs(&bridge).await, [format!("172.31.{o}.1/24")]);

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
    assert!(ping_from(&ns_a, a.gateway).await, "a -> gateway");
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

    // Each instance works within its own VPC...
    assert!(ping_from(&ns_a, a.gateway).await);
    assert!(ping_from(&ns_c, c.gateway).await);
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
