//! gureum's two nftables tables: their text (pure functions of the desired state) and its
//! atomic application with `nft -f -`.
//!
//! The driver only ever touches its own tables: `inet gureum` and `bridge gureum` in
//! production, `inet gureum_<prefix>` and `bridge gureum_<prefix>` for other prefixes (see
//! [`crate::names`]). It never flushes the ruleset or touches other tables. Every change is one
//! `nft -f` transaction: all of it applies or none does, and packets see either the old or the
//! new rules, never a mixture.
//!
//! # Who owns what
//!
//! The tables have a *shared part* and *per-instance parts*:
//! - the shared part ([`render`], from [`Ruleset`]: the VPC bridges) is rewritten by
//!   `ensure_vpc`/`remove_vpc`: its base chains and bridge sets are deleted and recreated in
//!   one transaction; the sets and maps whose elements belong to instances
//!   ([`INSTANCE_SETS`]) are only declared (`add` is a no-op on an existing one), so their
//!   elements survive the rewrite;
//! - an instance's part is elements of those sets (its port's name, MAC and IP; its
//!   security-group dispatch; its public address), planned as a diff by the driver (module
//!   `state`) and written with [`render_elements`], plus, once it has security groups, its own
//!   chains and sets, named after its host veth `V` (a pure function of the instance id, see
//!   [`crate::names`]) and replaced as a whole by [`render_firewall`] without touching
//!   anything else.
//!
//! Anti-spoofing is data, not rules per port: attaching an instance adds three elements and
//! runs no chain operation. This matters for speed: on the kernels measured, a transaction that
//! adds elements commits in about 3 ms, one that changes a chain or deletes an element waits for
//! an RCU grace period (about 15 ms).
//!
//! # Layout
//!
//! ```text
//! table inet gureum                                   (IPv4 host side, conntrack, NAT)
//!   set  vpc_bridges        ifname                    every VPC bridge of this driver
//!   set  vpc_hairpin        ifname . ifname           (bridge . same bridge)
//!   set  sg_ports           ifname                    instances with security groups
//!   map  sg_ingress         ifname . ipv4_addr : verdict   (bridge . private ip) : jump in_V
//!   map  sg_egress          ifname . ipv4_addr : verdict   (bridge . private ip) : jump out_V
//!   map  public_to_private  ipv4_addr : ipv4_addr     DNAT
//!   map  private_to_public  ipv4_addr : ipv4_addr     hairpin SNAT (routable publics only)
//!   map  public_by_port     ifname : ipv4_addr        V : public (bookkeeping)
//!   chain guard      prerouting raw       a guest sending to 127/8 (route_localnet is on)
//!   chain nat_pre    prerouting dstnat    dnat to the private ip (not for 127/8 publics)
//!   chain egress     prerouting filter    from a bridge: established | IMDS | vmap @sg_egress
//!   chain input      input filter         from a bridge: established | IMDS | drop
//!   chain forward    forward filter       confinement of each VPC to its bridge
//!   chain nat_out    output -100          dnat for this host's own connections
//!   chain output     output filter        no ICMP redirects onto a bridge
//!   chain nat_post   postrouting srcnat   masquerade 127/8 sources; hairpin SNAT
//!   chain ingress    postrouting 101      to a bridge: established | vmap @sg_ingress
//!   chain in_V, out_V                     an instance's security groups (four set lookups)
//!   set  in_V_l4, in_V_icmp, in_V_proto, in_V_all (and out_V_… alike)
//!
//! table bridge gureum                                 (per bridge port: layer 2)
//!   map  ports      ifname : ifname                   V : its bridge
//!   set  port_mac   ifname . ether_addr               V . its MAC
//!   set  port_ip    ifname . ipv4_addr                V . its IP
//!   chain prerouting   prerouting filter  from a port: its MAC, its IP, its ARP sender; no
//!                                         DHCP server replies, no IPv6 (router
//!                                         advertisements included), only IPv4 and ARP
//!   chain postrouting  postrouting filter to a port: IPv4 only if addressed to its IP
//! ```
//!
//! # Where each check sits, and why there
//!
//! Security groups need connection tracking. In the `bridge` family that needs
//! `nf_conntrack_bridge` (`CONFIG_NF_CONNTRACK_BRIDGE`); kernels without it refuse every `ct`
//! expression in a bridge table (EPROTO; the 6.18 kernel this was built on is one). So
//! the bridges run IPv4 through the host's `inet` hooks with **br_netfilter**, switched on *per
//! bridge* (`ip link … type bridge nf_call_iptables 1`, set by `ensure_vpc`), so nothing depends
//! on the host-wide `net.bridge.bridge-nf-call-iptables`, whatever its value. br_netfilter also
//! gives one conntrack table for bridged, routed and NATed flows, which the public addresses
//! need (a DNAT to an instance on the same bridge is bridged, and its replies are de-NATed).
//! The price: in the `inet` hooks a bridged packet's interface is the bridge, not the port. So:
//! - the `bridge` table pins each port to its instance, statelessly (no conntrack needed):
//!   frames from port V carry V's MAC and IP, and IPv4 frames leaving through port V are
//!   addressed to V's IP (its hooks see every bridge of the host; a frame of a port that is not
//!   ours leaves after one set lookup);
//! - hence in the `inet` hooks `(bridge, ip saddr)` identifies the sending instance and
//!   `(bridge, ip daddr)` the receiving one, and the security groups are dispatched with a
//!   verdict map on that key: one lookup per packet, not a scan of instances;
//! - egress is checked in `prerouting` (every packet from an instance passes it: bridged,
//!   routed, or to the host), ingress in `postrouting` after source NAT (every packet to an
//!   instance passes it: bridged, routed, DNATed, or from the host itself), each after
//!   `ct state established,related accept`, so replies always pass both ways;
//! - egress rules match the destination the instance used (`ct original ip daddr`, before
//!   DNAT); ingress rules match the source the instance will see (after SNAT).
//!
//! # Public addresses
//!
//! `public_to_private` is a DNAT map used in `nat_pre` (traffic arriving from anywhere, including
//! other instances: hairpin) and in `nat_out` (this host's own connections). Loopback publics
//! (127.100.0.0/16 by default) are only DNATed for this host's own traffic (`nat_pre` skips
//! 127/8, so a neighbour on the LAN cannot reach instances by sending to 127.100.x.y); their
//! connections leave with a 127/8 source, so `nat_post` masquerades them to the gateway address
//! and `ensure_vpc` sets `route_localnet` on the bridge (the kernel otherwise refuses to route
//! a 127/8 source out of a non-loopback interface after the DNAT). A guest cannot reach a
//! loopback public (127/8 is its own loopback).
//!
//! Routable publics are the same rules with the address configured on no interface. A
//! deployment routes them to this host (a route on the upstream router: `<range> via <host's
//! uplink address>`) and lets the uplink forward (`net.ipv4.conf.<uplink>.forwarding=1`; the
//! driver never touches sysctls of interfaces it does not own). If the range is on the uplink's
//! own subnet instead, add each address as a /32 to `lo` so the host answers ARP for it; `nat_pre`
//! runs before the local-delivery decision, so the DNAT still wins. `forward` lets through
//! exactly the connections whose original destination is one of these publics (and their
//! replies). An instance reaching another instance's routable public is SNATed to its own
//! public address if it has a routable one (as in EC2; otherwise its private address stays).
//!
//! Deviations from EC2: an instance cannot reach its own public address (the bridge does not
//! send a frame back out of the port it came from); an instance without a routable public that
//! reaches another one's public keeps its private source address, so the destination's group
//! references match it (in EC2 that traffic comes from outside the VPC); removing a mapping
//! leaves connections established through it to conntrack's timeouts.
//!
//! # Host services
//!
//! `input` drops everything a guest sends to any address of this host (the gateway, other
//! bridges, the uplink, 127.0.0.1) except TCP to the instance metadata address
//! 169.254.169.254:80 (on every VPC bridge; see [`crate::METADATA_ADDRESS`]) and replies to
//! connections the host opened. The metadata service can trust the source address of a
//! request: anti-spoofing pins it to the port it came from.
//!
//! Replacing a chain resets its counters; connection tracking is kernel state and survives
//! every update, so established connections are not cut by one.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::firewall::{Compiled, Span};
use crate::{cmd, NetError};

