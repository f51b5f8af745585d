//! The OCI `config.json` for one instance: what makes a runc container an EC2 instance.
//! Pure: everything host-specific (cgroup mode, lxcfs, CPUs, capability bounding set) comes in
//! through [`HostFacts`], so the output is deterministic and unit-tested.
//!
//! Deliberate choices, recorded here because they are security decisions:
//!
//! * **No user namespace.** The guest's root is the host's root, confined by namespaces, the
//!   capability set below, seccomp, masked/read-only proc paths and the device cgroup: the
//!   security level of a Docker container (without `CAP_SYS_ADMIN`) or, with it, of a
//!   privileged LXC or `systemd-nspawn` container; not of a VM. With `CAP_SYS_ADMIN` a guest
//!   root can mount a fresh procfs and write host sysctls (core_pattern: host root), or remount
//!   its cgroup files and raise its own limits; hence it is off by default (below).
//!   Only a user namespace with a *shifted* map (guest 0 = host 100000) closes that, and it is
//!   not feasible on this stack today, for three independent reasons:
//!   1. The AMI rootfs is one read-only tree shared by every instance, owned by host uid 0; a
//!      shifted guest would see it all as `nobody` unless the overlay's lower layer is an
//!      idmapped mount (`mount_setattr(MOUNT_ATTR_IDMAP)`). runc 1.1.5 cannot idmap the rootfs
//!      (1.2 idmaps bind mounts only), util-linux 2.38's `mount` lacks `X-mount.idmap` (2.39),
//!      neither `nix` nor `rustix` wraps `mount_setattr`, and the workspace denies the `unsafe`
//!      a raw syscall needs. Chowning a per-instance copy breaks the 20 ms `prepare` budget.
//!      (The kernel would allow it: 6.x overlayfs takes idmapped layers.)
//!   2. The network namespace comes from the network driver, created in the host user
//!      namespace. A user namespace can mount sysfs only over a network namespace it owns
//!      (runc fails with EPERM, seen here), and the guest root could not configure its own
//!      interfaces, routes, sysctls or firewall.
//!   3. The v1 `name=systemd` (and hybrid `unified`) cgroup directories would have to be
//!      chowned to the shifted root for the guest's systemd.
//!
//!   Tried and rejected: an *identity* map (0..65536 → 0..65536) boots systemd fine here with
//!   a fresh network namespace, but the guest root is still GLOBAL_ROOT_UID, so a procfs it
//!   mounts itself lets it write host sysctls (verified), and mounts runc makes inside the
//!   namespace are not locked: little gained for the netns restriction it brings.
//! * **Capabilities**: systemd-nspawn's default set (what a full systemd userland is tested
//!   against), plus `CAP_NET_ADMIN` (the guest owns its network namespace: `ip`, nftables,
//!   sysctls under /proc/sys/net) and `CAP_IPC_LOCK` (mlock within the memory limit), minus
//!   `CAP_AUDIT_CONTROL` (the audit subsystem is not namespaced) and, by default,
//!   `CAP_SYS_ADMIN`. Without `CAP_SYS_ADMIN` the guest's systemd still boots to `running`,
//!   sshd, sudo, apt and user services work (verified), but systemd silently skips unit
//!   sandboxing it cannot set up (PrivateTmp=, ProtectSystem=, PrivateNetwork= ... are not
//!   applied inside the guest), the guest cannot mount file systems, create namespaces
//!   (`unshare`, `ip netns`, Docker) other than through a user namespace of its own (`unshare
//!   -U` works; inside it procfs cannot be mounted, runc's masked paths making /proc not fully
//!   visible, nor /proc/sys remounted rw: verified by tests/e2e/test_isolation.py) or change its
//!   hostname at run time (the hostname comes from the spec at each start, like EC2's from its
//!   metadata). Keeping the host safe from a
//!   guest's root is worth more than guest-internal sandboxing; `DriverOptions::guest_sys_admin`
//!   restores it for trusted guests. Always dropped: SYS_MODULE, SYS_RAWIO, SYS_TIME, SYSLOG,
//!   SYS_PACCT, MAC_ADMIN, MAC_OVERRIDE, AUDIT_CONTROL, AUDIT_READ, BPF, PERFMON, WAKE_ALARM,
//!   BLOCK_SUSPEND, CHECKPOINT_RESTORE. The set is intersected with the host's bounding set (a
//!   host may lack e.g. CAP_SYS_RESOURCE, as this one does, and runc refuses a capability it
//!   cannot grant).
//! * **Seccomp**: allow by default, EPERM for a deny-list of syscalls that reach host-global
//!   state (modules, kexec, swap, clock, kernel log, keyrings, bpf, perf, quotas, accounting,
//!   file handles, userfaultfd, io_uring). Allow-listing would break arbitrary guest software.
//!   EPERM (not ENOSYS) so callers report "operation not permitted", as on a locked-down host.
//!   With [`HostFacts::mount_listener`], `mount` and `umount2` are `SCMP_ACT_NOTIFY` to the
//!   mount daemon, which mounts and unmounts the instance's attached volumes for its root and
//!   lets the kernel refuse everything else as before (see the mountd module); the
//!   descriptor-based mount API then answers ENOSYS so that libmount falls back to `mount(2)`.
//! * **noNewPrivileges = false**: sudo and other setuid programs must work.
//! * **/proc/sys read-only except /proc/sys/net**: net sysctls are per network namespace and the
//!   guest owns its namespace (ip_forward for a router, Docker, ...).
//! * **AppArmor/SELinux**: no profile (Debian's runc has no default profile to apply here).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Arch, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, LinuxSeccompAction, LinuxSeccompBuilder,
    LinuxSyscallBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::cgroups::CgroupMode;
