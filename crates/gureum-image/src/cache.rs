//! The image cache: where builds live, how they are keyed and found again, and the atomic
//! hand-over from a temporary build directory to a finished build.
//!
//! Layout under the cache root (default [`DEFAULT_CACHE_DIR`]):
//!
//! ```text
//! builds/<key>/<build-id>/rootfs/      the root filesystem (an overlayfs lowerdir; read-only)
//! builds/<key>/<build-id>/manifest     `dpkg-query -W` of the rootfs
//! builds/<key>/<build-id>/image.meta   name, description, login user, size, date, os-release
//! builds/<key>/current -> <build-id>   the build lookup() returns
//! tmp/<key>.<build-id>.<pid>.<start>/  builds in progress
//! ```
//!
//! A build is made in `tmp/` and becomes visible in two renames: the finished directory into
//! `builds/<key>/`, then a fresh `current` link over the old one. Until the second rename,
//! lookup() sees the previous build (or none), so a failed or killed build is never returned.
//! Temporary directories whose builder process is gone are removed by the next build.
//!
//! A refresh never deletes the build it replaces: instances and AMIs may still use it as their
//! lowerdir. [`ImageCache::remove_build`] is for whoever knows it is unused.

use crate::recipe::Recipe;
use crate::{build, import, sys, BuildOptions, ImageError, IoContext};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where gureum keeps built images unless told otherwise.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/gureum";

/// Bumped when the build procedure changes in a way the recipe table does not show.
const BUILD_FORMAT: &str = "gureum-image build v1";

/// A finished root filesystem, built or imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The cache key (for imports: `import-` and a digest of the file).
    pub key: String,
    /// The root filesystem directory. Never modified after the build: instances use it as an
    /// overlayfs lowerdir.
    pub rootfs: PathBuf,
    /// The build's directory (holding `rootfs/`, `manifest`, `image.meta`); for an import,
    /// the destination itself.
    pub dir: PathBuf,
    /// `debian-12-amd64-20261126` (recipe, architecture, build date in UTC).
    pub name: String,
    /// For the AMI description; mentions the login user.
    pub description: String,
    pub login_user: String,
    /// Disk usage of the rootfs, like `du -sx -B1`.
    pub size_bytes: u64,
    pub created: SystemTime,
    /// The image's os-release PRETTY_NAME.
    pub os_release: String,
    /// The recipe it was built from (`None` for imports).
    pub recipe: Option<String>,
}

impl BuiltImage {
    /// The `dpkg-query -W` manifest recorded next to a build (absent for imports).
    pub fn manifest(&self) -> Option<PathBuf> {
        let m = self.dir.join("manifest");
        (self.recipe.is_some() && m.is_file()).then_some(m)
    }

    fn to_meta(&self) -> String {
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        format!(
            "key={}\nname={}\ndescription={}\nlogin_user={}\nsize_bytes={}\ncreated={}\nos_release={}\nrecipe={}\n",
            one_line(&self.key),
            one_line(&self.name),
            one_line(&self.description),
            one_line(&self.login_user),
            self.size_bytes,
            sys::unix_seconds(self.created),
            one_line(&self.os_release),
            self.recipe.as_deref().map(one_line).unwrap_or_default(),
        )
    }

    fn from_meta(dir: &Path, text: &str) -> Result<BuiltImage, String> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                .map(str::to_string)
                .ok_or_else(|| format!("image.meta lacks {k}"))
        };
        let num = |k: &str| -> Result<u64, String> {
            get(k)?
                .parse()
                .map_err(|_| format!("image.meta has a bad {k}"))
        };
        let recipe = get("recipe")?;
        Ok(BuiltImage {
            key: get("key")?,
            rootfs: dir.join("rootfs"),
            dir: dir.to_path_buf(),
            name: get("name")?,
            description: get("description")?,
            login_user: get("login_user")?,
            size_bytes: num("size_bytes")?,
            created: UNIX_EPOCH + Duration::from_secs(num("created")?),
            os_release: get("os_release")?,
            recipe: (!recipe.is_empty()).then_some(recipe),
        })
    }
}

