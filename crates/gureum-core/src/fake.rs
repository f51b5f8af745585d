//! In-memory host drivers for the core's tests: they record what the agent asked and let a
//! test kill a guest or make a step fail.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::host::{
    Compute, GuestSpec, GuestState, HostError, HostNet, HostResult, Network, Nic, VolumeAttachment,
    Volumes, WarmGuest,
};

/// The "PID 1" every running fake warm guest reports.
pub const WARM_PID: i32 = 4242;

#[derive(Default)]
pub struct FakeCompute {
    pub guests: Mutex<HashMap<String, (GuestState, GuestSpec)>>,
    pub fail_start: Mutex<HashSet<String>>,
    pub log: Mutex<Vec<String>>,
    /// Volumes hot-plugged into running guests: (instance, volume) → device.
    pub plugged: Mutex<HashMap<(String, String), String>>,
    /// Volumes the guest has mounted: an unforced detach answers `Busy`.
    pub mounted: Mutex<HashSet<String>>,
}

impl FakeCompute {
    pub fn state_of(&self, id: &str) -> GuestState {
        self.guests
            .lock()
            .unwrap()
            .get(id)
            .map(|g| g.0)
            .unwrap_or(GuestState::Absent)
    }
    /// The guest powers itself off (or is killed from outside).
    pub fn kill(&self, id: &str) {
        if let Some(g) = self.guests.lock().unwrap().get_mut(id) {
            g.0 = GuestState::Stopped;
        }
    }
    pub fn spec_of(&self, id: &str) -> Option<GuestSpec> {
        self.guests.lock().unwrap().get(id).map(|g| g.1.clone())
    }
    fn note(&self, s: String) {
        self.log.lock().unwrap().push(s);
    }
}

#[async_trait]
impl Compute for FakeCompute {
    async fn prepare(&self, spec: &GuestSpec) -> HostResult<()> {
        self.note(format!("prepare {}", spec.instance_id));
        self.guests
            .lock()
            .unwrap()
            .entry(spec.instance_id.clone())
            .or_insert((GuestState::Stopped, spec.clone()));
        Ok(())
    }
    async fn start(&self, spec: &GuestSpec) -> HostResult<()> {
        self.note(format!("start {}", spec.instance_id));
        if self.fail_start.lock().unwrap().contains(&spec.instance_id) {
            return Err(HostError::Driver("the guest did not boot".into()));
        }
        if let Some((GuestState::Running, old)) = self.guests.lock().unwrap().get(&spec.instance_id)
        {
            if old.warm && !spec.warm {
                self.note(format!("hand over {}", spec.instance_id));
            }
        }
        self.guests.lock().unwrap().insert(
            spec.instance_id.clone(),
            (GuestState::Running, spec.clone()),
        );
        Ok(())
    }
    async fn stop(&self, id: &str, force: bool) -> HostResult<()> {
        self.note(format!("stop {id} force={force}"));
        if let Some(g) = self.guests.lock().unwrap().get_mut(id) {
            g.0 = GuestState::Stopped;
        }
        Ok(())
    }
    async fn reboot(&self, spec: &GuestSpec) -> HostResult<()> {
        self.note(format!("reboot {}", spec.instance_id));
        Ok(())
    }
    async fn destroy(&self, id: &str) -> HostResult<()> {
        self.note(format!("destroy {id}"));
        self.guests.lock().unwrap().remove(id);
        Ok(())
    }
    async fn state(&self, id: &str) -> HostResult<GuestState> {
        Ok(self.state_of(id))
    }
    async fn list(&self) -> HostResult<Vec<String>> {
        Ok(self.guests.lock().unwrap().keys().cloned().collect())
    }
    fn has_guest(&self, id: &str) -> bool {
        self.guests.lock().unwrap().contains_key(id)
    }
    fn console_output(&self, id: &str, _max: usize) -> HostResult<Vec<u8>> {
        Ok(format!("console of {id}\n").into_bytes())
    }
    async fn snapshot(&self, spec: &GuestSpec, image_id: &str) -> HostResult<std::path::PathBuf> {
        self.note(format!("snapshot {} {image_id}", spec.instance_id));
        Ok(format!("/images/{image_id}").into())
    }
    async fn attach_volume(&self, id: &str, a: &VolumeAttachment) -> HostResult<()> {
        self.note(format!("attach {} {id} {}", a.volume_id, a.device));
        self.plugged
            .lock()
            .unwrap()
            .insert((id.to_string(), a.volume_id.clone()), a.device.clone());
        Ok(())
    }
    async fn detach_volume(&self, id: &str, volume_id: &str, force: bool) -> HostResult<()> {
        self.note(format!("detach {volume_id} {id} force={force}"));
        if !force && self.mounted.lock().unwrap().contains(volume_id) {
            return Err(HostError::Busy(format!("{volume_id} is mounted")));
        }
        self.plugged
            .lock()
            .unwrap()
            .remove(&(id.to_string(), volume_id.to_string()));
        Ok(())
    }
    async fn warm_guest(&self, id: &str) -> HostResult<Option<WarmGuest>> {
        Ok(match self.guests.lock().unwrap().get(id) {
            Some((GuestState::Running, spec)) if spec.warm => Some(WarmGuest {
                pid: WARM_PID,
                waiting: true,
            }),
            _ => None,
        })
    }
}

