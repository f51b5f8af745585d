//! This driver behind the host seam: [`Compute`] for [`VmDriver`] (a spec in the core's terms
//! becomes a [`VmSpec`]; the accelerator is probed at the first start), and the driver's
//! errors as [`HostError`]s.
//!
//! The trait's methods share names with the driver's own, which take the driver's types; the
//! impl calls those by path so it is plain which one runs.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use gureum_host_api::{
    Compute, GuestSpec, GuestState, HostError, HostResult, VolumeAttachment, TAP_DIR,
};

use crate::{GuestNet, SeedFile, VmDriver, VmError, VmSpec, VmState, Volume};

/// The VM the core's spec describes. Its port is the tap the network driver made, named by
/// the spec's `netns` (`<TAP_DIR>/<tap>`); without both a tap and an interface it has
/// no network.
pub fn vm_spec(spec: &GuestSpec) -> VmSpec {
    let tap = spec
        .netns
        .as_ref()
        .filter(|p| p.starts_with(TAP_DIR))
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    VmSpec {
        id: spec.instance_id.clone(),
        image_rootfs: spec.image_rootfs.clone(),
        volume_gib: spec.volume_gib as u64,
        vcpus: spec.vcpus,
        memory_mib: spec.memory_mib,
        net: match (tap, &spec.nic) {
            (Some(tap), Some(nic)) => Some(GuestNet {
                tap,
                mac: nic.mac,
                ip: nic.ip,
                prefix_len: nic.prefix_len,
                gateway: nic.gateway,
            }),
            _ => None,
        },
        files: spec
            .files
            .iter()
            .map(|f| SeedFile {
                path: f.path.clone(),
                contents: f.contents.clone(),
                mode: f.mode,
            })
            .collect(),
        volumes: spec.volumes.iter().map(volume).collect(),
    }
}

/// An attachment as this driver records it.
fn volume(a: &VolumeAttachment) -> Volume {
    Volume::new(&a.volume_id, &a.device, &a.path, a.read_only)
}

impl VmDriver {
    /// Once per driver, if asked for ([`crate::VmOptions::probe_accel`]): boot `rootfs`'s
    /// kernel as a test guest and use KVM only if it really boots under it, else TCG with a
    /// warning.
    async fn probe_once(&self, rootfs: &Path) {
        if !self.opts.probe_accel {
            return;
        }
        self.probed
            .get_or_init(|| async {
                let kernel = crate::disk::find_kernel(rootfs).map(|(k, _)| k);
                let report = crate::probe(
                    Path::new("qemu-system-x86_64"),
                    kernel.as_deref(),
                    crate::probe::PROBE_DEADLINE,
                )
                .await;
                let accel = report.accel();
                match &report.kvm {
                    Ok(t) => tracing::info!(ms = t.as_millis() as u64, "VMs use KVM"),
                    Err(why) => tracing::warn!(
                        %why,
                        "KVM does not boot a test guest on this host: VMs use TCG (software emulation, slower)"
                    ),
                }
                self.set_accel(accel);
                accel
            })
            .await;
    }
}

#[async_trait]
impl Compute for VmDriver {
    async fn prepare(&self, spec: &GuestSpec) -> HostResult<()> {
        Ok(VmDriver::prepare(self, &vm_spec(spec)).await?)
    }
    async fn start(&self, spec: &GuestSpec) -> HostResult<()> {
        self.probe_once(&spec.image_rootfs).await;
        Ok(VmDriver::start(self, &vm_spec(spec)).await?)
    }
    async fn stop(&self, id: &str, force: bool) -> HostResult<()> {
        Ok(VmDriver::stop(self, id, self.opts.stop_timeout, force).await?)
    }
    async fn reboot(&self, spec: &GuestSpec) -> HostResult<()> {
        Ok(VmDriver::reboot(self, &vm_spec(spec), self.opts.stop_timeout).await?)
    }
    async fn destroy(&self, id: &str) -> HostResult<()> {
        Ok(VmDriver::destroy(self, id).await?)
    }
    async fn state(&self, id: &str) -> HostResult<GuestState> {
        Ok(match VmDriver::state(self, id).await? {
            VmState::Running => GuestState::Running,
            VmState::Stopped => GuestState::Stopped,
            VmState::Absent => GuestState::Absent,
        })
    }
    async fn list(&self) -> HostResult<Vec<String>> {
        Ok(VmDriver::list(self).await?)
    }
    /// The instance's directory is the VM: it is there from `prepare` to `destroy`.
    fn has_guest(&self, id: &str) -> bool {
        self.dir(id).is_dir()
    }
    fn console_output(&self, id: &str, max_bytes: usize) -> HostResult<Vec<u8>> {
        Ok(VmDriver::console_output(self, id, max_bytes)?)
    }
    async fn snapshot(&self, _spec: &GuestSpec, _image_id: &str) -> HostResult<PathBuf> {
        Err(HostError::Unsupported(
            "CreateImage of a VM instance is not supported yet".into(),
        ))
    }
    async fn export_root_volume(&self, spec: &GuestSpec, dest: &Path) -> HostResult<()> {
        let overlay = self.root_disk(&spec.instance_id);
        if !overlay.is_file() {
            return Err(HostError::NotFound(spec.instance_id.clone()));
        }
        Ok(crate::disk::export_raw(&overlay, dest).await?)
    }
    async fn attach_volume(&self, id: &str, attachment: &VolumeAttachment) -> HostResult<()> {
        Ok(VmDriver::attach_volume(self, id, &volume(attachment)).await?)
    }
    async fn detach_volume(&self, id: &str, volume_id: &str, force: bool) -> HostResult<()> {
        Ok(VmDriver::detach_volume(self, id, volume_id, force).await?)
    }
}