/// Everything the shared part of the tables is generated from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The tables' name (the same for the `inet` and the `bridge` table).
    pub table: String,
    /// This driver's VPC bridges; order does not matter (the text is sorted).
    pub bridges: Vec<String>,
}

/// The instance metadata address as nft text.
const IMDS: &str = "169.254.169.254";

/// Chains of the shared part, each deleted and recreated by [`render`].
const INET_BASE_CHAINS: [&str; 9] = [
    "guard", "nat_pre", "egress", "input", "forward", "nat_out", "output", "nat_post", "ingress",
];
const BRIDGE_BASE_CHAINS: [&str; 2] = ["prerouting", "postrouting"];
/// Sets of the shared part (deleted and recreated: only base chains refer to them).
const INET_BASE_SETS: [(&str, &str); 2] = [
    ("vpc_bridges", "ifname"),
    ("vpc_hairpin", "ifname . ifname"),
];

/// Per-instance sets: (suffix, type).
const SG_SETS: [(&str, &str); 4] = [
    ("l4", "ipv4_addr . inet_proto . inet_service"),
    ("icmp", "ipv4_addr . icmp_type . icmp_code"),
    ("proto", "ipv4_addr . inet_proto"),
    ("all", "ipv4_addr"),
];

/// The chain with an instance's ingress rules.
pub fn chain_in(veth: &str) -> String {
    format!("in_{veth}")
}

