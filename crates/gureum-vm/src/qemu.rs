//! The QEMU command line of an instance, built purely from its launch settings (golden-tested),
//! and the accelerator it runs under.

use std::ffi::OsString;
use std::path::PathBuf;

/// The accelerator VMs run under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// `-accel` and `-cpu`: the host's CPU under KVM; under TCG the emulator's most capable
    /// model, with a translation cache far smaller than QEMU's 1 GiB default (it counts
    /// against the instance's memory cgroup).
    pub(crate) fn args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => ["-accel", "tcg,tb-size=128", "-cpu", "max"],
        }
    }
}

/// Everything that goes on one instance's QEMU command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuArgs {
    /// `gureum-<instance id>`: QEMU's `-name`, also how a process is recognised as ours.
    pub name: String,
    pub accel: Accel,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub root_disk: PathBuf,
    pub seed_disk: PathBuf,
    /// EBS volumes, each with whether its file takes `O_DIRECT` ([`crate::volumes`]).
    pub volumes: Vec<(crate::Volume, bool)>,
    /// The tap device on the VPC bridge (none: no network, for tests).
    pub tap: Option<String>,
    pub mac: [u8; 6],
    pub console_log: PathBuf,
    pub qmp_socket: PathBuf,
    pub pidfile: PathBuf,
    /// The unprivileged user QEMU drops to once it has opened its files.
    pub user: Option<String>,
    /// The directory QEMU chroots into once it has opened its files.
    pub chroot: Option<PathBuf>,
}

pub(crate) fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl QemuArgs {
    /// The arguments after the program name.
    ///
    /// Why these: `-nodefaults` and `-no-user-config` give a machine with exactly the devices
    /// listed; `-kernel`/`-initrd` boot the image's own kernel directly (no bootloader in the
    /// image, no firmware wait); the serial console is appended to a file (GetConsoleOutput);
    /// the root disk is a virtio-blk qcow2 overlay and the seed a second, read-only one whose
    /// serial the guest finds it by; the QMP socket is how the host stops, reboots and asks
    /// about the guest. No `-daemonize`: it forks after the sandbox denies fork (`spawn=deny`),
    /// so the driver detaches QEMU itself (`setsid -f`). `-sandbox on` denies obsolete,
    /// spawning and resource-control system calls;
    /// `elevateprivileges` stays allowed because QEMU 7.2's `-runas` calls setuid after the
    /// filter is in place (and once it has dropped to the unprivileged user, set*id can only
    /// keep it there). `-runas` and `-chroot` make the running QEMU an unprivileged user inside
    /// the instance's own directory: it sees its disks, tap and sockets only through the
    /// descriptors it opened as root.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: &str| a.push(s.into());
        push("-name");
        push(&format!("{},process={}", self.name, self.name));
        push("-machine");
        push("pc");
        for s in self.accel.args() {
            push(s);
        }
        push("-smp");
        push(&self.vcpus.to_string());
        push("-m");
        push(&format!("{}M", self.memory_mib));
        push("-nodefaults");
        push("-no-user-config");
        push("-display");
        push("none");
        push("-kernel");
        a.push(self.kernel.clone().into());
        if let Some(initrd) = &self.initrd {
            a.push("-initrd".into());
            a.push(initrd.clone().into());
        }
        let mut push = |s: &str| a.push(s.into());
        push("-append");
        push(&self.cmdline);
        push("-drive");
        push(&format!(
            "file={},if=none,id=root,format=qcow2,discard=unmap",
            self.root_disk.display()
        ));
        push("-device");
        push("virtio-blk-pci,drive=root,serial=gureum-root");
        push("-drive");
        push(&format!(
            "file={},if=none,id=seed,format=raw,readonly=on",
            self.seed_disk.display()
        ));
        push("-device");
        push("virtio-blk-pci,drive=seed,serial=gureum-seed");
        a.extend(
            crate::volumes::args(&self.volumes)
                .into_iter()
                .map(OsString::from),
        );
        let mut push = |s: &str| a.push(s.into());
        if let Some(tap) = &self.tap {
            push("-netdev");
            push(&format!("tap,id=net0,ifname={tap},script=no,downscript=no"));
            push("-device");
            push(&format!(
                "virtio-net-pci,netdev=net0,mac={}",
                mac_string(&self.mac)
            ));
        }
        push("-device");
        push("virtio-rng-pci");
        push("-chardev");
        push(&format!(
            "file,id=console,path={},append=on",
            self.console_log.display()
        ));
        push("-serial");
        push("chardev:console");
        push("-qmp");
        push(&format!(
            "unix:{},server=on,wait=off",
            self.qmp_socket.display()
        ));
        push("-pidfile");
        push(&self.pidfile.display().to_string());
        push("-sandbox");
        push("on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny");
        if let Some(user) = &self.user {
            push("-runas");
            push(user);
        }
        if let Some(dir) = &self.chroot {
            push("-chroot");
            push(&dir.display().to_string());
        }
        a
    }
}

/// The guest kernel's command line: the root disk, the serial console, and no waiting.
pub fn kernel_cmdline() -> String {
    "root=/dev/vda rw console=ttyS0,115200 panic=-1 net.ifnames=0".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_matches_the_golden_file() {
        let args = QemuArgs {
            name: "gureum-i-0123456789abcdef0".into(),
            accel: Accel::Tcg,
            vcpus: 2,
            memory_mib: 1024,
            kernel: "/cache/vm/vmlinuz".into(),
            initrd: Some("/cache/vm/initrd.img".into()),
            cmdline: kernel_cmdline(),
            root_disk: "/d/i-1/root.qcow2".into(),
            seed_disk: "/d/i-1/seed.img".into(),
            volumes: vec![(
                crate::Volume::new(
                    "vol-0123456789abcdef0",
                    "/dev/sdf",
                    "/data/volumes/vol-0123456789abcdef0.raw".as_ref(),
                    false,
                ),
                true,
            )],
            tap: Some("grt-abc".into()),
            mac: [0x02, 0, 0xac, 0x1f, 0, 5],
            console_log: "/d/i-1/console.log".into(),
            qmp_socket: "/d/i-1/qmp.sock".into(),
            pidfile: "/d/i-1/qemu.pid".into(),
            user: Some("gureum-i-0123456789abcdef0".into()),
            chroot: Some("/d/i-1/chroot".into()),
        };
        let text: Vec<String> = args
            .to_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/qemu-args.txt");
        let got = text.join("\n") + "\n";
        if std::env::var_os("GUREUM_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &got).unwrap();
        }
        assert_eq!(got, std::fs::read_to_string(&path).unwrap());
    }
}