#[derive(Default)]
pub struct FakeNetwork {
    pub attached: Mutex<HashMap<String, Nic>>,
    pub nets: Mutex<Vec<HostNet>>,
    pub firewalls: Mutex<HashMap<String, crate::host::Firewall>>,
    pub public: Mutex<HashMap<String, (std::net::Ipv4Addr, std::net::Ipv4Addr)>>,
}

#[async_trait]
impl Network for FakeNetwork {
    async fn ensure_net(&self, net: &HostNet) -> HostResult<()> {
        let mut n = self.nets.lock().unwrap();
        if !n.contains(net) {
            n.push(net.clone());
        }
        Ok(())
    }
    async fn remove_net(&self, net_id: &str) -> HostResult<()> {
        self.nets.lock().unwrap().retain(|n| n.id != net_id);
        Ok(())
    }
    async fn attach(&self, nic: &Nic) -> HostResult<Option<std::path::PathBuf>> {
        self.attached
            .lock()
            .unwrap()
            .insert(nic.instance_id.clone(), nic.clone());
        Ok(Some(format!("/run/netns/fake-{}", nic.instance_id).into()))
    }
    async fn detach(&self, id: &str) -> HostResult<()> {
        self.attached.lock().unwrap().remove(id);
        self.firewalls.lock().unwrap().remove(id);
        self.public.lock().unwrap().remove(id);
        Ok(())
    }
    async fn list(&self) -> HostResult<Vec<String>> {
        Ok(self.attached.lock().unwrap().keys().cloned().collect())
    }
    async fn set_firewall(&self, id: &str, fw: &crate::host::Firewall) -> HostResult<()> {
        self.firewalls
            .lock()
            .unwrap()
            .insert(id.to_string(), fw.clone());
        Ok(())
    }
    async fn map_public_ip(
        &self,
        id: &str,
        public: std::net::Ipv4Addr,
        private: std::net::Ipv4Addr,
    ) -> HostResult<()> {
        self.public
            .lock()
            .unwrap()
            .insert(id.to_string(), (public, private));
        Ok(())
    }
    async fn unmap_public_ip(&self, id: &str) -> HostResult<()> {
        self.public.lock().unwrap().remove(id);
        Ok(())
    }
    async fn teardown(&self) -> HostResult<()> {
        self.nets.lock().unwrap().clear();
        Ok(())
    }
}

/// An in-memory volume pool: volume and snapshot ids with their sizes, and the order of calls.
#[derive(Default)]
pub struct FakeVolumes {
    pub volumes: Mutex<HashMap<String, u32>>,
    pub snapshots: Mutex<HashMap<String, u32>>,
    pub log: Mutex<Vec<String>>,
    /// Volume or snapshot ids whose next step fails.
    pub fail: Mutex<HashSet<String>>,
}

