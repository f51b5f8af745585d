//! CPU time of a process (user + system, all its threads) from `/proc/PID/stat`, to show
//! how much of the machine the load generator itself took, and what the server took; and
//! the whole machine's busy time from `/proc/stat`, to show what everything else took.

use anyhow::Context;

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on every Linux ABI we run on).
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds used so far by `pid` (or by this process).
pub fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&stat).with_context(|| format!("parsing {path}"))
}

fn parse_stat(stat: &str) -> anyhow::Result<f64> {
    // The command name (field 2) may contain spaces and parentheses: fields after the
    // last ')' start at field 3 (state); utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').context("no ')'")? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("too few fields")?
            .parse::<u64>()
            .context("not a number")? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / USER_HZ)
}

/// CPU seconds the whole machine has spent busy (every state but idle and iowait; steal
/// counts as busy: that CPU was not ours to use) since boot, summed over CPUs.
pub fn machine_busy_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_proc_stat(&stat).context("parsing /proc/stat")
}

fn parse_proc_stat(stat: &str) -> anyhow::Result<f64> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().context("not a number"))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(ticks.len() >= 8, "too few fields");
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    let busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7];
    Ok(busy as f64 / USER_HZ)
}

/// CPUs this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line() {
        let line = "1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert!((parse_stat(line).unwrap() - 3.0).abs() < 1e-9);
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        let proc_stat = "cpu  100 0 50 1000 7 0 30 20 5 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert!((parse_proc_stat(proc_stat).unwrap() - 2.0).abs() < 1e-9);
        assert!(machine_busy_seconds().unwrap() > 0.0);
    }
}
