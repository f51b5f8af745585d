//! This driver behind the host seam: [`Compute`] for [`RuncDriver`] (a spec in the core's
//! terms becomes a [`ContainerSpec`]), and the driver's errors as [`HostError`]s.
//!
//! The trait's methods share names with the driver's own, which take the driver's types; the
//! impl calls those by path so it is plain which one runs.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use gureum_host_api::{
    Compute, GuestSpec, GuestState, HostError, HostResult, VolumeAttachment, WarmGuest,
};

use crate::{ContainerSpec, ContainerState, InjectFile, RuncDriver, RuntimeError};

/// The container the core's spec describes. Injected files belong to the guest's root.
pub fn container_spec(s: &GuestSpec) -> ContainerSpec {
    ContainerSpec {
        id: s.instance_id.clone(),
        image_rootfs: s.image_rootfs.clone(),
        volume_gib: s.volume_gib as u64,
        hostname: s.hostname.clone(),
        vcpus: s.vcpus,
        memory_mib: s.memory_mib,
        pids_max: s.pids_max,
        netns: s.netns.clone(),
        inject: s
            .files
            .iter()
            .map(|f| InjectFile {
                path: f.path.clone(),
                contents: f.contents.clone(),
                mode: f.mode,
                uid: 0,
                gid: 0,
            })
            .collect(),
        warm: s.warm,
    }
}

#[async_trait]
impl Compute for RuncDriver {
    async fn prepare(&self, spec: &GuestSpec) -> HostResult<()> {
        let t = std::time::Instant::now();
        RuncDriver::prepare(self, &container_spec(spec)).await?;
        tracing::debug!(
            instance = %spec.instance_id,
            ms = t.elapsed().as_secs_f64() * 1000.0,
            "volume prepared"
        );
        Ok(())
    }
    async fn start(&self, spec: &GuestSpec) -> HostResult<()> {
        RuncDriver::start(self, &container_spec(spec)).await?;
        self.attach_all(spec).await
    }
    async fn stop(&self, id: &str, force: bool) -> HostResult<()> {
        let timeout = self.inner.opts.stop_timeout;
        Ok(RuncDriver::stop(self, id, timeout, force).await?)
    }
    async fn reboot(&self, spec: &GuestSpec) -> HostResult<()> {
        RuncDriver::reboot(self, &container_spec(spec)).await?;
        self.attach_all(spec).await
    }
    async fn destroy(&self, id: &str) -> HostResult<()> {
        Ok(RuncDriver::destroy(self, id).await?)
    }
    async fn state(&self, id: &str) -> HostResult<GuestState> {
        Ok(match RuncDriver::state(self, id).await? {
            ContainerState::Running => GuestState::Running,
            ContainerState::Stopped => GuestState::Stopped,
            ContainerState::Absent => GuestState::Absent,
        })
    }
    async fn list(&self) -> HostResult<Vec<String>> {
        Ok(RuncDriver::list(self).await?)
    }
    fn has_guest(&self, id: &str) -> bool {
        crate::validate_id(id).is_ok() && self.instance_dir(id).is_dir()
    }
    fn console_output(&self, id: &str, max_bytes: usize) -> HostResult<Vec<u8>> {
        Ok(RuncDriver::console_output(self, id, max_bytes)?)
    }
    async fn snapshot(&self, spec: &GuestSpec, image_id: &str) -> HostResult<PathBuf> {
        let Some(images) = &self.inner.opts.images_dir else {
            return Err(HostError::Unsupported(
                "this host keeps no images made from instances".into(),
            ));
        };
        let dir = images.join(image_id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| HostError::io(format!("create {}", dir.display()), e))?;
        let rootfs = dir.join("rootfs");
        RuncDriver::snapshot(self, &container_spec(spec), &rootfs).await?;
        Ok(rootfs)
    }
    async fn warm_guest(&self, id: &str) -> HostResult<Option<WarmGuest>> {
        Ok(RuncDriver::warm_guest(self, id).await?.map(|w| WarmGuest {
            pid: w.pid,
            waiting: w.waiting,
        }))
    }
    async fn export_root_volume(&self, spec: &GuestSpec, dest: &Path) -> HostResult<()> {
        Ok(RuncDriver::export_root_volume(self, &container_spec(spec), dest).await?)
    }
    /// Also re-reads the size of a volume already attached (a grown volume grows in the guest).
    async fn attach_volume(&self, id: &str, attachment: &VolumeAttachment) -> HostResult<()> {
        Ok(RuncDriver::attach_volume(self, id, attachment).await?)
    }
    async fn detach_volume(&self, id: &str, volume_id: &str, force: bool) -> HostResult<()> {
        Ok(RuncDriver::detach_volume(self, id, volume_id, force).await?)
    }
}

impl RuncDriver {
    /// Shows a started guest the spec's volumes. Every boot needs it (their nodes live in the
    /// container's own `/dev`), and a start repeated after a crash finishes it.
    async fn attach_all(&self, spec: &GuestSpec) -> HostResult<()> {
        for v in &spec.volumes {
            RuncDriver::attach_volume(self, &spec.instance_id, v).await?;
        }
        Ok(())
    }
}