use crate::error::RuntimeError;
use crate::ContainerSpec;

/// Capabilities kept in the guest, with their kernel bit numbers (for the host bounding set).
/// `CAP_SYS_ADMIN` only with [`HostFacts::sys_admin`].
pub(crate) const CAPABILITIES: &[(Capability, u8)] = &[
    (Capability::Chown, 0),
    (Capability::DacOverride, 1),
    (Capability::DacReadSearch, 2),
    (Capability::Fowner, 3),
    (Capability::Fsetid, 4),
    (Capability::Kill, 5),
    (Capability::Setgid, 6),
    (Capability::Setuid, 7),
    (Capability::Setpcap, 8),
    (Capability::LinuxImmutable, 9),
    (Capability::NetBindService, 10),
    (Capability::NetBroadcast, 11),
    (Capability::NetAdmin, 12),
    (Capability::NetRaw, 13),
    (Capability::IpcLock, 14),
    (Capability::IpcOwner, 15),
    (Capability::SysChroot, 18),
    (Capability::SysPtrace, 19),
    (Capability::SysAdmin, 21),
    (Capability::SysBoot, 22),
    (Capability::SysNice, 23),
    (Capability::SysResource, 24),
    (Capability::SysTtyConfig, 26),
    (Capability::Mknod, 27),
    (Capability::Lease, 28),
    (Capability::AuditWrite, 29),
    (Capability::Setfcap, 31),
];

/// Syscalls that fail with EPERM in the guest (see the module docs for why).
pub(crate) const DENIED_SYSCALLS: &[&str] = &[
    // kernel code and kernel replacement
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "get_kernel_syms",
    "query_module",
    // host-global state
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_settime64",
    "clock_adjtime",
    "clock_adjtime64",
    "adjtimex",
    "stime",
    "syslog",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "nfsservctl",
    "_sysctl",
    "uselib",
    // hardware access
    "iopl",
    "ioperm",
    "vm86",
    "vm86old",
    // escapes and kernel attack surface
    "open_by_handle_at",
    "perf_event_open",
    "bpf",
    "userfaultfd",
    "add_key",
    "request_key",
    "keyctl",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
];

/// EPERM, the errno a denied syscall returns.
const EPERM: u32 = 1;
/// ENOSYS: "not implemented".
const ENOSYS: u32 = 38;