/// The cache key of a recipe built from `mirror` for `arch`: the recipe's name, the
/// architecture and the first 16 hex digits of a SHA-256 over everything that shapes the bytes
/// of the build (suite, components, sources, packages, hooks, login user, the customisation
/// script, the guest agent, the build procedure's version). Options that do not change the
/// result (refresh, progress) are not part of it.
pub fn cache_key(recipe: &Recipe, mirror: &str, arch: &str) -> String {
    let mut h = Sha256::new();
    let mut field = |name: &str, value: &str| {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(value.as_bytes());
        h.update([0xff]);
    };
    field("format", BUILD_FORMAT);
    field("name", recipe.name);
    field("arch", arch);
    field("suite", recipe.suite);
    field("components", &recipe.components.join(" "));
    field("sources", &recipe.source_lines(mirror).join("\n"));
    field("apt-sources", &recipe.apt_sources_file(mirror).1);
    field("keyring", recipe.keyring);
    field("packages", &recipe.packages.join(","));
    field("hooks", &recipe.hooks.join("\n\0\n"));
    field("login-user", recipe.login_user);
    field("customize", build::CUSTOMIZE_SCRIPT);
    field("build-args", &build::mmdebstrap_fixed_args().join("\n"));
    field("guest", &crate::guest::digest());
    let digest = hex::encode(h.finalize());
    format!("{}-{arch}-{}", recipe.name, &digest[..16])
}

/// An image's name: recipe, architecture and UTC build date, e.g. `debian-12-amd64-20261126`.
pub fn image_name(recipe: &Recipe, arch: &str, built: SystemTime) -> String {
    format!("{}-{arch}-{}", recipe.name, sys::yyyymmdd(built))
}

/// A directory of built images.
#[derive(Debug, Clone)]
pub struct ImageCache {
    root: PathBuf,
}