/// The chain with an instance's egress rules.
pub fn chain_out(veth: &str) -> String {
    format!("out_{veth}")
}

fn set_name(direction: &str, veth: &str, suffix: &str) -> String {
    format!("{direction}_{veth}_{suffix}")
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shared part of both tables, as one transaction: creates the tables if missing, replaces
/// the base chains and the bridge sets, keeps instances' chains, sets and map elements.
pub fn render(ruleset: &Ruleset) -> String {
    let table = &ruleset.table;
    let mut bridges: Vec<&str> = ruleset.bridges.iter().map(String::as_str).collect();
    bridges.sort_unstable();
    bridges.dedup();

    let mut out = String::new();
    out.push_str("# gureum host networking: the shared part. Generated; do not edit.\n");
    declare(&mut out, table);
    // `add` makes each deletion valid whether or not the object exists; the chains go before
    // the sets they refer to.
    for chain in INET_BASE_CHAINS {
        let _ = writeln!(out, "add chain inet {table} {chain}");
        let _ = writeln!(out, "delete chain inet {table} {chain}");
    }
    for (set, kind) in INET_BASE_SETS {
        let _ = writeln!(out, "add set inet {table} {set} {{ type {kind}; }}");
        let _ = writeln!(out, "delete set inet {table} {set}");
    }
    let _ = writeln!(out, "table inet {table} {{");
    out.push_str("\tset vpc_bridges {\n\t\ttype ifname\n");
    if !bridges.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", quoted(&bridges));
    }
    out.push_str("\t}\n");
    out.push_str("\tset vpc_hairpin {\n\t\ttype ifname . ifname\n");
    if !bridges.is_empty() {
        let elements: Vec<String> = bridges
            .iter()
            .map(|b| format!("\"{b}\" . \"{b}\""))
            .collect();
        let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(", "));
    }
    out.push_str("\t}\n");
    let _ = write!(
        out,
        concat!(
            "\tchain guard {{\n",
            "\t\ttype filter hook prerouting priority raw; policy accept;\n",
            "\t\tiifname @vpc_bridges ip daddr 127.0.0.0/8 counter drop comment \"a guest sending to loopback\"\n",
            "\t}}\n",
            "\tchain nat_pre {{\n",
            "\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
            "\t\tip daddr 127.0.0.0/8 return comment \"loopback publics are for this host only\"\n",
            "\t\tdnat ip to ip daddr map @public_to_private\n",
            "\t}}\n",
            "\tchain egress {{\n",
            "\t\ttype filter hook prerouting priority filter; policy accept;\n",
            "\t\tiifname != @vpc_bridges accept\n",
            "\t\tct state established,related accept\n",
            "\t\tip daddr {imds} tcp dport 80 accept comment \"instance metadata\"\n",
            "\t\tiifname . ip saddr vmap @sg_egress\n",
            "\t}}\n",
            "\tchain input {{\n",
            "\t\ttype filter hook input priority filter; policy accept;\n",
            "\t\tiifname != @vpc_bridges accept\n",
            "\t\tct state established,related accept\n",
            "\t\tip daddr {imds} tcp dport 80 accept comment \"instance metadata\"\n",
            "\t\tcounter drop comment \"a guest reaching a host service\"\n",
            "\t}}\n",
            "\tchain forward {{\n",
            "\t\ttype filter hook forward priority filter; policy accept;\n",
            "\t\tiifname . oifname @vpc_hairpin accept comment \"within its vpc\"\n",
            "\t\tct status dnat ct original ip daddr @public_to_private accept comment \"to a public address\"\n",
            "\t\tiifname @vpc_bridges counter drop comment \"leaves its vpc\"\n",
            "\t\toifname @vpc_bridges counter drop comment \"enters a vpc from elsewhere\"\n",
            "\t}}\n",
            "\tchain nat_out {{\n",
            "\t\ttype nat hook output priority -100; policy accept;\n",
            "\t\tdnat ip to ip daddr map @public_to_private\n",
            "\t}}\n",
            "\tchain output {{\n",
            "\t\ttype filter hook output priority filter; policy accept;\n",
            "\t\toifname @vpc_bridges icmp type redirect counter drop comment \"the host is the only router\"\n",
            "\t}}\n",
            "\tchain nat_post {{\n",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
            "\t\toifname @vpc_bridges ip saddr 127.0.0.0/8 masquerade comment \"this host through a loopback public\"\n",
            "\t\toifname @vpc_bridges ct status dnat ip saddr @private_to_public snat ip to ip saddr map @private_to_public comment \"hairpin from an instance with a routable public\"\n",
            "\t}}\n",
            "\tchain ingress {{\n",
            "\t\ttype filter hook postrouting priority 101; policy accept;\n",
            "\t\toifname != @vpc_bridges accept\n",
            "\t\tct state established,related accept\n",
            "\t\toifname . ip daddr vmap @sg_ingress\n",
            "\t}}\n",
            "}}\n",
        ),
        imds = IMDS
    );

    for chain in BRIDGE_BASE_CHAINS {
        let _ = writeln!(out, "add chain bridge {table} {chain}");
        let _ = writeln!(out, "delete chain bridge {table} {chain}");
    }
    let _ = writeln!(out, "table bridge {table} {{");
    out.push_str(concat!(
        "\tchain prerouting {\n",
        "\t\ttype filter hook prerouting priority filter; policy accept;\n",
        "\t\tiifname != @ports accept\n",
        "\t\tiifname . ether saddr != @port_mac counter drop comment \"spoofed source mac\"\n",
        "\t\tarp hlen != 6 counter drop comment \"malformed arp\"\n",
        "\t\tarp plen != 4 counter drop comment \"malformed arp\"\n",
        "\t\tarp ptype != ip counter drop comment \"malformed arp\"\n",
        "\t\tiifname . arp saddr ether != @port_mac counter drop comment \"spoofed arp sender mac\"\n",
        "\t\tarp saddr ip 0.0.0.0 arp operation != request counter drop comment \"spoofed arp sender ip\"\n",
        "\t\tarp saddr ip != 0.0.0.0 iifname . arp saddr ip != @port_ip counter drop comment \"spoofed arp sender ip\"\n",
        "\t\tether type arp accept\n",
        "\t\tiifname . ip saddr != @port_ip counter drop comment \"spoofed source ip\"\n",
        "\t\tudp sport 67 counter drop comment \"dhcp server\"\n",
        "\t\tether type ip accept\n",
        "\t\tether type ip6 counter drop comment \"ipv6, router advertisements included\"\n",
        "\t\tcounter drop comment \"neither ipv4 nor arp\"\n",
        "\t}\n",
        "\tchain postrouting {\n",
        "\t\ttype filter hook postrouting priority filter; policy accept;\n",
        "\t\toifname @ports oifname . ip daddr != @port_ip counter drop comment \"not addressed to this instance\"\n",
        "\t}\n",
        "}\n",
    ));
    out
}

