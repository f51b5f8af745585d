//! gureum's nftables table: its text (a pure function of [`Ruleset`]) and its atomic
//! replacement with `nft -f -`.
//!
//! The driver only ever touches its own table (`inet gureum` in production, `inet
//! gureum_<prefix>` for other prefixes, see [`crate::names`]). It never flushes the ruleset or
//! touches other tables: the text begins with `table inet T` + `delete table inet T` and then
//! defines the whole table, so one `nft -f` transaction creates it if missing, replaces it if
//! present, and either all of it applies or none does.
//!
//! # Layout
//!
//! ```text
//! table inet gureum
//!   set vpc_bridges  { type ifname }            every VPC bridge of this driver
//!   set vpc_hairpin  { type ifname . ifname }   ("<bridge>" . "<same bridge>") per bridge
//!   chain forward    hook forward, priority filter, policy accept
//!       iifname @vpc_bridges  iifname . oifname != @vpc_hairpin  counter drop
//!       oifname @vpc_bridges  iifname . oifname != @vpc_hairpin  counter drop
//!   chain input      hook input, priority filter, policy accept   (placeholder, empty)
//! ```
//!
//! `forward`: the only forwarded traffic allowed to touch a VPC bridge is traffic that enters
//! and leaves through that same bridge: routing between two subnets of one VPC (the bridge
//! carries every subnet's gateway address and has per-interface IPv4 forwarding on for that),
//! and, when `br_netfilter` is active, plain bridged traffic (which the inet hooks then see with
//! the bridge as both input and output). Everything else is dropped, in both directions: VPCs
//! cannot reach each other, nothing is routed off the host from an instance even if the host
//! has global `ip_forward` on, and nothing from outside is routed in. Non-VPC traffic is not
//! ours and passes (policy accept) untouched.
//!
//! `input`: empty for now. Instances currently reach the host's own addresses (the gateway
//! and anything listening on all addresses) unfiltered.
//!
//! # Extending it (security groups, anti-spoofing, IMDS, public addresses)
//!
//! Add fields to [`Ruleset`] and render more; keep the table generated as a whole and keep the
//! golden file (`tests/golden/ruleset.nft`) in step. Intended additions:
//! - named sets for addresses (`ipv4_addr`, `flags interval`) and per-instance chains named
//!   after the host veth (`inst_<veth>`), reached with a verdict map keyed by interface name
//!   (`iifname vmap @instance_egress`), so one map update plugs or unplugs an instance;
//! - in the inet hooks a bridged packet's interfaces are the bridge, not the port (so are
//!   routed packets' input interfaces), therefore per-port rules (anti-spoofing: the port's MAC
//!   and IP; stateful security groups) belong in a `bridge gureum` table, whose hooks see the
//!   veth ports; that table can mark packets (`meta mark`) by port so that `input` here can tell
//!   which instance is asking IMDS without trusting its claimed address;
//! - public addresses: `nat` chains (prerouting/output dnat to the private IP) in this table.
//!
//! Whole-table replacement resets rule counters; connection tracking is kernel state and
//! survives it, so established connections are not cut by an update.

use std::fmt::Write as _;

use crate::{cmd, NetError};

/// Everything the table's text is generated from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The table name (family `inet`).
    pub table: String,
    /// This driver's VPC bridges; order does not matter (the text is sorted).
    pub bridges: Vec<String>,
}

/// The full `nft -f` text that (re)creates the table atomically.
pub fn render(ruleset: &Ruleset) -> String {
    let table = &ruleset.table;
    let mut bridges: Vec<&str> = ruleset.bridges.iter().map(String::as_str).collect();
    bridges.sort_unstable();
    bridges.dedup();

    let mut out = String::new();
    // `table` creates the table if missing so that `delete` cannot fail; the definition after it
    // recreates it. All in one transaction.
    let _ = writeln!(out, "table inet {table}");
    let _ = writeln!(out, "delete table inet {table}");
    let _ = writeln!(out, "table inet {table} {{");
    let _ = writeln!(
        out,
        "\tcomment \"gureum host networking; generated, replaced as a whole: do not edit\""
    );

    out.push_str("\tset vpc_bridges {\n\t\ttype ifname\n");
    if !bridges.is_empty() {
        let elements: Vec<String> = bridges.iter().map(|b| format!("\"{b}\"")).collect();
        let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(", "));
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

    out.push_str(concat!(
        "\tchain forward {\n",
        "\t\ttype filter hook forward priority filter; policy accept;\n",
        "\t\tiifname @vpc_bridges iifname . oifname != @vpc_hairpin counter drop comment \"leaves its vpc\"\n",
        "\t\toifname @vpc_bridges iifname . oifname != @vpc_hairpin counter drop comment \"enters a vpc from elsewhere\"\n",
        "\t}\n",
        "\tchain input {\n",
        "\t\ttype filter hook input priority filter; policy accept;\n",
        "\t}\n",
        "}\n",
    ));
    out
}

/// Text that removes the table if it exists and does nothing otherwise (one transaction).
pub fn render_delete(table: &str) -> String {
    format!("table inet {table}\ndelete table inet {table}\n")
}

/// Apply a ruleset text in one `nft -f -` transaction.
pub(crate) async fn apply(text: &str) -> Result<(), NetError> {
    tracing::debug!(ruleset = text, "nft -f -");
    cmd::run("nft", &["-f", "-"], Some(text)).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/ruleset.nft");

    fn sample() -> Ruleset {
        Ruleset {
            table: "gureum".into(),
            bridges: vec!["grbr1ca94ea5".into(), "grbr0a1b2c3d".into()],
        }
    }

    /// The rendered table is a reviewed artefact: changing it means updating the golden file
    /// (`UPDATE_GOLDEN=1 cargo test -p gureum-net`) and reviewing the diff.
    #[test]
    fn ruleset_matches_golden_file() {
        let text = render(&sample());
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(GOLDEN, &text).unwrap();
        }
        let golden = std::fs::read_to_string(GOLDEN).unwrap();
        assert_eq!(text, golden, "ruleset differs from {GOLDEN}");
    }

    #[test]
    fn empty_ruleset_has_no_empty_element_lists() {
        let text = render(&Ruleset {
            table: "gureum_gt1".into(),
            bridges: vec![],
        });
        assert!(!text.contains("elements"), "{text}");
        assert!(text.starts_with("table inet gureum_gt1\ndelete table inet gureum_gt1\n"));
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
    fn delete_is_create_then_delete() {
        assert_eq!(
            render_delete("gureum"),
            "table inet gureum\ndelete table inet gureum\n"
        );
    }
}
