//! Reading and tuning host state without spawning processes: sysfs for links, procfs for
//! per-interface sysctls (in the host namespace directly, inside an instance's namespace from a
//! throwaway thread that `setns`es into it), `/run/netns` for namespaces, and the parsing of
//! `ip -j` output.
//!
//! Reading `/sys/class/net` and writing `/proc/sys/net/...` cost microseconds, which is why
//! existence checks and sysctls are done here rather than with more `ip`/`sysctl` processes.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde_json::Value;

use crate::{cmd, Counters, NetError};

/// Where `ip netns add` puts namespace handles (bind mounts of `/proc/<pid>/ns/net`).
pub(crate) const NETNS_DIR: &str = "/run/netns";
const SYS_NET: &str = "/sys/class/net";

pub(crate) fn link_exists(ifname: &str) -> bool {
    Path::new(SYS_NET).join(ifname).exists()
}

/// Names of all links of the host namespace.
/// The interface's index (changes when a link of that name is deleted and made again).
pub(crate) fn ifindex(ifname: &str) -> Option<u32> {
    std::fs::read_to_string(Path::new("/sys/class/net").join(ifname).join("ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub(crate) fn links() -> Result<Vec<String>, NetError> {
    read_dir_names(Path::new(SYS_NET))
}

/// Namespace handles in `/run/netns` (none if the directory does not exist).
pub(crate) fn netns_names() -> Result<Vec<String>, NetError> {
    read_dir_names(Path::new(NETNS_DIR))
}

pub(crate) fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The link's `ifalias`, where the driver records the owning VPC or instance id.
pub(crate) fn ifalias(ifname: &str) -> Option<String> {
    std::fs::read_to_string(Path::new(SYS_NET).join(ifname).join("ifalias"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The bridge a port is enslaved to.
pub(crate) fn master(ifname: &str) -> Option<String> {
    std::fs::read_link(Path::new(SYS_NET).join(ifname).join("master"))
        .ok()
        .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// Administrative state (IFF_UP).
pub(crate) fn is_up(ifname: &str) -> bool {
    std::fs::read_to_string(Path::new(SYS_NET).join(ifname).join("flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & 1 != 0)
}

/// Whether the bridge passes IPv4 through the inet hooks by its own option (`nf_call_iptables`;
/// the host-wide sysctl is not consulted).
pub(crate) fn bridge_calls_iptables(bridge: &str) -> bool {
    std::fs::read_to_string(
        Path::new(SYS_NET)
            .join(bridge)
            .join("bridge")
            .join("nf_call_iptables"),
    )
    .is_ok_and(|s| s.trim() == "1")
}

/// Interfaces enslaved to a bridge.
pub(crate) fn bridge_ports(bridge: &str) -> Result<Vec<String>, NetError> {
    read_dir_names(&Path::new(SYS_NET).join(bridge).join("brif"))
}

pub(crate) fn counters(ifname: &str) -> Result<Counters, NetError> {
    let stat = |name: &str| -> Result<u64, NetError> {
        let path = Path::new(SYS_NET)
            .join(ifname)
            .join("statistics")
            .join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| NetError::io(format!("reading {}", path.display()), e))?;
        text.trim()
            .parse()
            .map_err(|_| NetError::parse(path.display().to_string(), "not a number"))
    };
    Ok(Counters {
        rx_bytes: stat("rx_bytes")?,
        rx_packets: stat("rx_packets")?,
        tx_bytes: stat("tx_bytes")?,
        tx_packets: stat("tx_packets")?,
    })
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, NetError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetError::io(format!("listing {}", dir.display()), e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| NetError::io(format!("listing {}", dir.display()), e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Write `/proc/sys/net/<key>` = value for each pair, in the calling thread's namespace.
fn write_sysctls(settings: &[(String, &str)]) -> std::io::Result<()> {
    for (key, value) in settings {
        let path = Path::new("/proc/sys/net").join(key);
        std::fs::write(&path, value)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

/// Per-interface sysctls in the host namespace.
pub(crate) fn host_sysctls(settings: &[(String, &str)]) -> Result<(), NetError> {
    write_sysctls(settings).map_err(|e| NetError::io("setting host sysctl", e))
}

/// Per-interface sysctls inside a network namespace.
///
/// A network namespace is per thread, and `/proc/sys/net` shows the namespace of the thread
/// that opens it; so a fresh OS thread joins the namespace, writes, and exits. It is never a
/// pooled thread (tokio's blocking pool reuses threads), so no other work ever runs in the
/// wrong namespace. This avoids an `ip netns exec … sysctl` process per attach.
pub(crate) async fn netns_sysctls(
    netns: &Path,
    settings: Vec<(String, &'static str)>,
) -> Result<(), NetError> {
    let path = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("gureum-netns".into())
        .spawn(move || {
            let result = (|| {
                let handle = std::fs::File::open(&path)?;
                rustix::thread::move_into_link_name_space(
                    handle.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                write_sysctls(&settings)
            })();
            let _ = tx.send(result);
        })
        .map_err(|e| NetError::io("spawning the namespace thread", e))?;
    let result = rx.await.map_err(|_| {
        NetError::io(
            "namespace thread",
            std::io::Error::other("exited without a result"),
        )
    })?;
    result.map_err(|e| NetError::io(format!("setting sysctl in {}", netns.display()), e))
}

/// Make sure `/run/netns` is a shared mount before namespaces are added concurrently.
///
/// `ip netns add` turns `/run/netns` into a bind mount the first time; two first-time
/// invocations racing each other stack two mounts. So the first use in this process adds and
/// deletes one throwaway namespace alone; later `ip netns add` calls find the mount in place.
pub(crate) async fn ensure_netns_dir(scratch_name: &str) -> Result<(), NetError> {
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    READY
        .get_or_try_init(|| async {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
                .map_err(|e| NetError::io("reading /proc/self/mountinfo", e))?;
            if mountinfo
                .lines()
                .any(|line| line.split(' ').nth(4) == Some(NETNS_DIR))
            {
                return Ok(());
            }
            let lines = [
                format!("netns add {scratch_name}"),
                format!("netns del {scratch_name}"),
            ];
            cmd::ip_batch(&[], &lines).await.map(|_| ())
        })
        .await
        .map(|_| ())
}

/// An IPv4 route of the host: destination and device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub dst: Ipv4Net,
    pub dev: String,
}

/// Parse the concatenated JSON arrays of `ip -4 -j -batch` `route show` commands.
pub(crate) fn parse_routes(json: &str) -> Result<Vec<Route>, NetError> {
    let mut routes = Vec::new();
    for value in json_values(json, "ip -j route")? {
        let Value::Array(items) = value else {
            return Err(NetError::parse("ip -j route", "not an array"));
        };
        for item in items {
            let (Some(dst), Some(dev)) = (
                item.get("dst").and_then(Value::as_str),
                item.get("dev").and_then(Value::as_str),
            ) else {
                // Routes without a device (blackhole, unreachable, multipath) cannot be
                // hijacked by an address on our bridge in a way we can attribute; skip them.
                continue;
            };
            if dst == "default" {
                continue;
            }
            let parsed = if dst.contains('/') {
                dst.parse::<Ipv4Net>().ok()
            } else {
                dst.parse::<Ipv4Addr>().ok().map(Ipv4Net::from)
            };
            let dst = parsed.ok_or_else(|| {
                NetError::parse("ip -j route", format!("bad destination {dst:?}"))
            })?;
            routes.push(Route {
                dst,
                dev: dev.to_string(),
            });
        }
    }
    Ok(routes)
}

/// The first host route outside `own_dev` that overlaps `cidr`.
pub(crate) fn find_conflict<'a>(
    cidr: Ipv4Net,
    routes: &'a [Route],
    own_dev: &str,
) -> Option<&'a Route> {
    routes
        .iter()
        .filter(|r| r.dev != own_dev)
        .find(|r| r.dst.contains(&cidr.network()) || cidr.contains(&r.dst.network()))
}

/// IPv4 state of `eth0` inside a namespace, as `ip -j` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NsState {
    pub mac: Option<[u8; 6]>,
    pub eth0_up: bool,
    pub lo_up: bool,
    pub addrs: Vec<Ipv4Net>,
    pub default_gw: Option<Ipv4Addr>,
}

/// Parse the output of `ip -j -batch` with, in order, `addr show dev eth0`,
/// `link show dev lo` and `route show default`.
pub(crate) fn parse_ns_state(json: &str) -> Result<NsState, NetError> {
    let what = "ip -j addr/link/route in the instance namespace";
    let values = json_values(json, what)?;
    let [addr, lo, route] = values.as_slice() else {
        return Err(NetError::parse(what, "expected three JSON arrays"));
    };
    let mut state = NsState::default();
    let first = |v: &Value| v.as_array().and_then(|a| a.first()).cloned();
    let has_up = |link: &Value| {
        link.get("flags")
            .and_then(Value::as_array)
            .is_some_and(|flags| flags.iter().any(|f| f.as_str() == Some("UP")))
    };
    if let Some(eth0) = first(addr) {
        state.mac = eth0
            .get("address")
            .and_then(Value::as_str)
            .and_then(parse_mac);
        state.eth0_up = has_up(&eth0);
        for info in eth0
            .get("addr_info")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if info.get("family").and_then(Value::as_str) != Some("inet") {
                continue;
            }
            let local = info.get("local").and_then(Value::as_str);
            let len = info.get("prefixlen").and_then(Value::as_u64);
            if let (Some(local), Some(len)) = (local, len) {
                let addr: Ipv4Addr = local
                    .parse()
                    .map_err(|_| NetError::parse(what, format!("bad address {local:?}")))?;
                let net = Ipv4Net::new(addr, len as u8)
                    .map_err(|_| NetError::parse(what, format!("bad prefix length {len}")))?;
                state.addrs.push(net);
            }
        }
    }
    state.lo_up = first(lo).is_some_and(|l| has_up(&l));
    state.default_gw = first(route)
        .and_then(|r| r.get("gateway").and_then(Value::as_str).map(str::to_string))
        .and_then(|gw| gw.parse().ok());
    Ok(state)
}

/// IPv4 addresses (with prefix) of a host link, from `ip -j addr show dev X`.
pub(crate) fn parse_link_addrs(json: &str) -> Result<BTreeSet<Ipv4Net>, NetError> {
    let what = "ip -j addr show";
    let mut addrs = BTreeSet::new();
    for value in json_values(json, what)? {
        for link in value.as_array().into_iter().flatten() {
            for info in link
                .get("addr_info")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if info.get("family").and_then(Value::as_str) != Some("inet") {
                    continue;
                }
                let (Some(local), Some(len)) = (
                    info.get("local").and_then(Value::as_str),
                    info.get("prefixlen").and_then(Value::as_u64),
                ) else {
                    continue;
                };
                let addr: Ipv4Addr = local
                    .parse()
                    .map_err(|_| NetError::parse(what, format!("bad address {local:?}")))?;
                addrs.insert(
                    Ipv4Net::new(addr, len as u8)
                        .map_err(|_| NetError::parse(what, format!("bad prefix {len}")))?,
                );
            }
        }
    }
    Ok(addrs)
}

/// `ip -j -batch` prints one JSON document per command, back to back.
fn json_values(text: &str, what: &str) -> Result<Vec<Value>, NetError> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NetError::parse(what, e.to_string()))
}

pub(crate) fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(crate) fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_conflicts_are_found() {
        let json = r#"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},
            {"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2","flags":[]},
            {"type":"blackhole","dst":"198.51.100.0/24","flags":[]}]
            [{"type":"local","dst":"192.0.2.2","dev":"eth0","table":"local","protocol":"kernel","scope":"host","prefsrc":"192.0.2.2","flags":[]},
            {"type":"local","dst":"172.31.0.1","dev":"grbr00000001","table":"local","flags":[]}]"#;
        let routes = parse_routes(json).unwrap();
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[1].dst, "192.0.2.2/32".parse().unwrap());
        let conflict = find_conflict("192.0.2.128/25".parse().unwrap(), &routes, "grbr1");
        assert_eq!(conflict.unwrap().dev, "eth0");
        // A larger subnet containing a host route conflicts too.
        assert!(find_conflict("192.0.0.0/16".parse().unwrap(), &routes, "x").is_some());
        // The bridge's own routes are not conflicts, and the default route never is.
        assert!(find_conflict("172.31.0.0/20".parse().unwrap(), &routes, "grbr00000001").is_none());
        assert!(find_conflict("172.31.0.0/20".parse().unwrap(), &routes, "other").is_some());
        assert!(find_conflict("10.0.0.0/8".parse().unwrap(), &routes, "x").is_none());
    }

    #[test]
    fn namespace_state_parses() {
        let json = r#"[{"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],
              "address":"0a:00:00:00:00:01","addr_info":[
                {"family":"inet","local":"172.31.0.5","prefixlen":20},
                {"family":"inet6","local":"fe80::1","prefixlen":64}]}]
            [{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"]}]
            [{"dst":"default","gateway":"172.31.0.1","dev":"eth0","flags":[]}]"#;
        let state = parse_ns_state(json).unwrap();
        assert_eq!(state.mac, Some([0x0a, 0, 0, 0, 0, 1]));
        assert!(state.eth0_up && state.lo_up);
        assert_eq!(state.addrs, vec!["172.31.0.5/20".parse().unwrap()]);
        assert_eq!(state.default_gw, Some(Ipv4Addr::new(172, 31, 0, 1)));

        let bare = parse_ns_state("[{\"ifname\":\"eth0\",\"flags\":[],\"address\":\"0a:00:00:00:00:02\",\"addr_info\":[]}]\n[{\"ifname\":\"lo\",\"flags\":[\"LOOPBACK\"]}]\n[]").unwrap();
        assert!(!bare.eth0_up && !bare.lo_up && bare.addrs.is_empty());
        assert_eq!(bare.default_gw, None);
        assert!(parse_ns_state("[]").is_err());
    }

    #[test]
    fn macs_round_trip() {
        let mac = [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f];
        assert_eq!(format_mac(mac), "0a:1b:2c:3d:4e:5f");
        assert_eq!(parse_mac("0a:1b:2c:3d:4e:5f"), Some(mac));
        assert_eq!(parse_mac("0a:1b:2c:3d:4e"), None);
        assert_eq!(parse_mac("0a:1b:2c:3d:4e:5f:00"), None);
    }
}