/// Syscalls the mount daemon answers (see the mountd module).
pub(crate) const INTERCEPTED_SYSCALLS: &[&str] = &["mount", "umount2"];

/// The descriptor-based mount API, which needs CAP_SYS_ADMIN too: with mounts intercepted it
/// looks absent (ENOSYS, as on a kernel before 5.2), so that a libmount that tries it first
/// (util-linux 2.39 and later) falls back to `mount(2)`, which mountd serves. `open_tree`
/// stays: without OPEN_TREE_CLONE it is an unprivileged open.
pub(crate) const ABSENT_WITH_INTERCEPTION: &[&str] = &[
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "mount_setattr",
];

/// /proc files lxcfs virtualises (per-container CPU, memory, uptime, load, disk and swap views).
pub(crate) const LXCFS_PROC_FILES: &[&str] = &[
    "cpuinfo",
    "meminfo",
    "stat",
    "uptime",
    "loadavg",
    "diskstats",
    "swaps",
];

/// What the config depends on besides the instance spec: facts about this host.
#[derive(Debug, Clone)]
pub(crate) struct HostFacts {
    pub cgroup_mode: CgroupMode,
    /// Parent cgroup of every instance ("gureum" → /sys/fs/cgroup/<ctrl>/gureum/<id>).
    pub cgroup_parent: String,
    /// Where lxcfs is mounted, if it is.
    pub lxcfs: Option<PathBuf>,
    /// The CPUs picked for this instance ("0,1").
    pub cpus: String,
    /// Whether memory+swap can be limited.
    pub swap_accounting: bool,
    /// The host's capability bounding set (bit mask from /proc/self/status).
    pub cap_bounding: u64,
    /// Host pty slave that becomes the guest's /dev/console, if a console relay runs.
    pub console_pty: Option<PathBuf>,
    /// Whether the guest keeps CAP_SYS_ADMIN (see the module docs).
    pub sys_admin: bool,
    /// The hard RLIMIT_NOFILE the guest's PID 1 gets (runc cannot raise it above ours without
    /// CAP_SYS_RESOURCE).
    pub nofile_hard: u64,
    /// The mount daemon's socket when guests' mounts are intercepted (seccomp notify works
    /// on this host and the daemon answers); None: `mount` fails with EPERM as it always did.
    pub mount_listener: Option<PathBuf>,
}

