//! [`ByHypervisor`]: two compute drivers behind one [`Compute`], chosen per instance.
//!
//! It lives here, beside the trait, rather than in the core or the binary: choosing a backend
//! by the instance's [`Hypervisor`] is part of the seam's contract (a spec names its
//! hypervisor; an id belongs to whichever driver has it), not a rule of the cloud, and it needs
//! nothing but the trait, so it is written and tested once, against fakes, for any pair of
//! drivers.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use gureum_types::Hypervisor;

use crate::{Compute, GuestSpec, GuestState, HostError, HostResult, VolumeAttachment, WarmGuest};

/// A container driver and, where the host can run them, a VM driver, as one [`Compute`]: a
/// spec goes to the driver its `hypervisor` names; an id goes to the VM driver if that has the
/// instance ([`Compute::has_guest`]), else to the container driver.
pub struct ByHypervisor<C, V> {
    container: C,
    vm: Option<V>,
}

impl<C: Compute, V: Compute> ByHypervisor<C, V> {
    /// `vm` is `None` where VMs cannot run: VM specs then fail as [`HostError::Unavailable`].
    pub fn new(container: C, vm: Option<V>) -> Self {
        ByHypervisor { container, vm }
    }

    pub fn container(&self) -> &C {
        &self.container
    }

    pub fn vm(&self) -> Option<&V> {
        self.vm.as_ref()
    }

    fn for_spec(&self, spec: &GuestSpec) -> HostResult<&dyn Compute> {
        match spec.hypervisor {
            Hypervisor::Container => Ok(&self.container),
            Hypervisor::Vm => match &self.vm {
                Some(vm) => Ok(vm),
                None => Err(HostError::Unavailable(
                    "VMs are unavailable on this host (no qemu-system-x86_64)".into(),
                )),
            },
        }
    }

    fn for_id(&self, id: &str) -> &dyn Compute {
        match &self.vm {
            Some(vm) if vm.has_guest(id) => vm,
            _ => &self.container,
        }
    }
}

