//! `gureum image build|import|list`: building recipe images into the cache and importing
//! tarballs and disk images, then registering them as AMIs in the data dir's store.

use std::path::Path;

use anyhow::Context;
use gureum_core::images::NewImage;

use crate::cli::ImageCmd;
use crate::setup;

pub fn run(data_dir: &Path, cmd: ImageCmd) -> anyhow::Result<()> {
    let cloud = setup::open_cloud(data_dir, "us-east-1")?;
    match cmd {
        ImageCmd::Build {
            recipe,
            mirror,
            cache_dir,
        } => {
            let id = crate::host::provide_recipe_image(&cloud, &cache_dir, &recipe, mirror)?;
            println!("{id}");
            Ok(())
        }
        ImageCmd::Import {
            file,
            name,
            login_user,
            account,
        } => {
            let dest_root = data_dir.join("images");
            std::fs::create_dir_all(&dest_root)?;
            // A private directory per import; its name is not the AMI id (that comes from the
            // store), so a failed registration leaves only this directory, which we remove.
            let dest = dest_root.join(format!(
                "import-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ));
            let cache = gureum_image::ImageCache::open(&data_dir.join("import-cache"))?;
            let built = cache
                .import(&file, &dest, login_user.as_deref())
                .with_context(|| format!("importing {}", file.display()))?;
            // The guest agent goes into the image itself, so instances of it get their key,
            // hostname and user data like built images do.
            gureum_image::guest::install(&built.rootfs).context("installing the guest agent")?;
            let root_size_gib = (built.size_bytes / (1 << 30) + 2).max(8) as u32;
            let reg = cloud.register_image_sync(
                &account,
                NewImage {
                    name,
                    description: built.description.clone(),
                    login_user: built.login_user.clone(),
                    root_size_gib,
                    rootfs: Some(built.rootfs.display().to_string()),
                    state: gureum_types::ImageState::Available,
                    public: false,
                    owner_alias: None,
                    source: "import".into(),
                    source_instance_id: None,
                    source_image_id: None,
                    tags: vec![],
                },
            );
            match reg {
                Ok(id) => {
                    println!("{id}");
                    Ok(())
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dest);
                    Err(anyhow::anyhow!("{e}"))
                }
            }
        }
        ImageCmd::List => {
            println!("{:<22} {:<10} {:<34} OWNER", "ID", "STATE", "NAME");
            for img in cloud.all_images_sync().map_err(anyhow::Error::msg)? {
                println!(
                    "{:<22} {:<10} {:<34} {}",
                    img.id,
                    img.state,
                    img.name,
                    img.owner_alias.unwrap_or(img.owner_id)
                );
            }
            Ok(())
        }
    }
}