/// Each failure as the seam's kind of it, in the same words as the driver's own error.
impl From<RuntimeError> for HostError {
    fn from(e: RuntimeError) -> HostError {
        match e {
            RuntimeError::MissingTool { program, source } => {
                HostError::MissingTool { program, source }
            }
            RuntimeError::NotRoot(_) => HostError::Unavailable(e.to_string()),
            RuntimeError::Command {
                command,
                status,
                stderr,
            } => HostError::Command {
                command,
                status: Some(status),
                stderr,
            },
            RuntimeError::Io { op, path, source } => HostError::Io {
                op: format!("{op} {}", path.display()),
                source,
            },
            RuntimeError::InvalidSpec(why) => HostError::Invalid {
                what: "container spec".into(),
                why,
            },
            RuntimeError::NotFound(id) => HostError::NotFound(id),
            RuntimeError::Timeout(what) => HostError::Timeout(what),
            RuntimeError::Busy(what) => HostError::Busy(what),
            RuntimeError::Unsupported(what) => HostError::Unsupported(what),
            RuntimeError::OciSpec(_)
            | RuntimeError::Json(_)
            | RuntimeError::Lxcfs(_)
            | RuntimeError::Cgroup(_) => HostError::Driver(e.to_string()),
            RuntimeError::WithCleanup { source, cleanup } => HostError::Cleanup {
                error: Box::new((*source).into()),
                cleanup: Box::new((*cleanup).into()),
            },
            RuntimeError::Multiple(errors) => {
                HostError::Multiple(errors.into_iter().map(HostError::from).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// A host failure reads as it did before the seam had kinds: the text a failed launch
    /// records as its `StateReason` is the driver's own.
    #[test]
    fn errors_keep_their_text_and_get_their_kind() {
        let io_err = || io::Error::from(io::ErrorKind::PermissionDenied);
        let cases = [
            RuntimeError::MissingTool {
                program: "runc".into(),
                source: io::Error::from(io::ErrorKind::NotFound),
            },
            RuntimeError::NotRoot(1000),
            RuntimeError::Command {
                command: "runc start i-1".into(),
                status: "exit status: 1".into(),
                stderr: "container not running".into(),
            },
            RuntimeError::io("mkdir", "/var/lib/gureum/i-1", io_err()),
            RuntimeError::InvalidSpec("vcpus must be at least 1".into()),
            RuntimeError::NotFound("i-1".into()),
            RuntimeError::Timeout("boot".into()),
            RuntimeError::Busy("volume vol-1".into()),
            RuntimeError::Unsupported("cgroup v2".into()),
            RuntimeError::Lxcfs("not mounted".into()),
            RuntimeError::Cgroup("v1".into()),
            RuntimeError::Timeout("boot".into())
                .with_cleanup(Err(RuntimeError::NotFound("i-1".into()))),
            RuntimeError::Multiple(vec![
                RuntimeError::NotFound("i-1".into()),
                RuntimeError::io("rmdir", "/x", io_err()),
            ]),
        ];
        let mut kinds = Vec::new();
        for e in cases {
            let text = e.to_string();
            let host = HostError::from(e);
            assert_eq!(host.to_string(), text);
            kinds.push(match host {
                HostError::MissingTool { .. } => "missing",
                HostError::Unavailable(_) => "unavailable",
                HostError::Command { .. } => "command",
                HostError::Io { .. } => "io",
                HostError::Invalid { .. } => "invalid",
                HostError::NotFound(_) => "not found",
                HostError::Timeout(_) => "timeout",
                HostError::Driver(_) => "driver",
                HostError::Cleanup { .. } => "cleanup",
                HostError::Multiple(_) => "multiple",
                HostError::Unsupported(_) => "unsupported",
                HostError::Busy(_) => "busy",
            });
        }
        assert_eq!(
            kinds,
            [
                "missing",
                "unavailable",
                "command",
                "io",
                "invalid",
                "not found",
                "timeout",
                "busy",
                "unsupported",
                "driver",
                "driver",
                "cleanup",
                "multiple"
            ]
        );
    }

    #[test]
    fn a_spec_becomes_the_container_it_describes() {
        let spec = GuestSpec {
            instance_id: "i-1".into(),
            image_rootfs: "/img".into(),
            volume_gib: 8,
            hostname: "ip-172-31-0-10".into(),
            vcpus: 2,
            memory_mib: 1024,
            pids_max: 8192,
            netns: Some("/run/netns/gr-i-1".into()),
            files: vec![gureum_host_api::GuestFile {
                path: "/var/lib/gureum/instance.env".into(),
                contents: b"X=1".to_vec(),
                mode: 0o644,
            }],
            hypervisor: gureum_host_api::Hypervisor::Container,
            nic: None,
            warm: true,
            volumes: Vec::new(),
        };
        let c = container_spec(&spec);
        assert_eq!(
            (
                c.id.as_str(),
                c.volume_gib,
                c.vcpus,
                c.memory_mib,
                c.pids_max,
                c.warm
            ),
            ("i-1", 8, 2, 1024, 8192, true)
        );
        assert_eq!(c.netns, spec.netns);
        assert_eq!(c.inject.len(), 1);
        assert_eq!(
            (c.inject[0].uid, c.inject[0].gid, c.inject[0].mode),
            (0, 0, 0o644)
        );
        crate::validate_spec(&c).unwrap();
    }
}