/// The cgroup path runc creates in every hierarchy.
pub(crate) fn cgroups_path(parent: &str, id: &str) -> String {
    format!("/{parent}/{id}")
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, RuntimeError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

fn bind(source: &Path, dest: &str, options: &[&str]) -> Result<Mount, RuntimeError> {
    let mut opts = vec!["bind".to_string()];
    opts.extend(options.iter().map(|o| o.to_string()));
    Ok(MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(opts)
        .build()?)
}

/// The capabilities granted: the list above, less whatever the host cannot grant.
pub(crate) fn granted_capabilities(cap_bounding: u64, sys_admin: bool) -> HashSet<Capability> {
    CAPABILITIES
        .iter()
        .filter(|(_, bit)| cap_bounding & (1u64 << bit) != 0)
        .filter(|(c, _)| sys_admin || *c != Capability::SysAdmin)
        .map(|(c, _)| *c)
        .collect()
}

/// Seccomp architectures for the host: the native one plus its compat ABIs, so a 32-bit
/// binary cannot call a denied syscall through the other table.
fn seccomp_arches() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

/// Size of a tmpfs as a share of the instance's memory (what a real machine would get).
fn tmpfs_size(memory_mib: u64, percent: u64) -> String {
    format!("size={}k", (memory_mib * 1024 * percent / 100).max(1024))
}

/// The CFS period of every guest's CPU quota (runc's default, 100 ms).
const CPU_PERIOD_US: u64 = 100_000;

/// `runc update` flags giving a running guest the limits [`build`] gives a new one: memory
/// (and memory+swap when swap is accounted), CPU quota, cpuset and pids.
pub(crate) fn update_flags(spec: &ContainerSpec, cpus: &str, swap_accounting: bool) -> Vec<String> {
    let bytes = spec.memory_mib.saturating_mul(1024 * 1024);
    let mut flags = vec![format!("--memory={bytes}")];
    if swap_accounting {
        flags.push(format!("--memory-swap={bytes}"));
    }
    flags.extend([
        format!("--cpu-period={CPU_PERIOD_US}"),
        format!("--cpu-quota={}", u64::from(spec.vcpus) * CPU_PERIOD_US),
        format!("--cpuset-cpus={cpus}"),
        format!("--pids-limit={}", spec.pids_max),
    ]);
    flags
}

/// The guest's tmpfs mounts sized by its memory, with their share of it in percent (as a
/// Debian machine sizes /dev/shm and /run; /tmp as a tmpfs /tmp would be).
const SHM_PERCENT: u64 = 50;
const RUN_PERCENT: u64 = 20;
const TMP_PERCENT: u64 = 50;

/// `(mount point, size option)` of every memory-sized tmpfs, for a guest whose memory changes
/// while it runs (a warm guest handed its instance).
pub(crate) fn memory_sized_tmpfs(memory_mib: u64) -> Vec<(&'static str, String)> {
    [
        ("/dev/shm", SHM_PERCENT),
        ("/run", RUN_PERCENT),
        ("/tmp", TMP_PERCENT),
    ]
    .into_iter()
    .map(|(dest, pct)| (dest, tmpfs_size(memory_mib, pct)))
    .collect()
}

/// Builds the instance's OCI config.
pub(crate) fn build(spec: &ContainerSpec, host: &HostFacts) -> Result<Spec, RuntimeError> {
    let caps = granted_capabilities(host.cap_bounding, host.sys_admin);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()?;

    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(0u32).gid(0u32).build()?)
        .args(vec!["/sbin/init".to_string()])
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            // systemd reads $container to know it is in a container (ConditionVirtualization,
            // no attempt to load modules or touch hardware).
            "container=gureum".to_string(),
        ])
        .cwd("/")
        .capabilities(capabilities)
        // systemd's own defaults for PID 1 (soft 1024, hard 512 Ki), within what we may grant.
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(1024u64.min(host.nofile_hard))
            .hard(host.nofile_hard)
            .build()?])
        .no_new_privileges(false)
        .build()?;

    let mem = spec.memory_mib;
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "nodev",
                "mode=1777",
                &tmpfs_size(mem, SHM_PERCENT),
            ],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
    ];
    match host.cgroup_mode {
        CgroupMode::V2 => {
            // With a cgroup namespace this is the instance's own cgroup; the guest's systemd
            // creates its units below it.
            mounts.push(mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "rw"],
            )?);
        }
        CgroupMode::V1 | CgroupMode::Hybrid => {
            // Controllers read-only (the guest must not raise its own limits); runc mounts each
            // hierarchy rooted at the instance's cgroup (cgroup namespace), and on a hybrid host
            // the v2 `unified` hierarchy writable. systemd also needs its own `name=systemd`
            // subtree writable: bind the instance's directory over the read-only mount.
            mounts.push(mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            )?);
            let own = Path::new(crate::cgroups::CGROUP_ROOT)
                .join("systemd")
                .join(&host.cgroup_parent)
                .join(&spec.id);
            mounts.push(bind(
                &own,
                "/sys/fs/cgroup/systemd",
                &["rw", "nosuid", "noexec", "nodev"],
            )?);
        }
    }
    mounts.push(mount(
        "/run",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "mode=755", &tmpfs_size(mem, RUN_PERCENT)],
    )?);
    mounts.push(mount(
        "/run/lock",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "noexec", "mode=1777", "size=5120k"],
    )?);
    mounts.push(mount(
        "/tmp",
        "tmpfs",
        "tmpfs",
        &[
            "nosuid",
            "nodev",
            "mode=1777",
            &tmpfs_size(mem, TMP_PERCENT),
        ],
    )?);
    if let Some(lxcfs) = &host.lxcfs {
        for f in LXCFS_PROC_FILES {
            mounts.push(bind(
                &lxcfs.join("proc").join(f),
                &format!("/proc/{f}"),
                &["ro", "nosuid", "nodev", "noexec"],
            )?);
        }
        mounts.push(bind(
            &lxcfs.join("sys/devices/system/cpu/online"),
            "/sys/devices/system/cpu/online",
            &["ro", "nosuid", "nodev", "noexec"],
        )?);
    }
    if let Some(pty) = &host.console_pty {
        mounts.push(bind(pty, "/dev/console", &["rw", "nosuid", "noexec"])?);
    }

    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Cgroup,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(typ).build()?);
    }
    let mut net = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    if let Some(path) = &spec.netns {
        net = net.path(path.clone());
    }
    namespaces.push(net.build()?);

    let limit = i64::try_from(mem.saturating_mul(1024 * 1024))
        .map_err(|_| RuntimeError::InvalidSpec(format!("memory_mib {mem} is too large")))?;
    let mut memory = LinuxMemoryBuilder::default().limit(limit);
    if host.swap_accounting {
        // memory+swap = memory: the guest gets no swap beyond its RAM, like an EC2 instance
        // without a swap volume.
        memory = memory.swap(limit);
    }
    let period = CPU_PERIOD_US;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?])
        .memory(memory.build()?)
        .cpu(
            LinuxCpuBuilder::default()
                .period(period)
                .quota(i64::from(spec.vcpus) * period as i64)
                .cpus(host.cpus.clone())
                .build()?,
        )
        .pids(
            LinuxPidsBuilder::default()
                .limit(i64::try_from(spec.pids_max).unwrap_or(i64::MAX))
                .build()?,
        )
        .build()?;

    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut seccomp_rules = vec![LinuxSyscallBuilder::default()
        .names(names(DENIED_SYSCALLS))
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .build()?];
    let mut seccomp = LinuxSeccompBuilder::default();
    if let Some(listener) = &host.mount_listener {
        seccomp_rules.push(
            LinuxSyscallBuilder::default()
                .names(names(INTERCEPTED_SYSCALLS))
                .action(LinuxSeccompAction::ScmpActNotify)
                .build()?,
        );
        seccomp_rules.push(
            LinuxSyscallBuilder::default()
                .names(names(ABSENT_WITH_INTERCEPTION))
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(ENOSYS)
                .build()?,
        );
        seccomp = seccomp.listener_path(listener.clone());
    }
    let seccomp = seccomp
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(seccomp_arches())
        .syscalls(seccomp_rules)
        .build()?;

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(cgroups_path(&host.cgroup_parent, &spec.id)))
        .resources(resources)
        .seccomp(seccomp)
        .masked_paths(
            [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/kmsg",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
                "/sys/devices/virtual/powercap",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        )
        .readonly_paths(
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sysrq-trigger",
                "/proc/sys/abi",
                "/proc/sys/crypto",
                "/proc/sys/debug",
                "/proc/sys/dev",
                "/proc/sys/fs",
                "/proc/sys/kernel",
                "/proc/sys/user",
                "/proc/sys/vm",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        )
        .build()?;

    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(false)
                .build()?,
        )
        .hostname(spec.hostname.clone())
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            id: "i-0123456789abcdef0".into(),
            image_rootfs: "/images/ami-1/rootfs".into(),
            volume_gib: 8,
            hostname: "ip-172-31-5-10".into(),
            vcpus: 2,
            memory_mib: 1024,
            pids_max: 4096,
            netns: Some("/run/netns/gureum-i-0123456789abcdef0".into()),
            inject: vec![],
            warm: false,
        }
    }

    fn facts(mode: CgroupMode) -> HostFacts {
        HostFacts {
            cgroup_mode: mode,
            cgroup_parent: "gureum".into(),
            lxcfs: Some("/var/lib/lxcfs".into()),
            cpus: "0,1".into(),
            swap_accounting: true,
            cap_bounding: u64::MAX,
            console_pty: Some("/dev/pts/7".into()),
            nofile_hard: 524_288,
            sys_admin: false,
            mount_listener: None,
        }
    }

    fn json(mode: CgroupMode) -> serde_json::Value {
        serde_json::to_value(build(&spec(), &facts(mode)).unwrap()).unwrap()
    }

    #[test]
    fn process_boots_systemd_with_trimmed_capabilities() {
        let j = json(CgroupMode::Hybrid);
        let p = &j["process"];
        assert_eq!(p["args"], serde_json::json!(["/sbin/init"]));
        assert!(p["env"]
            .as_array()
            .unwrap()
            .contains(&"container=gureum".into()));
        assert_eq!(p["noNewPrivileges"], false);
        assert_eq!(p["terminal"], false);
        let bounding: Vec<&str> = p["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(bounding.contains(&"CAP_NET_ADMIN"));
        assert!(bounding.contains(&"CAP_SETUID"));
        for dropped in [
            "CAP_SYS_ADMIN",
            "CAP_SYS_MODULE",
            "CAP_SYS_RAWIO",
            "CAP_SYS_TIME",
            "CAP_SYSLOG",
            "CAP_AUDIT_CONTROL",
            "CAP_MAC_ADMIN",
            "CAP_BPF",
        ] {
            assert!(!bounding.contains(&dropped), "{dropped} must be dropped");
        }
        assert_eq!(p["capabilities"]["ambient"], serde_json::json!([]));
    }

    #[test]
    fn capabilities_follow_the_host_bounding_set() {
        // This host's process_api lacks CAP_SYS_RESOURCE (bit 24).
        let caps = granted_capabilities(0x1fffeffffff, true);
        assert!(!caps.contains(&Capability::SysResource));
        assert!(caps.contains(&Capability::SysAdmin));
        assert_eq!(caps.len(), CAPABILITIES.len() - 1);
        let caps = granted_capabilities(u64::MAX, false);
        assert!(!caps.contains(&Capability::SysAdmin));
        assert_eq!(caps.len(), CAPABILITIES.len() - 1);
    }

    #[test]
    fn namespaces_limits_and_hostname() {
        let j = json(CgroupMode::Hybrid);
        assert_eq!(j["hostname"], "ip-172-31-5-10");
        assert_eq!(j["root"]["path"], "rootfs");
        assert_eq!(j["root"]["readonly"], false);
        let ns: Vec<&str> = j["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        for t in ["pid", "mount", "uts", "ipc", "cgroup", "network"] {
            assert!(ns.contains(&t), "{t} namespace");
        }
        assert!(!ns.contains(&"user"));
        assert!(j["linux"].get("uidMappings").is_none());
        let net = j["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap();
        assert_eq!(net["path"], "/run/netns/gureum-i-0123456789abcdef0");
        assert_eq!(j["linux"]["cgroupsPath"], "/gureum/i-0123456789abcdef0");
        let r = &j["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 1024 * 1024 * 1024);
        assert_eq!(r["memory"]["swap"], 1024 * 1024 * 1024);
        assert_eq!(r["cpu"]["quota"], 200_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["cpus"], "0,1");
        assert_eq!(r["pids"]["limit"], 4096);
        assert_eq!(
            r["devices"],
            serde_json::json!([{"allow": false, "access": "rwm"}])
        );
    }

    #[test]
    fn fresh_netns_when_none_given() {
        let mut s = spec();
        s.netns = None;
        let j = serde_json::to_value(build(&s, &facts(CgroupMode::V2)).unwrap()).unwrap();
        let net = j["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap()
            .clone();
        assert_eq!(net, serde_json::json!({"type": "network"}));
    }

    #[test]
    fn seccomp_denies_with_eperm() {
        let j = json(CgroupMode::Hybrid);
        let s = &j["linux"]["seccomp"];
        assert_eq!(s["defaultAction"], "SCMP_ACT_ALLOW");
        let rule = &s["syscalls"][0];
        assert_eq!(rule["action"], "SCMP_ACT_ERRNO");
        assert_eq!(rule["errnoRet"], 1);
        let names: Vec<&str> = rule["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        for n in [
            "kexec_load",
            "init_module",
            "finit_module",
            "delete_module",
            "swapon",
            "swapoff",
            "open_by_handle_at",
            "iopl",
            "ioperm",
            "acct",
            "settimeofday",
            "clock_settime",
            "clock_adjtime",
            "adjtimex",
            "lookup_dcookie",
            "perf_event_open",
            "quotactl",
            "add_key",
            "request_key",
            "keyctl",
            "bpf",
            "userfaultfd",
            "syslog",
        ] {
            assert!(names.contains(&n), "{n} must be denied");
        }
    }

    #[test]
    fn mounts_are_intercepted_only_with_a_listener() {
        let j = json(CgroupMode::Hybrid);
        let s = &j["linux"]["seccomp"];
        assert!(s.get("listenerPath").is_none());
        assert_eq!(s["syscalls"].as_array().unwrap().len(), 1);

        let mut f = facts(CgroupMode::Hybrid);
        f.mount_listener = Some("/var/lib/gureum/instances/.mountd/sock".into());
        let j = serde_json::to_value(build(&spec(), &f).unwrap()).unwrap();
        let s = &j["linux"]["seccomp"];
        assert_eq!(s["listenerPath"], "/var/lib/gureum/instances/.mountd/sock");
        let rules = s["syscalls"].as_array().unwrap();
        let notify = rules
            .iter()
            .find(|r| r["action"] == "SCMP_ACT_NOTIFY")
            .unwrap();
        assert_eq!(notify["names"], serde_json::json!(["mount", "umount2"]));
        let absent = rules.iter().find(|r| r["errnoRet"] == 38).unwrap();
        assert!(absent["names"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("fsopen")));
        // The deny-list is unchanged.
        assert_eq!(rules[0]["errnoRet"], 1);
    }

    fn mount_of<'a>(j: &'a serde_json::Value, dest: &str) -> Vec<&'a serde_json::Value> {
        j["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] == dest)
            .collect()
    }

    #[test]
    fn mounts_for_systemd_lxcfs_and_console() {
        let j = json(CgroupMode::Hybrid);
        for d in [
            "/proc",
            "/sys",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/run",
            "/run/lock",
            "/tmp",
        ] {
            assert_eq!(mount_of(&j, d).len(), 1, "{d}");
        }
        let cg = mount_of(&j, "/sys/fs/cgroup")[0];
        assert!(cg["options"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("ro")));
        let sd = mount_of(&j, "/sys/fs/cgroup/systemd")[0];
        assert_eq!(
            sd["source"],
            "/sys/fs/cgroup/systemd/gureum/i-0123456789abcdef0"
        );
        for f in LXCFS_PROC_FILES {
            let m = mount_of(&j, &format!("/proc/{f}"));
            assert_eq!(m[0]["source"], format!("/var/lib/lxcfs/proc/{f}"));
        }
        assert_eq!(mount_of(&j, "/sys/devices/system/cpu/online").len(), 1);
        assert_eq!(mount_of(&j, "/dev/console")[0]["source"], "/dev/pts/7");
        let sys = mount_of(&j, "/sys")[0];
        assert!(sys["options"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("ro")));
        // tmpfs sizes follow the instance's memory (1 GiB): /run 20 %, /tmp 50 %.
        assert!(mount_of(&j, "/run")[0]["options"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("size=209715k")));

        let v2 = json(CgroupMode::V2);
        assert!(mount_of(&v2, "/sys/fs/cgroup/systemd").is_empty());
        assert!(mount_of(&v2, "/sys/fs/cgroup")[0]["options"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("rw")));
    }

    #[test]
    fn proc_sys_net_stays_writable() {
        let j = json(CgroupMode::V1);
        let ro: Vec<&str> = j["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert!(ro.contains(&"/proc/sys/kernel"));
        assert!(!ro.contains(&"/proc/sys"));
        assert!(!ro.iter().any(|p| p.starts_with("/proc/sys/net")));
    }
}
