//! The host's images made from EBS snapshots ([`HostImages`]): gureum-image's import of raw
//! disks (the one `gureum image import` uses) makes the root filesystem, and the guest agent
//! goes into it, as into every imported image. Each image has its own directory in the data
//! dir's images directory, `<images>/<ami-id>/rootfs` like `CreateImage`'s copies, so a VM's
//! base disk made beside the rootfs (`<ami-id>/vm/`) goes with it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use gureum_core::host::{HostError, HostImages, HostResult, ImportedImage};
use gureum_types::ImageId;

/// Images made on this host, under `dir`.
pub struct ImageStore {
    dir: PathBuf,
    /// gureum-image's cache directory for imports (`gureum image import` uses the same).
    import_cache: PathBuf,
}

impl ImageStore {
    pub fn for_data_dir(data_dir: &Path) -> ImageStore {
        ImageStore {
            dir: data_dir.join("images"),
            import_cache: data_dir.join("import-cache"),
        }
    }

    /// The image's own directory; an id that is not an AMI id names no path.
    fn image_dir(&self, image_id: &str) -> HostResult<PathBuf> {
        let id = ImageId::parse(image_id).ok_or_else(|| HostError::Invalid {
            what: "image id".into(),
            why: format!("{image_id} is not an AMI id"),
        })?;
        Ok(self.dir.join(id.as_str()))
    }
}

fn remove_dir(dir: &Path) -> HostResult<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(HostError::io(format!("remove {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

fn failed(e: impl std::fmt::Display) -> HostError {
    HostError::Driver(e.to_string())
}

#[async_trait]
impl HostImages for ImageStore {
    async fn import_disk(&self, image_id: &str, disk: &Path) -> HostResult<ImportedImage> {
        let dir = self.image_dir(image_id)?;
        let (disk, cache) = (disk.to_path_buf(), self.import_cache.clone());
        tokio::task::spawn_blocking(move || {
            // A root an interrupted import left (renamed into place, its guest agent perhaps
            // not installed yet, never recorded) is made again from scratch.
            remove_dir(&dir)?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| HostError::io(format!("create {}", dir.display()), e))?;
            let rootfs = dir.join("rootfs");
            let made = gureum_image::ImageCache::open(&cache)
                .and_then(|c| c.import(&disk, &rootfs, None))
                .and_then(|built| {
                    gureum_image::guest::install(&built.rootfs)
                        .map_err(|source| gureum_image::ImageError::Io {
                            context: "installing the guest agent".into(),
                            source,
                        })
                        .map(|()| built)
                });
            match made {
                Ok(built) => Ok(ImportedImage {
                    rootfs: built.rootfs,
                    login_user: built.login_user,
                }),
                Err(e) => {
                    let _ = remove_dir(&dir);
                    Err(failed(e))
                }
            }
        })
        .await
        .map_err(failed)?
    }

    async fn remove(&self, image_id: &str) -> HostResult<()> {
        let dir = self.image_dir(image_id)?;
        tokio::task::spawn_blocking(move || remove_dir(&dir))
            .await
            .map_err(failed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removing is idempotent and confined to the image's own directory.
    #[tokio::test]
    async fn remove_takes_the_images_directory_only() {
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::for_data_dir(data.path());
        let id = "ami-0123456789abcdef0";
        let rootfs = data.path().join("images").join(id).join("rootfs/etc");
        std::fs::create_dir_all(&rootfs).unwrap();
        std::fs::create_dir_all(data.path().join("images/ami-0123456789abcdef1")).unwrap();
        store.remove(id).await.unwrap();
        store.remove(id).await.unwrap();
        assert!(!data.path().join("images").join(id).exists());
        assert!(data.path().join("images/ami-0123456789abcdef1").exists());
        assert!(store.remove("../../etc").await.is_err());
    }

    /// What cannot be imported leaves nothing behind and says why.
    #[tokio::test]
    async fn a_disk_without_a_root_filesystem_leaves_nothing() {
        if !gureum_image::is_root() {
            eprintln!("skipped: importing needs root");
            return;
        }
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::for_data_dir(data.path());
        let disk = data.path().join("snap");
        std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
        let id = "ami-0123456789abcdef0";
        let e = store.import_disk(id, &disk).await.unwrap_err();
        assert!(!e.to_string().is_empty());
        assert!(!data.path().join("images").join(id).exists());
    }
}