impl FakeVolumes {
    fn step(&self, what: String, id: &str) -> HostResult<()> {
        self.log.lock().unwrap().push(what);
        if self.fail.lock().unwrap().contains(id) {
            return Err(HostError::Driver(format!("{id}: the disk is on fire")));
        }
        Ok(())
    }
}

#[async_trait]
impl Volumes for FakeVolumes {
    async fn create(&self, id: &str, size_gib: u32, from: Option<&str>) -> HostResult<()> {
        self.step(format!("create {id} {size_gib} {from:?}"), id)?;
        if let Some(s) = from {
            if !self.snapshots.lock().unwrap().contains_key(s) {
                return Err(HostError::NotFound(s.to_string()));
            }
        }
        self.volumes
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_insert(size_gib);
        Ok(())
    }
    async fn grow(&self, id: &str, size_gib: u32) -> HostResult<()> {
        self.step(format!("grow {id} {size_gib}"), id)?;
        let mut v = self.volumes.lock().unwrap();
        let cur = v
            .get_mut(id)
            .ok_or_else(|| HostError::NotFound(id.to_string()))?;
        *cur = (*cur).max(size_gib);
        Ok(())
    }
    async fn delete(&self, id: &str) -> HostResult<()> {
        self.step(format!("delete {id}"), id)?;
        self.volumes.lock().unwrap().remove(id);
        Ok(())
    }
    async fn snapshot(&self, id: &str, snapshot_id: &str) -> HostResult<()> {
        self.step(format!("snapshot {id} {snapshot_id}"), snapshot_id)?;
        let size = *self
            .volumes
            .lock()
            .unwrap()
            .get(id)
            .ok_or_else(|| HostError::NotFound(id.to_string()))?;
        self.snapshots
            .lock()
            .unwrap()
            .insert(snapshot_id.to_string(), size);
        Ok(())
    }
    async fn delete_snapshot(&self, snapshot_id: &str) -> HostResult<()> {
        self.step(format!("delete-snapshot {snapshot_id}"), snapshot_id)?;
        self.snapshots.lock().unwrap().remove(snapshot_id);
        Ok(())
    }
    async fn list(&self) -> HostResult<(Vec<String>, Vec<String>)> {
        Ok((
            self.volumes.lock().unwrap().keys().cloned().collect(),
            self.snapshots.lock().unwrap().keys().cloned().collect(),
        ))
    }
    fn path(&self, id: &str) -> std::path::PathBuf {
        format!("/volumes/{id}").into()
    }
    fn snapshot_path(&self, id: &str) -> std::path::PathBuf {
        format!("/snapshots/{id}").into()
    }
}

/// Images made from snapshots: image id → the disk it was made from.
#[derive(Default)]
pub struct FakeImages {
    pub made: Mutex<HashMap<String, std::path::PathBuf>>,
    pub log: Mutex<Vec<String>>,
    /// Image ids whose next step fails.
    pub fail: Mutex<HashSet<String>>,
}

impl FakeImages {
    pub fn rootfs(id: &str) -> std::path::PathBuf {
        format!("/images/{id}/rootfs").into()
    }
}

#[async_trait]
impl crate::host::HostImages for FakeImages {
    async fn import_disk(
        &self,
        id: &str,
        disk: &std::path::Path,
    ) -> HostResult<crate::host::ImportedImage> {
        self.log
            .lock()
            .unwrap()
            .push(format!("import {id} {}", disk.display()));
        if self.fail.lock().unwrap().contains(id) {
            return Err(HostError::Driver(format!(
                "no root filesystem in {}",
                disk.display()
            )));
        }
        self.made
            .lock()
            .unwrap()
            .insert(id.to_string(), disk.to_path_buf());
        Ok(crate::host::ImportedImage {
            rootfs: Self::rootfs(id),
            login_user: "ubuntu".into(),
        })
    }
    async fn remove(&self, id: &str) -> HostResult<()> {
        self.log.lock().unwrap().push(format!("remove {id}"));
        self.made.lock().unwrap().remove(id);
        Ok(())
    }
}