/// Text that removes both tables if they exist and does nothing otherwise (one transaction).
pub fn render_delete(table: &str) -> String {
    format!(
        "add table inet {table}\ndelete table inet {table}\nadd table bridge {table}\ndelete table bridge {table}\n"
    )
}

/// The two tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Inet,
    Bridge,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Bridge => "bridge",
        }
    }
}

/// A set or map whose elements belong to instances: `(family, name, key types, value type)`.
/// Elements are handled as nft text (`"veth" . 1.2.3.4`, `jump in_veth`), exactly as
/// the driver (module `state`) renders them from what `nft -j` lists, so that comparing is comparing
/// strings.
pub type InstanceSet = (
    Family,
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
);

/// Every instance-owned set and map, in the order their changes are written.
pub const INSTANCE_SETS: [InstanceSet; 9] = [
    (Family::Bridge, "ports", &["ifname"], Some("ifname")),
    (Family::Bridge, "port_mac", &["ifname", "ether_addr"], None),
    (Family::Bridge, "port_ip", &["ifname", "ipv4_addr"], None),
    (Family::Inet, "sg_ports", &["ifname"], None),
    (
        Family::Inet,
        "sg_ingress",
        &["ifname", "ipv4_addr"],
        Some("verdict"),
    ),
    (
        Family::Inet,
        "sg_egress",
        &["ifname", "ipv4_addr"],
        Some("verdict"),
    ),
    (
        Family::Inet,
        "public_to_private",
        &["ipv4_addr"],
        Some("ipv4_addr"),
    ),
    (
        Family::Inet,
        "private_to_public",
        &["ipv4_addr"],
        Some("ipv4_addr"),
    ),
    (
        Family::Inet,
        "public_by_port",
        &["ifname"],
        Some("ipv4_addr"),
    ),
];