impl ImageCache {
    /// Opens (creating if needed) the cache rooted at `root`.
    pub fn open(root: &Path) -> Result<ImageCache, ImageError> {
        for d in ["builds", "tmp"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).ctx(|| format!("cannot create {}", p.display()))?;
        }
        Ok(ImageCache {
            root: root.to_path_buf(),
        })
    }

    /// Opens the cache at [`DEFAULT_CACHE_DIR`].
    pub fn open_default() -> Result<ImageCache, ImageError> {
        ImageCache::open(Path::new(DEFAULT_CACHE_DIR))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn key_for(&self, recipe: &Recipe, opts: &BuildOptions) -> String {
        cache_key(
            recipe,
            &recipe.mirror(opts.mirror.as_deref()),
            sys::debian_arch(),
        )
    }

    pub(crate) fn key_dir(&self, key: &str) -> PathBuf {
        self.root.join("builds").join(key)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The finished build of this recipe and options, if one is cached. Reads two small files;
    /// never touches the network, however old the build is (use `refresh` to rebuild).
    pub fn lookup(
        &self,
        recipe: &Recipe,
        opts: &BuildOptions,
    ) -> Result<Option<BuiltImage>, ImageError> {
        let key_dir = self.key_dir(&self.key_for(recipe, opts));
        let current = key_dir.join("current");
        let id = match std::fs::read_link(&current) {
            Ok(id) => id,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ImageError::io(
                    format!("cannot read {}", current.display()),
                    e,
                ))
            }
        };
        let dir = key_dir.join(id);
        let meta_path = dir.join("image.meta");
        let text = match std::fs::read_to_string(&meta_path) {
            Ok(t) => t,
            // The current build was deleted by hand: treat it as not cached.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ImageError::io(
                    format!("cannot read {}", meta_path.display()),
                    e,
                ))
            }
        };
        let image =
            BuiltImage::from_meta(&dir, &text).map_err(|detail| ImageError::CorruptCache {
                path: meta_path.clone(),
                detail,
            })?;
        if !image.rootfs.is_dir() {
            return Ok(None);
        }
        Ok(Some(image))
    }

    /// Builds the recipe (blocking; needs root and the mirror), unless a finished build is
    /// cached and `refresh` is not set, in which case that build is returned at once.
    ///
    /// Atomic: the build happens in a temporary directory and is renamed into place; a failed
    /// or killed build leaves nothing lookup() would return, and the next build removes the
    /// temporary directories of builders that no longer run.
    pub fn build(&self, recipe: &Recipe, opts: &BuildOptions) -> Result<BuiltImage, ImageError> {
        if !opts.refresh {
            if let Some(found) = self.lookup(recipe, opts)? {
                return Ok(found);
            }
        }
        build::build(self, recipe, opts)
    }

    /// Records a finished build made in `tmp` (holding rootfs/, manifest) as the key's current
    /// build: writes image.meta, renames the directory into builds/<key>/<id>, then replaces
    /// the `current` link.
    pub(crate) fn commit(
        &self,
        tmp: &Path,
        id: &str,
        image: &BuiltImage,
    ) -> Result<BuiltImage, ImageError> {
        let meta = tmp.join("image.meta");
        std::fs::write(&meta, image.to_meta())
            .ctx(|| format!("cannot write {}", meta.display()))?;
        sync_filesystem(tmp);
        let key_dir = self.key_dir(&image.key);
        std::fs::create_dir_all(&key_dir).ctx(|| format!("cannot create {}", key_dir.display()))?;
        let dir = key_dir.join(id);
        std::fs::rename(tmp, &dir).ctx(|| format!("cannot move the build to {}", dir.display()))?;
        let link_tmp = key_dir.join(format!(".current.{}", sys::owner_tag()));
        let _ = std::fs::remove_file(&link_tmp);
        std::os::unix::fs::symlink(id, &link_tmp)
            .ctx(|| format!("cannot create {}", link_tmp.display()))?;
        std::fs::rename(&link_tmp, key_dir.join("current"))
            .ctx(|| format!("cannot update {}/current", key_dir.display()))?;
        if let Ok(d) = std::fs::File::open(&key_dir) {
            let _ = d.sync_all();
        }
        let mut done = image.clone();
        done.dir = dir.clone();
        done.rootfs = dir.join("rootfs");
        Ok(done)
    }

    /// Removes temporary build directories whose builder process no longer runs (killed,
    /// crashed, or the machine rebooted). Builds call this before starting; a host may call it
    /// at start-up.
    pub fn clean_stale_builds(&self) -> Result<usize, ImageError> {
        let tmp = self.tmp_dir();
        let Ok(entries) = std::fs::read_dir(&tmp) else {
            return Ok(0);
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // <key>.<build-id>.<pid>.<start>: the owner tag is the last two fields.
            let mut fields = name.rsplitn(3, '.');
            let (Some(start), Some(pid)) = (fields.next(), fields.next()) else {
                continue;
            };
            if !sys::owner_alive(&format!("{pid}.{start}")) {
                sys::remove_tree(&entry.path())?;
                removed += 1;
            }
        }
        // Half-made `current` links of killed builds.
        if let Ok(keys) = std::fs::read_dir(self.root.join("builds")) {
            for key in keys.flatten() {
                for e in std::fs::read_dir(key.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Some(tag) = name.strip_prefix(".current.") {
                        if !sys::owner_alive(tag) {
                            let _ = std::fs::remove_file(e.path());
                        }
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Every finished build in the cache (current or not), newest first.
    pub fn builds(&self) -> Result<Vec<BuiltImage>, ImageError> {
        let mut out = Vec::new();
        let builds = self.root.join("builds");
        for key in std::fs::read_dir(&builds)
            .ctx(|| format!("cannot read {}", builds.display()))?
            .flatten()
        {
            for b in std::fs::read_dir(key.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                // `current` is a link to one of the builds, not a build.
                if b.file_type().map_or(true, |t| !t.is_dir()) {
                    continue;
                }
                let dir = b.path();
                if let Ok(text) = std::fs::read_to_string(dir.join("image.meta")) {
                    if let Ok(image) = BuiltImage::from_meta(&dir, &text) {
                        out.push(image);
                    }
                }
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(b.dir.cmp(&a.dir)));
        Ok(out)
    }

    /// Deletes one build. The caller guarantees no instance or AMI still uses its rootfs.
    /// If it is its key's current build, the key has no cached build afterwards.
    pub fn remove_build(&self, image: &BuiltImage) -> Result<(), ImageError> {
        let builds = self.root.join("builds");
        if !image.dir.starts_with(&builds) || image.dir.parent() == Some(builds.as_path()) {
            return Err(ImageError::io(
                format!("{} is not a build in this cache", image.dir.display()),
                std::io::Error::other("refusing to delete"),
            ));
        }
        let key_dir = image.dir.parent().unwrap_or(&builds).to_path_buf();
        let current = key_dir.join("current");
        if std::fs::read_link(&current).ok().as_deref() == image.dir.file_name().map(Path::new) {
            let _ = std::fs::remove_file(&current);
        }
        sys::remove_tree(&image.dir)
    }

    /// Imports a rootfs tarball or disk image into `dest` (which must not exist). See the
    /// crate docs for formats; on any error `dest` is left absent.
    pub fn import(
        &self,
        file: &Path,
        dest: &Path,
        login_user: Option<&str>,
    ) -> Result<BuiltImage, ImageError> {
        import::import(file, dest, login_user)
    }
}

/// Flushes a finished build to disk before it is published (`sync -f` on its filesystem), so a
/// power cut after the rename cannot leave a published build with empty files. Best effort:
/// without `sync` the build is still correct, just not yet durable.
fn sync_filesystem(dir: &Path) {
    let _ = std::process::Command::new("sync")
        .arg("-f")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::recipe;

    #[test]
    fn keys_are_stable_and_follow_what_shapes_the_build() {
        let r = recipe("debian-12").unwrap();
        let k = cache_key(r, r.default_mirror, "amd64");
        assert_eq!(k, cache_key(r, r.default_mirror, "amd64"));
        assert!(k.starts_with("debian-12-amd64-"), "{k}");
        assert_eq!(k.len(), "debian-12-amd64-".len() + 16);
        assert_ne!(k, cache_key(r, "http://10.0.0.1/debian", "amd64"), "mirror");
        assert_ne!(k, cache_key(r, r.default_mirror, "arm64"), "arch");

        let mut more = r.clone();
        more.packages = &["systemd-sysv", "openssh-server", "nginx"];
        assert_ne!(k, cache_key(&more, r.default_mirror, "amd64"), "packages");
        let mut hooked = r.clone();
        hooked.hooks = &["touch \"$1/etc/hooked\""];
        assert_ne!(k, cache_key(&hooked, r.default_mirror, "amd64"), "hooks");
        let mut suite = r.clone();
        suite.suite = "trixie";
        assert_ne!(k, cache_key(&suite, r.default_mirror, "amd64"), "suite");
        let mut user = r.clone();
        user.login_user = "debian";
        assert_ne!(k, cache_key(&user, r.default_mirror, "amd64"), "login user");
        let d11 = recipe("debian-11").unwrap();
        assert_ne!(k, cache_key(d11, d11.default_mirror, "amd64"));
    }

    #[test]
    fn options_that_do_not_change_the_bytes_share_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ImageCache::open(dir.path()).unwrap();
        let r = recipe("debian-12").unwrap();
        let plain = BuildOptions::default();
        let refresh = BuildOptions {
            refresh: true,
            progress: crate::ProgressMode::Quiet,
            ..BuildOptions::default()
        };
        let same_mirror = BuildOptions {
            mirror: Some("http://deb.debian.org/debian/".into()),
            ..BuildOptions::default()
        };
        assert_eq!(cache.key_for(r, &plain), cache.key_for(r, &refresh));
        assert_eq!(cache.key_for(r, &plain), cache.key_for(r, &same_mirror));
    }

    #[test]
    fn names_carry_recipe_arch_and_date() {
        let r = recipe("debian-12").unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_795_675_739);
        assert_eq!(image_name(r, "amd64", t), "debian-12-amd64-20261126");
    }

    fn fake_build(cache: &ImageCache, r: &Recipe, id: &str) -> BuiltImage {
        let key = cache.key_for(r, &BuildOptions::default());
        let tmp = cache
            .tmp_dir()
            .join(format!("{key}.{id}.{}", sys::owner_tag()));
        std::fs::create_dir_all(tmp.join("rootfs/etc")).unwrap();
        let image = BuiltImage {
            key,
            rootfs: tmp.join("rootfs"),
            dir: tmp.clone(),
            name: "debian-12-amd64-20261126".into(),
            description: "Debian 12 (bookworm) amd64, built by gureum from Debian packages; login user: admin".into(),
            login_user: "admin".into(),
            size_bytes: 123,
            created: UNIX_EPOCH + Duration::from_secs(1_795_675_739),
            os_release: "Debian GNU/Linux 12 (bookworm)".into(),
            recipe: Some(r.name.into()),
        };
        cache.commit(&tmp, id, &image).unwrap()
    }

    #[test]
    fn lookup_finds_the_current_build_and_refresh_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ImageCache::open(dir.path()).unwrap();
        let r = recipe("debian-12").unwrap();
        let opts = BuildOptions::default();
        assert_eq!(cache.lookup(r, &opts).unwrap(), None);
        let first = fake_build(&cache, r, "20261126T000000Z-a");
        assert_eq!(cache.lookup(r, &opts).unwrap().as_ref(), Some(&first));
        assert!(first.rootfs.ends_with("20261126T000000Z-a/rootfs"));
        let second = fake_build(&cache, r, "20261126T000001Z-b");
        assert_eq!(cache.lookup(r, &opts).unwrap().as_ref(), Some(&second));
        assert!(
            first.rootfs.is_dir(),
            "a refresh must not delete the build instances use"
        );
        assert_eq!(cache.builds().unwrap().len(), 2);
        cache.remove_build(&second).unwrap();
        assert_eq!(cache.lookup(r, &opts).unwrap(), None);
        assert!(first.rootfs.is_dir());
        // Another mirror is another key.
        let other = BuildOptions {
            mirror: Some("http://10.0.0.1/debian".into()),
            ..BuildOptions::default()
        };
        assert_eq!(cache.lookup(r, &other).unwrap(), None);
    }

    #[test]
    fn unfinished_and_stale_builds_are_invisible_and_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ImageCache::open(dir.path()).unwrap();
        let r = recipe("debian-12").unwrap();
        let key = cache.key_for(r, &BuildOptions::default());
        // A killed builder's directory (a pid that is not running) and a live one's (ours).
        let stale = cache.tmp_dir().join(format!("{key}.x.999999999.1"));
        let live = cache
            .tmp_dir()
            .join(format!("{key}.y.{}", sys::owner_tag()));
        for d in [&stale, &live] {
            std::fs::create_dir_all(d.join("rootfs/etc")).unwrap();
            std::fs::write(d.join("image.meta"), "key=whatever\n").unwrap();
        }
        assert_eq!(cache.lookup(r, &BuildOptions::default()).unwrap(), None);
        assert_eq!(cache.clean_stale_builds().unwrap(), 1);
        assert!(!stale.exists());
        assert!(live.exists());
    }

    #[test]
    fn a_corrupt_meta_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ImageCache::open(dir.path()).unwrap();
        let r = recipe("debian-12").unwrap();
        let b = fake_build(&cache, r, "id1");
        std::fs::write(b.dir.join("image.meta"), "key=x\n").unwrap();
        let err = cache.lookup(r, &BuildOptions::default()).unwrap_err();
        assert!(matches!(err, ImageError::CorruptCache { .. }), "{err}");
    }
}