#[async_trait]
impl<C: Compute, V: Compute> Compute for ByHypervisor<C, V> {
    async fn prepare(&self, spec: &GuestSpec) -> HostResult<()> {
        self.for_spec(spec)?.prepare(spec).await
    }
    async fn start(&self, spec: &GuestSpec) -> HostResult<()> {
        self.for_spec(spec)?.start(spec).await
    }
    async fn stop(&self, id: &str, force: bool) -> HostResult<()> {
        self.for_id(id).stop(id, force).await
    }
    async fn reboot(&self, spec: &GuestSpec) -> HostResult<()> {
        self.for_spec(spec)?.reboot(spec).await
    }
    /// Both drivers: an id is removed from wherever it is.
    async fn destroy(&self, id: &str) -> HostResult<()> {
        if let Some(vm) = &self.vm {
            vm.destroy(id).await?;
        }
        self.container.destroy(id).await
    }
    async fn state(&self, id: &str) -> HostResult<GuestState> {
        self.for_id(id).state(id).await
    }
    async fn list(&self) -> HostResult<Vec<String>> {
        let mut ids = self.container.list().await?;
        if let Some(vm) = &self.vm {
            ids.extend(vm.list().await?);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
    fn has_guest(&self, id: &str) -> bool {
        self.container.has_guest(id) || self.vm.as_ref().is_some_and(|vm| vm.has_guest(id))
    }
    fn console_output(&self, id: &str, max_bytes: usize) -> HostResult<Vec<u8>> {
        self.for_id(id).console_output(id, max_bytes)
    }
    async fn snapshot(&self, spec: &GuestSpec, image_id: &str) -> HostResult<PathBuf> {
        self.for_spec(spec)?.snapshot(spec, image_id).await
    }
    async fn warm_guest(&self, id: &str) -> HostResult<Option<WarmGuest>> {
        self.for_id(id).warm_guest(id).await
    }
    async fn export_root_volume(&self, spec: &GuestSpec, dest: &Path) -> HostResult<()> {
        self.for_spec(spec)?.export_root_volume(spec, dest).await
    }
    async fn attach_volume(&self, id: &str, attachment: &VolumeAttachment) -> HostResult<()> {
        self.for_id(id).attach_volume(id, attachment).await
    }
    async fn detach_volume(&self, id: &str, volume_id: &str, force: bool) -> HostResult<()> {
        self.for_id(id).detach_volume(id, volume_id, force).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use super::*;

    /// A driver that remembers its guests and what it was asked.
    #[derive(Default)]
    struct Recorder {
        name: &'static str,
        guests: Mutex<BTreeSet<String>>,
        calls: Mutex<Vec<String>>,
    }

    impl Recorder {
        fn new(name: &'static str, guests: &[&str]) -> Recorder {
            Recorder {
                name,
                guests: Mutex::new(guests.iter().map(|g| g.to_string()).collect()),
                calls: Mutex::default(),
            }
        }
        fn note(&self, what: &str, id: &str) {
            self.calls.lock().unwrap().push(format!("{what} {id}"));
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Compute for Recorder {
        async fn prepare(&self, spec: &GuestSpec) -> HostResult<()> {
            self.note("prepare", &spec.instance_id);
            self.guests.lock().unwrap().insert(spec.instance_id.clone());
            Ok(())
        }
        async fn start(&self, spec: &GuestSpec) -> HostResult<()> {
            self.note("start", &spec.instance_id);
            Ok(())
        }
        async fn stop(&self, id: &str, _force: bool) -> HostResult<()> {
            self.note("stop", id);
            Ok(())
        }
        async fn reboot(&self, spec: &GuestSpec) -> HostResult<()> {
            self.note("reboot", &spec.instance_id);
            Ok(())
        }
        async fn destroy(&self, id: &str) -> HostResult<()> {
            self.note("destroy", id);
            self.guests.lock().unwrap().remove(id);
            Ok(())
        }
        async fn state(&self, id: &str) -> HostResult<GuestState> {
            self.note("state", id);
            Ok(GuestState::Stopped)
        }
        async fn list(&self) -> HostResult<Vec<String>> {
            Ok(self.guests.lock().unwrap().iter().cloned().collect())
        }
        fn has_guest(&self, id: &str) -> bool {
            self.guests.lock().unwrap().contains(id)
        }
        fn console_output(&self, _id: &str, _max: usize) -> HostResult<Vec<u8>> {
            Ok(self.name.as_bytes().to_vec())
        }
        async fn snapshot(&self, spec: &GuestSpec, _image: &str) -> HostResult<PathBuf> {
            self.note("snapshot", &spec.instance_id);
            Ok(PathBuf::from(self.name))
        }
        async fn warm_guest(&self, id: &str) -> HostResult<Option<WarmGuest>> {
            self.note("warm_guest", id);
            Ok(None)
        }
    }

    fn spec(id: &str, hypervisor: Hypervisor) -> GuestSpec {
        GuestSpec {
            instance_id: id.into(),
            image_rootfs: PathBuf::from("/rootfs"),
            volume_gib: 8,
            hostname: "ip-172-31-0-10".into(),
            vcpus: 1,
            memory_mib: 1024,
            pids_max: 4096,
            netns: None,
            files: vec![],
            hypervisor,
            nic: None,
            warm: false,
            volumes: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_spec_goes_to_the_driver_its_hypervisor_names() {
        let host = ByHypervisor::new(Recorder::new("runc", &[]), Some(Recorder::new("qemu", &[])));
        host.prepare(&spec("i-c", Hypervisor::Container))
            .await
            .unwrap();
        host.start(&spec("i-v", Hypervisor::Vm)).await.unwrap();
        host.reboot(&spec("i-v", Hypervisor::Vm)).await.unwrap();
        let image = host
            .snapshot(&spec("i-c", Hypervisor::Container), "ami-1")
            .await
            .unwrap();
        assert_eq!(image, PathBuf::from("runc"));
        assert_eq!(host.container().calls(), ["prepare i-c", "snapshot i-c"]);
        assert_eq!(host.vm().unwrap().calls(), ["start i-v", "reboot i-v"]);
    }

    #[tokio::test]
    async fn an_id_goes_to_the_vm_driver_only_if_it_has_the_instance() {
        let host = ByHypervisor::new(
            Recorder::new("runc", &["i-c"]),
            Some(Recorder::new("qemu", &["i-v"])),
        );
        host.stop("i-v", false).await.unwrap();
        host.state("i-c").await.unwrap();
        // An id neither has (a leak sweep's, say) is the container driver's.
        host.stop("i-x", true).await.unwrap();
        host.warm_guest("i-v").await.unwrap();
        assert_eq!(host.console_output("i-v", 10).unwrap(), b"qemu");
        assert_eq!(host.console_output("i-c", 10).unwrap(), b"runc");
        assert_eq!(host.container().calls(), ["state i-c", "stop i-x"]);
        assert_eq!(host.vm().unwrap().calls(), ["stop i-v", "warm_guest i-v"]);
        assert!(host.has_guest("i-v") && host.has_guest("i-c") && !host.has_guest("i-x"));
    }

    #[tokio::test]
    async fn destroy_and_list_cover_both_drivers() {
        let host = ByHypervisor::new(
            Recorder::new("runc", &["i-a", "i-c"]),
            Some(Recorder::new("qemu", &["i-b", "i-c"])),
        );
        assert_eq!(host.list().await.unwrap(), ["i-a", "i-b", "i-c"]);
        host.destroy("i-c").await.unwrap();
        assert_eq!(host.container().calls(), ["destroy i-c"]);
        assert_eq!(host.vm().unwrap().calls(), ["destroy i-c"]);
        assert_eq!(host.list().await.unwrap(), ["i-a", "i-b"]);
    }

    #[tokio::test]
    async fn without_a_vm_driver_vms_are_unavailable_and_ids_are_the_containers() {
        let host: ByHypervisor<Recorder, Recorder> =
            ByHypervisor::new(Recorder::new("runc", &["i-c"]), None);
        let e = host.start(&spec("i-v", Hypervisor::Vm)).await.unwrap_err();
        assert!(matches!(e, HostError::Unavailable(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "VMs are unavailable on this host (no qemu-system-x86_64)"
        );
        host.destroy("i-c").await.unwrap();
        assert_eq!(host.container().calls(), ["destroy i-c"]);
        assert!(host.list().await.unwrap().is_empty());
    }
}