/// One element of an instance-owned set or map (see [`INSTANCE_SETS`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Element {
    pub family: Family,
    pub set: &'static str,
    pub key: String,
    pub value: Option<String>,
}

fn element_text(e: &Element) -> String {
    match &e.value {
        Some(value) => format!("{} : {value}", e.key),
        None => e.key.clone(),
    }
}

/// `add table` and `add set`/`add map` for every instance-owned set of both tables, so that a
/// per-instance transaction can run before or after the shared part exists (`add` leaves an
/// existing one and its elements alone).
pub fn declare(out: &mut String, table: &str) {
    for family in [Family::Bridge, Family::Inet] {
        let _ = writeln!(out, "add table {} {table}", family.as_str());
    }
    for (family, set, keys, value) in INSTANCE_SETS {
        let kind = keys.join(" . ");
        match value {
            Some(value) => {
                let _ = writeln!(
                    out,
                    "add map {} {table} {set} {{ type {kind} : {value}; }}",
                    family.as_str()
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "add set {} {table} {set} {{ type {kind}; }}",
                    family.as_str()
                );
            }
        }
    }
}

/// `delete element` lines, then `add element` lines, one line per set.
pub fn render_elements(out: &mut String, table: &str, delete: &[Element], add: &[Element]) {
    for (verb, elements) in [("delete", delete), ("add", add)] {
        for (family, set, _, _) in INSTANCE_SETS {
            let texts: Vec<String> = elements
                .iter()
                .filter(|e| e.family == family && e.set == set)
                .map(|e| match verb {
                    // A map element is deleted by its key.
                    "delete" => e.key.clone(),
                    _ => element_text(e),
                })
                .collect();
            if !texts.is_empty() {
                let _ = writeln!(
                    out,
                    "{verb} element {} {table} {set} {{ {} }}",
                    family.as_str(),
                    texts.join(", ")
                );
            }
        }
    }
}

/// `add chain` for the instance's two security-group chains (the comment names the instance,
/// for an operator reading `nft list`).
fn declare_sg_chains(out: &mut String, table: &str, instance_id: &str, veth: &str) {
    for chain in [chain_in(veth), chain_out(veth)] {
        let _ = writeln!(
            out,
            "add chain inet {table} {chain} {{ comment \"{instance_id}\"; }}"
        );
    }
}

fn addr_text((lo, hi): Span) -> String {
    let (a, b) = (Ipv4Addr::from(lo), Ipv4Addr::from(hi));
    if lo == hi {
        return a.to_string();
    }
    let size = u64::from(hi) - u64::from(lo) + 1;
    if size.is_power_of_two() && u64::from(lo) % size == 0 {
        return format!("{a}/{}", 32 - size.trailing_zeros());
    }
    format!("{a}-{b}")
}

fn num_text((lo, hi): Span) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    }
}

fn proto_text((lo, hi): Span) -> String {
    match (lo, hi) {
        (6, 6) => "tcp".to_string(),
        (17, 17) => "udp".to_string(),
        other => num_text(other),
    }
}

/// Set elements of one direction, one per line.
fn elements(compiled: &Compiled) -> [Vec<String>; 4] {
    let l4 = compiled
        .l4
        .iter()
        .map(|[a, p, port]| {
            format!(
                "{} . {} . {}",
                addr_text(*a),
                proto_text(*p),
                num_text(*port)
            )
        })
        .collect();
    let icmp = compiled
        .icmp
        .iter()
        .map(|[a, t, c]| format!("{} . {} . {}", addr_text(*a), num_text(*t), num_text(*c)))
        .collect();
    let proto = compiled
        .proto
        .iter()
        .map(|[a, p]| format!("{} . {}", addr_text(*a), proto_text(*p)))
        .collect();
    let all = compiled.all.iter().map(|[a]| addr_text(*a)).collect();
    [l4, icmp, proto, all]
}