/// Each failure as the seam's kind of it, in the driver's words.
impl From<VmError> for HostError {
    fn from(e: VmError) -> HostError {
        match e {
            VmError::Io { what, path, source } => HostError::Io {
                op: format!("{what} {path}"),
                source,
            },
            VmError::Command { command, detail } => HostError::Command {
                command,
                status: None,
                stderr: detail,
            },
            VmError::Qmp(_) => HostError::Driver(e.to_string()),
            VmError::Image(why) => HostError::Driver(why),
            VmError::NotFound(id) => HostError::NotFound(id),
            VmError::Invalid { what, why } => HostError::Invalid {
                what: what.to_string(),
                why,
            },
            VmError::Busy(what) => HostError::Busy(what),
            VmError::Timeout(what) => HostError::Timeout(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gureum_host_api::{GuestFile, Hypervisor, Nic};

    fn spec(netns: Option<&str>, nic: bool) -> GuestSpec {
        GuestSpec {
            instance_id: "i-1".into(),
            image_rootfs: "/img".into(),
            volume_gib: 8,
            hostname: "ip-172-31-0-10".into(),
            vcpus: 2,
            memory_mib: 1024,
            pids_max: 8192,
            netns: netns.map(PathBuf::from),
            files: vec![GuestFile {
                path: "/var/lib/gureum/instance.env".into(),
                contents: b"X=1".to_vec(),
                mode: 0o644,
            }],
            hypervisor: Hypervisor::Vm,
            nic: nic.then(|| Nic {
                instance_id: "i-1".into(),
                net_id: "vpc-1".into(),
                mac: [2, 0, 0, 0, 0, 1],
                ip: "172.31.0.10".parse().unwrap(),
                prefix_len: 20,
                gateway: "172.31.0.1".parse().unwrap(),
                tap: true,
                netns_of: None,
            }),
            warm: false,
            volumes: Vec::new(),
        }
    }

    #[test]
    fn the_tap_comes_from_the_port_the_network_driver_named() {
        let vm = vm_spec(&spec(Some("/sys/class/net/gr-abc"), true));
        let net = vm.net.expect("a tap and an interface give a network");
        assert_eq!(net.tap, "gr-abc");
        assert_eq!(
            (net.ip.to_string(), net.prefix_len),
            ("172.31.0.10".into(), 20)
        );
        assert_eq!((vm.vcpus, vm.memory_mib, vm.volume_gib), (2, 1024, 8));
        assert_eq!(vm.files.len(), 1);
        // A network namespace is a container's port, not a tap; no interface, no network.
        assert!(vm_spec(&spec(Some("/run/netns/gr-abc"), true))
            .net
            .is_none());
        assert!(vm_spec(&spec(Some("/sys/class/net/gr-abc"), false))
            .net
            .is_none());
    }

    #[test]
    fn errors_get_their_kind() {
        let cmd = HostError::from(VmError::Command {
            command: "qemu-img".into(),
            detail: "no space".into(),
        });
        assert!(matches!(cmd, HostError::Command { status: None, .. }));
        assert_eq!(cmd.to_string(), "`qemu-img` failed: no space");
        let io = VmError::io(
            "removing",
            Path::new("/v/i-1"),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        let text = io.to_string();
        let io = HostError::from(io);
        assert!(matches!(io, HostError::Io { .. }));
        assert_eq!(io.to_string(), text);
        assert!(matches!(
            HostError::from(VmError::NotFound("i-1".into())),
            HostError::NotFound(id) if id == "i-1"
        ));
        assert_eq!(
            HostError::from(VmError::Qmp("closed".into())).to_string(),
            "qmp: closed"
        );
    }

    #[tokio::test]
    async fn a_vm_cannot_be_snapshot_yet() {
        let dir = std::env::temp_dir().join(format!("gureum-vm-snap-{}", std::process::id()));
        let mut opts = crate::VmOptions::new(&dir, crate::Accel::Tcg);
        opts.confine = false;
        let driver = VmDriver::new(opts).unwrap();
        let e = Compute::snapshot(&driver, &spec(None, false), "ami-1")
            .await
            .unwrap_err();
        assert!(matches!(e, HostError::Unsupported(_)));
        assert_eq!(
            e.to_string(),
            "CreateImage of a VM instance is not supported yet"
        );
        assert!(!driver.has_guest("i-1"));
        std::fs::create_dir(driver.dir("i-1")).unwrap();
        assert!(driver.has_guest("i-1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