/// An instance's security groups: its two chains and eight sets, flushed and refilled. Nothing
/// else is touched; the instance's dispatch elements (which the driver adds in the same
/// transaction when the instance is attached) jump to these chains, so the change is live for
/// the next new connection.
pub fn render_firewall(
    table: &str,
    instance_id: &str,
    veth: &str,
    ingress: &Compiled,
    egress: &Compiled,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "add table inet {table}");
    declare_sg_chains(&mut out, table, instance_id, veth);
    let (cin, cout) = (chain_in(veth), chain_out(veth));
    let _ = writeln!(out, "flush chain inet {table} {cin}");
    let _ = writeln!(out, "flush chain inet {table} {cout}");
    for (direction, compiled) in [("in", ingress), ("out", egress)] {
        for ((suffix, kind), elements) in SG_SETS.iter().zip(elements(compiled)) {
            let set = set_name(direction, veth, suffix);
            let _ = writeln!(
                out,
                "add set inet {table} {set} {{ type {kind}; flags interval; }}"
            );
            let _ = writeln!(out, "flush set inet {table} {set}");
            if !elements.is_empty() {
                let _ = writeln!(
                    out,
                    "add element inet {table} {set} {{\n\t{}\n}}",
                    elements.join(",\n\t")
                );
            }
        }
    }
    let set = |direction: &str, suffix: &str| set_name(direction, veth, suffix);
    let _ = write!(
        out,
        concat!(
            "table inet {table} {{\n",
            "\tchain {cin} {{\n",
            "\t\tip saddr @{in_all} accept\n",
            "\t\tip saddr . meta l4proto . th dport @{in_l4} accept\n",
            "\t\tip saddr . icmp type . icmp code @{in_icmp} accept\n",
            "\t\tip saddr . meta l4proto @{in_proto} accept\n",
            "\t\tcounter drop comment \"not allowed by its security groups (ingress)\"\n",
            "\t}}\n",
            "\tchain {cout} {{\n",
            "\t\tct original ip daddr @{out_all} accept\n",
            "\t\tct original ip daddr . meta l4proto . th dport @{out_l4} accept\n",
            "\t\tct original ip daddr . icmp type . icmp code @{out_icmp} accept\n",
            "\t\tct original ip daddr . meta l4proto @{out_proto} accept\n",
            "\t\tcounter drop comment \"not allowed by its security groups (egress)\"\n",
            "\t}}\n",
            "}}\n",
        ),
        table = table,
        cin = cin,
        cout = cout,
        in_all = set("in", "all"),
        in_l4 = set("in", "l4"),
        in_icmp = set("in", "icmp"),
        in_proto = set("in", "proto"),
        out_all = set("out", "all"),
        out_l4 = set("out", "l4"),
        out_icmp = set("out", "icmp"),
        out_proto = set("out", "proto"),
    );
    out
}

/// Remove an instance's security-group chains and sets (after its dispatch elements, which
/// jump to them, have been deleted earlier in the same transaction). Create-then-delete makes
/// each step valid whether or not the object exists; the chains go before the sets they use.
pub fn render_remove_firewall(table: &str, veth: &str) -> String {
    let mut out = String::new();
    for chain in [chain_in(veth), chain_out(veth)] {
        let _ = writeln!(out, "add chain inet {table} {chain}");
        let _ = writeln!(out, "delete chain inet {table} {chain}");
    }
    for direction in ["in", "out"] {
        for (suffix, kind) in SG_SETS {
            let set = set_name(direction, veth, suffix);
            let _ = writeln!(
                out,
                "add set inet {table} {set} {{ type {kind}; flags interval; }}"
            );
            let _ = writeln!(out, "delete set inet {table} {set}");
        }
    }
    out
}

/// One instance's public address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub public: Ipv4Addr,
    pub private: Ipv4Addr,
}

impl Mapping {
    /// Whether the public is routable (not loopback): only those are used as the source of
    /// hairpin traffic, a guest would take a 127/8 source for its own loopback.
    pub fn routable(&self) -> bool {
        !self.public.is_loopback()
    }
}

/// Apply a text in one `nft -f -` transaction.
pub(crate) async fn apply(text: &str) -> Result<(), NetError> {
    tracing::debug!(ruleset = text, "nft -f -");
    cmd::run("nft", &["-f", "-"], Some(text)).await.map(|_| ())
}

/// JSON elements of a set (`(key, None)`) or map (`(key, Some(value))`).
pub(crate) type Elements = Vec<(serde_json::Value, Option<serde_json::Value>)>;

/// The elements of one set or map, as `nft -j list set|map` prints them; `None` if the table
/// or the set does not exist.
pub(crate) async fn list_elements(
    family: Family,
    table: &str,
    set: &str,
    is_map: bool,
) -> Result<Option<Elements>, NetError> {
    let kind = if is_map { "map" } else { "set" };
    let args = ["-j", "list", kind, family.as_str(), table, set];
    match cmd::run("nft", &args, None).await {
        Ok(json) => parse_elements(&json).map(Some),
        Err(NetError::Command { stderr, .. }) if stderr.contains("No such file or directory") => {
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

pub(crate) fn parse_elements(json: &str) -> Result<Elements, NetError> {
    let what = "nft -j list set";
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| NetError::parse(what, e.to_string()))?;
    let mut out = Vec::new();
    for item in value["nftables"].as_array().into_iter().flatten() {
        let (Some(body), is_map) = (
            item.get("map").or_else(|| item.get("set")),
            item.get("map").is_some(),
        ) else {
            continue;
        };
        for elem in body
            .get("elem")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
        {
            if is_map {
                match elem.as_array().map(Vec::as_slice) {
                    Some([key, value]) => out.push((key.clone(), Some(value.clone()))),
                    _ => return Err(NetError::parse(what, format!("unexpected element {elem}"))),
                }
            } else {
                out.push((elem.clone(), None));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::firewall::{compile, Peer, Proto, Rule, ICMP_ANY_CODE};
    use ipnet::Ipv4Net;

    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/");

    fn sample() -> Ruleset {
        Ruleset {
            table: "gureum".into(),
            bridges: vec!["grbr1ca94ea5".into(), "grbr0a1b2c3d".into()],
        }
    }

    /// Compare with a reviewed golden file; `UPDATE_GOLDEN=1 cargo test -p gureum-net`
    /// rewrites them (then review the diff).
    pub(crate) fn golden(name: &str, text: &str) {
        let path = format!("{GOLDEN}{name}");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, golden, "{name} differs from {path}");
    }

    #[test]
    fn shared_part_matches_golden_file() {
        golden("ruleset.nft", &render(&sample()));
    }

    #[test]
    fn firewall_matches_golden_file() {
        let members = Peer::Group(vec![
            Ipv4Addr::new(172, 31, 0, 7),
            Ipv4Addr::new(172, 31, 0, 8),
        ]);
        let ingress = [
            Rule::tcp(22, 22, Peer::ANYWHERE),
            Rule::tcp(8080, 8080, Peer::Cidr("10.0.0.0/8".parse().unwrap())),
            Rule::tcp(8000, 8100, members.clone()),
            Rule::udp(53, 53, Peer::Cidr("172.31.0.0/16".parse().unwrap())),
            Rule::icmp(Peer::ANYWHERE),
            Rule::all(members),
        ];
        let egress = [Rule::all(Peer::ANYWHERE)];
        let mut text = render_firewall(
            "gureum",
            "i-0123456789abcdef0",
            "gr852a573093",
            &compile(&ingress),
            &compile(&egress),
        );
        text.push_str("# removed\n");
        text.push_str(&render_remove_firewall("gureum", "gr852a573093"));
        golden("firewall.nft", &text);
    }

    /// ICMP, ICMPv6 and protocol-number rules each admit only their own protocol: none of
    /// them puts anything in the sets TCP is matched against (`_l4`, `_all`).
    #[test]
    fn protocol_rules_match_golden_file() {
        let web: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        let ingress = [
            Rule {
                proto: Proto::Icmp,
                ports: Some((8, ICMP_ANY_CODE)),
                peer: Peer::ANYWHERE,
            },
            Rule {
                proto: Proto::Icmpv6,
                ports: None,
                peer: Peer::ANYWHERE,
            },
            Rule {
                proto: Proto::Icmpv6,
                ports: Some((128, 0)),
                peer: Peer::Cidr(web),
            },
            Rule {
                proto: Proto::Number(47),
                ports: None,
                peer: Peer::Cidr(web),
            },
            Rule {
                proto: Proto::Number(132),
                ports: None,
                peer: Peer::ANYWHERE,
            },
        ];
        let egress = [Rule {
            proto: Proto::Number(50),
            ports: None,
            peer: Peer::Cidr(web),
        }];
        let (cin, cout) = (compile(&ingress), compile(&egress));
        assert!(cin.l4.is_empty() && cin.all.is_empty(), "{cin:?}");
        assert!(cout.l4.is_empty() && cout.all.is_empty(), "{cout:?}");
        // ICMPv6 alone admits nothing on an IPv4-only network.
        assert!(compile(&ingress[1..3]).is_empty());
        let text = render_firewall("gureum", "i-0123456789abcdef0", "gr852a573093", &cin, &cout);
        golden("firewall-protocols.nft", &text);
    }

    #[test]
    fn empty_ruleset_has_no_empty_element_lists() {
        let text = render(&Ruleset {
            table: "gureum_gt1".into(),
            bridges: vec![],
        });
        assert!(!text.contains("elements"), "{text}");
        assert!(text.contains("add table inet gureum_gt1\n"));
        assert!(text.contains("add table bridge gureum_gt1\n"));
        let fw = render_firewall("t", "i-1", "v", &Compiled::default(), &Compiled::default());
        assert!(!fw.contains("add element"), "{fw}");
        let mut out = String::new();
        render_elements(&mut out, "t", &[], &[]);
        assert!(out.is_empty());
    }

    #[test]
    fn elements_are_grouped_per_set_and_maps_deleted_by_key() {
        let e = |set, key: &str, value: Option<&str>| Element {
            family: if set == "ports" {
                Family::Bridge
            } else {
                Family::Inet
            },
            set,
            key: key.into(),
            value: value.map(str::to_string),
        };
        let mut out = String::new();
        render_elements(
            &mut out,
            "t",
            &[e("public_to_private", "127.100.0.4", Some("172.31.0.5"))],
            &[
                e("ports", "\"v1\"", Some("\"br1\"")),
                e("ports", "\"v2\"", Some("\"br1\"")),
                e("sg_ports", "\"v1\"", None),
            ],
        );
        assert_eq!(
            out,
            concat!(
                "delete element inet t public_to_private { 127.100.0.4 }\n",
                "add element bridge t ports { \"v1\" : \"br1\", \"v2\" : \"br1\" }\n",
                "add element inet t sg_ports { \"v1\" }\n",
            )
        );
    }

    #[test]
    fn bridges_are_sorted_and_deduplicated() {
        let a = render(&Ruleset {
            table: "t".into(),
            bridges: vec!["b".into(), "a".into(), "b".into()],
        });
        assert!(a.contains("elements = { \"a\", \"b\" }"), "{a}");
        assert!(
            a.contains("elements = { \"a\" . \"a\", \"b\" . \"b\" }"),
            "{a}"
        );
    }

    #[test]
    fn delete_is_create_then_delete_for_both_tables() {
        assert_eq!(
            render_delete("gureum"),
            "add table inet gureum\ndelete table inet gureum\nadd table bridge gureum\ndelete table bridge gureum\n"
        );
    }

    #[test]
    fn addresses_render_as_prefixes_where_they_can() {
        let span =
            |a: [u8; 4], b: [u8; 4]| (u32::from(Ipv4Addr::from(a)), u32::from(Ipv4Addr::from(b)));
        assert_eq!(
            addr_text(span([0, 0, 0, 0], [255, 255, 255, 255])),
            "0.0.0.0/0"
        );
        assert_eq!(
            addr_text(span([10, 0, 0, 0], [10, 255, 255, 255])),
            "10.0.0.0/8"
        );
        assert_eq!(addr_text(span([10, 0, 0, 1], [10, 0, 0, 1])), "10.0.0.1");
        assert_eq!(
            addr_text(span([10, 0, 0, 1], [10, 0, 0, 2])),
            "10.0.0.1-10.0.0.2"
        );
        assert_eq!(addr_text(span([10, 0, 0, 2], [10, 0, 0, 3])), "10.0.0.2/31");
        assert_eq!(proto_text((6, 6)), "tcp");
        assert_eq!(num_text((80, 90)), "80-90");
    }

    #[test]
    fn set_elements_parse() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"map": {"family": "inet", "name": "m", "table": "t", "type": ["ifname", "ipv4_addr"], "handle": 1, "map": "verdict", "elem": [[{"concat": ["br1", "1.2.3.4"]}, {"jump": {"target": "in_v1"}}]]}}]}"#;
        let elems = parse_elements(json).unwrap();
        assert_eq!(elems.len(), 1);
        assert_eq!(elems[0].0["concat"][1], "1.2.3.4");
        assert_eq!(elems[0].1.as_ref().unwrap()["jump"]["target"], "in_v1");
        let set = r#"{"nftables": [{"metainfo": {}}, {"set": {"name": "s", "type": ["ifname", "ether_addr"], "elem": [{"concat": ["v1", "0a:00:00:00:00:01"]}]}}]}"#;
        let elems = parse_elements(set).unwrap();
        assert_eq!(elems[0].0["concat"][0], "v1");
        assert!(elems[0].1.is_none());
        let empty = r#"{"nftables": [{"metainfo": {}}, {"map": {"name": "m", "elem": []}}]}"#;
        assert!(parse_elements(empty).unwrap().is_empty());
        let none = r#"{"nftables": [{"metainfo": {}}, {"set": {"name": "m"}}]}"#;
        assert!(parse_elements(none).unwrap().is_empty());
    }
}
