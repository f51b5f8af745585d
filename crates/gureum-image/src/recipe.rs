//! The recipe table: which distributions gureum builds, from which mirror and suites, with
//! which packages, and how their apt sources look inside the image. Pure data plus rendering.

/// The distribution family of a recipe (decides suite names, keyrings and source layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distro {
    Debian,
    Ubuntu,
}

/// A buildable image definition. Everything that changes the built bytes is here (or in the
/// build's customisation script and the guest agent), because all of it goes into the cache key.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The name users pass: `debian-12`.
    pub name: &'static str,
    /// Human title for descriptions: `Debian 12 (bookworm)`.
    pub title: &'static str,
    pub distro: Distro,
    /// The release's suite (code name): `bookworm`.
    pub suite: &'static str,
    /// Archive components used at build time and in the image's sources.
    pub components: &'static [&'static str],
    /// The mirror used when [`crate::BuildOptions::mirror`] is not set.
    pub default_mirror: &'static str,
    /// The security archive, added (suite `<suite>-security`) only when building from the
    /// default mirror: a private mirror usually means the public security archive is
    /// unreachable too.
    pub security_mirror: Option<&'static str>,
    /// The host keyring mmdebstrap verifies the archive with, and the host package providing it.
    pub keyring: &'static str,
    pub keyring_package: &'static str,
    /// Whether the image gets deb822 sources (`/etc/apt/sources.list.d/*.sources`, Debian 12's
    /// default) instead of a one-line `/etc/apt/sources.list`.
    pub deb822_sources: bool,
    /// The default login user, like Debian's cloud images (`admin`) and Ubuntu's (`ubuntu`).
    pub login_user: &'static str,
    /// Packages installed on top of mmdebstrap's `apt` variant (Essential packages and apt).
    pub packages: &'static [&'static str],
    /// Extra customisation, run after the common one as `sh -c HOOK sh ROOTFS` on the host.
    pub hooks: &'static [&'static str],
    /// Whether this recipe is exercised by the test suite on the development machine.
    pub tested: bool,
    /// Whether gureum's guest agent is installed (cloud-init images configure themselves from
    /// the metadata service instead).
    pub guest_agent: bool,
    /// Whether the image carries a kernel and boots as a VM (`gureum:hypervisor=vm`).
    pub vm: bool,
}

/// The server package set, plus whatever a variant adds (one list, so the variants cannot drift
/// apart; the order is the one the cache keys were made with).
macro_rules! server_packages {
    ($($extra:literal),* $(,)?) => {
        &[
            "systemd-sysv",
            "dbus",
            "libpam-systemd",
            "openssh-server",
            "sudo",
            "python3",
            "python3-yaml",
            "curl",
            "ca-certificates",
            "iproute2",
            "iputils-ping",
            "less",
            "vim-tiny",
            "procps",
            "netbase",
            "tzdata",
            "passwd",
            "adduser",
            "hostname",
            "gzip",
            // mkfs.ext4 and fsck for EBS volumes (no longer Essential since Debian 12).
            "e2fsprogs",
            $($extra,)*
        ]
    };
}

/// The server package set every recipe installs. No recommends (mmdebstrap's default), so
/// anything a server needs at run time is listed: dbus and libpam-systemd for logind sessions
/// and hostnamectl, tzdata and netbase for a sane userland, passwd/adduser for user management.
const SERVER_PACKAGES: &[&str] = server_packages!();

/// Boot work that finds nothing to do in a system container, where every exec costs: the
/// generators for disks, encryption, hibernation, boot loaders, fstab and kernel command-line
/// units (run at every boot and every daemon-reload); remounting a root the container runtime
/// mounted; static device nodes in a /dev the runtime made; boot-time sysusers (packages run
/// it themselves when they add users); runlevel records in wtmp. The user manager a login
/// starts skips the XDG autostart (desktop) and environment.d generators. A VM image keeps
/// all of them: there they have disks and a kernel to look at.
const CONTAINER_HOOK: &str = concat!(
    "set -e; cd \"$1/etc/systemd\"; ",
    "mkdir -p system-generators user-generators user-environment-generators; ",
    "for g in systemd-cryptsetup-generator systemd-veritysetup-generator ",
    "systemd-integritysetup-generator systemd-gpt-auto-generator ",
    "systemd-hibernate-resume-generator systemd-bless-boot-generator systemd-fstab-generator ",
    "systemd-debug-generator systemd-run-generator systemd-system-update-generator; do ",
    "ln -sf /dev/null \"system-generators/$g\"; done; ",
    "ln -sf /dev/null user-generators/systemd-xdg-autostart-generator; ",
    "ln -sf /dev/null user-environment-generators/30-systemd-environment-d-generator; ",
    "chroot \"$1\" systemctl mask --quiet systemd-remount-fs.service ",
    "systemd-tmpfiles-setup-dev.service systemd-sysusers.service ",
    "systemd-update-utmp-runlevel.service; ",
    // Two generators replaced by what they would generate in a container, as static links:
    // the console's getty, and rc-local.service (which runs only if /etc/rc.local is
    // executable, a condition systemd checks itself).
    "ln -sf /dev/null system-generators/systemd-getty-generator; ",
    "ln -sf /dev/null system-generators/systemd-rc-local-generator; ",
    "chroot \"$1\" systemctl enable --quiet console-getty.service; ",
    "if [ -f \"$1/lib/systemd/system/rc-local.service\" ]; then mkdir -p system/multi-user.target.wants; ",
    "ln -sf /lib/systemd/system/rc-local.service system/multi-user.target.wants/rc-local.service; fi",
);

const CONTAINER_HOOKS: &[&str] = &[CONTAINER_HOOK];

/// Ubuntu enables systemd-resolved and points /etc/resolv.conf at its stub; the host writes a
/// plain resolv.conf into every instance instead, so resolved is switched off.
const UBUNTU_HOOKS: &[&str] = &[
    "chroot \"$1\" systemctl disable systemd-resolved.service >/dev/null 2>&1 || true",
    CONTAINER_HOOK,
];

/// What a VM image adds to the server set: a kernel made for virtual machines (virtio built
/// in or in its initramfs), the initramfs tooling and udev that boot it, and e2fsprogs, whose
/// resize2fs grows the root file system to the volume's size.
const VM_PACKAGES: &[&str] = server_packages!(
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "udev",
    "e2fsprogs",
);

/// The VM set plus Debian's cloud-init.
const CLOUD_PACKAGES: &[&str] = server_packages!(
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "udev",
    "e2fsprogs",
    "cloud-init",
);

/// Installs the seed unit (instance files and network from the host's seed disk) and enables
/// systemd-networkd, which applies the seed's static network (a VPC has no DHCP server).
const VM_SEED_HOOK: &str = concat!(
    "set -e; mkdir -p \"$1/usr/local/lib/gureum\" \"$1/etc/systemd/system/sysinit.target.wants\"; ",
    "cat > \"$1/usr/local/lib/gureum/gureum-vm-seed\" <<'GUREUM_EOF'\n",
    include_str!("guest/gureum-vm-seed.sh"),
    "GUREUM_EOF\n",
    "chmod 755 \"$1/usr/local/lib/gureum/gureum-vm-seed\"; ",
    "cat > \"$1/etc/systemd/system/gureum-vm-seed.service\" <<'GUREUM_EOF'\n",
    include_str!("guest/gureum-vm-seed.service"),
    "GUREUM_EOF\n",
    "ln -sf /etc/systemd/system/gureum-vm-seed.service \"$1/etc/systemd/system/sysinit.target.wants/gureum-vm-seed.service\"; ",
    "chroot \"$1\" systemctl enable systemd-networkd.service >/dev/null 2>&1; ",
    "chroot \"$1\" systemctl enable serial-getty@ttyS0.service >/dev/null 2>&1 || true",
);

const VM_HOOKS: &[&str] = &[VM_SEED_HOOK];

/// cloud-init reads only the EC2 datasource (gureum's metadata service) and leaves the network
/// to the seed's static configuration.
const CLOUD_HOOKS: &[&str] = &[
    VM_SEED_HOOK,
    "printf '%s\\n' 'datasource_list: [ Ec2, None ]' 'datasource:' '  Ec2:' '    strict_id: false' '    metadata_urls: [ \"http://169.254.169.254\" ]' '    max_wait: 60' 'network:' '  config: disabled' > \"$1/etc/cloud/cloud.cfg.d/99-gureum.cfg\"",
    // The login user is `admin`, as on Debian's AWS images (the package's default is `debian`).
    "sed -i 's/^\\(  *name: \\)debian$/\\1admin/' \"$1/etc/cloud/cloud.cfg\"",
];

static RECIPES: [Recipe; 6] = [
    Recipe {
        name: "debian-12",
        title: "Debian 12 (bookworm)",
        distro: Distro::Debian,
        suite: "bookworm",
        components: &["main"],
        default_mirror: "http://deb.debian.org/debian",
        security_mirror: Some("http://deb.debian.org/debian-security"),
        keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
        keyring_package: "debian-archive-keyring",
        deb822_sources: true,
        login_user: "admin",
        packages: SERVER_PACKAGES,
        hooks: CONTAINER_HOOKS,
        tested: true,
        guest_agent: true,
        vm: false,
    },
    Recipe {
        name: "debian-11",
        title: "Debian 11 (bullseye)",
        distro: Distro::Debian,
        suite: "bullseye",
        components: &["main"],
        default_mirror: "http://deb.debian.org/debian",
        security_mirror: Some("http://deb.debian.org/debian-security"),
        keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
        keyring_package: "debian-archive-keyring",
        deb822_sources: false,
        login_user: "admin",
        packages: SERVER_PACKAGES,
        hooks: CONTAINER_HOOKS,
        tested: false,
        guest_agent: true,
        vm: false,
    },
    Recipe {
        name: "ubuntu-22.04",
        title: "Ubuntu 22.04 LTS (jammy)",
        distro: Distro::Ubuntu,
        suite: "jammy",
        components: &["main", "restricted", "universe"],
        default_mirror: "http://archive.ubuntu.com/ubuntu",
        security_mirror: Some("http://security.ubuntu.com/ubuntu"),
        keyring: "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
        keyring_package: "ubuntu-keyring",
        deb822_sources: false,
        login_user: "ubuntu",
        packages: SERVER_PACKAGES,
        hooks: UBUNTU_HOOKS,
        tested: false,
        guest_agent: true,
        vm: false,
    },
    Recipe {
        name: "ubuntu-18.04",
        title: "Ubuntu 18.04 LTS (bionic)",
        distro: Distro::Ubuntu,
        suite: "bionic",
        components: &["main", "restricted", "universe"],
        default_mirror: "http://archive.ubuntu.com/ubuntu",
        security_mirror: Some("http://security.ubuntu.com/ubuntu"),
        keyring: "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
        keyring_package: "ubuntu-keyring",
        deb822_sources: false,
        login_user: "ubuntu",
        packages: SERVER_PACKAGES,
        hooks: UBUNTU_HOOKS,
        tested: false,
        guest_agent: true,
        vm: false,
    },
    Recipe {
        name: "debian-12-vm",
        title: "Debian 12 (bookworm) for VMs",
        distro: Distro::Debian,
        suite: "bookworm",
        components: &["main"],
        default_mirror: "http://deb.debian.org/debian",
        security_mirror: Some("http://deb.debian.org/debian-security"),
        keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
        keyring_package: "debian-archive-keyring",
        deb822_sources: true,
        login_user: "admin",
        packages: VM_PACKAGES,
        hooks: VM_HOOKS,
        tested: true,
        guest_agent: true,
        vm: true,
    },
    Recipe {
        name: "debian-12-cloud",
        title: "Debian 12 (bookworm) with cloud-init, for VMs",
        distro: Distro::Debian,
        suite: "bookworm",
        components: &["main"],
        default_mirror: "http://deb.debian.org/debian",
        security_mirror: Some("http://deb.debian.org/debian-security"),
        keyring: "/usr/share/keyrings/debian-archive-keyring.gpg",
        keyring_package: "debian-archive-keyring",
        deb822_sources: true,
        login_user: "admin",
        packages: CLOUD_PACKAGES,
        hooks: CLOUD_HOOKS,
        tested: true,
        guest_agent: false,
        vm: true,
    },
];

/// Every recipe gureum can build.
pub fn recipes() -> &'static [Recipe] {
    &RECIPES
}

/// The recipe called `name` (`debian-12`, `debian-11`, `ubuntu-22.04`, `ubuntu-18.04`).
pub fn recipe(name: &str) -> Option<&'static Recipe> {
    RECIPES.iter().find(|r| r.name == name)
}

/// One apt source: a URI, its suites, and the recipe's components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub uri: String,
    pub suites: Vec<String>,
}

impl Recipe {
    /// The mirror a build uses: the option if given (without trailing slashes, so
    /// `http://m/debian/` and `http://m/debian` share a cache key), else the default.
    pub(crate) fn mirror(&self, opt: Option<&str>) -> String {
        opt.map(|m| m.trim().trim_end_matches('/'))
            .filter(|m| !m.is_empty())
            .unwrap_or(self.default_mirror)
            .to_string()
    }

    /// The apt sources used to build and configured in the image.
    pub(crate) fn sources(&self, mirror: &str) -> Vec<Source> {
        let mut sources = vec![Source {
            uri: mirror.to_string(),
            suites: vec![self.suite.to_string(), format!("{}-updates", self.suite)],
        }];
        if mirror == self.default_mirror {
            if let Some(security) = self.security_mirror {
                sources.push(Source {
                    uri: security.to_string(),
                    suites: vec![format!("{}-security", self.suite)],
                });
            }
        }
        sources
    }

    /// One-line `deb` entries, as mmdebstrap takes them on its command line.
    pub(crate) fn source_lines(&self, mirror: &str) -> Vec<String> {
        let components = self.components.join(" ");
        let mut lines = Vec::new();
        for s in self.sources(mirror) {
            for suite in &s.suites {
                lines.push(format!("deb {} {suite} {components}", s.uri));
            }
        }
        lines
    }

    /// The image's apt configuration: `(path inside the image, content)`.
    pub(crate) fn apt_sources_file(&self, mirror: &str) -> (&'static str, String) {
        if self.deb822_sources {
            let stanzas: Vec<String> = self
                .sources(mirror)
                .iter()
                .map(|s| {
                    format!(
                        "Types: deb\nURIs: {}\nSuites: {}\nComponents: {}\nSigned-By: {}\n",
                        s.uri,
                        s.suites.join(" "),
                        self.components.join(" "),
                        self.keyring
                    )
                })
                .collect();
            ("etc/apt/sources.list.d/debian.sources", stanzas.join("\n"))
        } else {
            let mut text = self.source_lines(mirror).join("\n");
            text.push('\n');
            ("etc/apt/sources.list", text)
        }
    }

    /// `Debian` or `Ubuntu`, for descriptions.
    pub(crate) fn vendor(&self) -> &'static str {
        match self.distro {
            Distro::Debian => "Debian",
            Distro::Ubuntu => "Ubuntu",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_the_promised_recipes() {
        let names: Vec<&str> = recipes().iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            [
                "debian-12",
                "debian-11",
                "ubuntu-22.04",
                "ubuntu-18.04",
                "debian-12-vm",
                "debian-12-cloud"
            ]
        );
        let d12 = recipe("debian-12").unwrap();
        assert_eq!((d12.suite, d12.login_user), ("bookworm", "admin"));
        assert_eq!(recipe("debian-11").unwrap().suite, "bullseye");
        assert_eq!(recipe("ubuntu-22.04").unwrap().suite, "jammy");
        assert_eq!(recipe("ubuntu-18.04").unwrap().suite, "bionic");
        assert!(recipe("debian-13").is_none());
        for r in recipes() {
            for p in [
                "systemd-sysv",
                "openssh-server",
                "sudo",
                "python3",
                "python3-yaml",
            ] {
                assert!(r.packages.contains(&p), "{} lacks {p}", r.name);
            }
            for p in ["ifupdown", "isc-dhcp-client"] {
                assert!(!r.packages.contains(&p), "{} must not install {p}", r.name);
            }
            // cloud-init and gureum's agent would both configure the instance.
            assert_eq!(
                r.packages.contains(&"cloud-init"),
                !r.guest_agent,
                "{}",
                r.name
            );
            assert_eq!(
                r.packages.contains(&"linux-image-cloud-amd64"),
                r.vm,
                "{}",
                r.name
            );
            assert!(r.packages.contains(&"vim-tiny") || r.packages.contains(&"nano"));
        }
    }

    #[test]
    fn container_images_skip_boot_work_only_a_vm_needs() {
        for r in recipes() {
            let trimmed = r.hooks.contains(&CONTAINER_HOOK);
            assert_eq!(trimmed, !r.vm, "{}", r.name);
        }
        // A VM keeps its fstab and disk generators.
        assert!(CONTAINER_HOOK.contains("systemd-fstab-generator"));
    }

    #[test]
    fn default_mirror_adds_updates_and_security() {
        let r = recipe("debian-12").unwrap();
        let lines = r.source_lines(&r.mirror(None));
        assert_eq!(
            lines,
            [
                "deb http://deb.debian.org/debian bookworm main",
                "deb http://deb.debian.org/debian bookworm-updates main",
                "deb http://deb.debian.org/debian-security bookworm-security main",
            ]
        );
        let (path, text) = r.apt_sources_file(&r.mirror(None));
        assert_eq!(path, "etc/apt/sources.list.d/debian.sources");
        assert!(text.contains("Suites: bookworm bookworm-updates\n"));
        assert!(text.contains("URIs: http://deb.debian.org/debian-security\n"));
        assert!(text.contains("Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"));
    }

    #[test]
    fn a_private_mirror_is_used_alone_and_normalised() {
        let r = recipe("debian-11").unwrap();
        let m = r.mirror(Some("http://10.0.0.1:3142/debian/"));
        assert_eq!(m, "http://10.0.0.1:3142/debian");
        assert_eq!(r.mirror(Some("  ")), r.default_mirror);
        let (path, text) = r.apt_sources_file(&m);
        assert_eq!(path, "etc/apt/sources.list");
        assert_eq!(
            text,
            "deb http://10.0.0.1:3142/debian bullseye main\n\
             deb http://10.0.0.1:3142/debian bullseye-updates main\n"
        );
        let u = recipe("ubuntu-22.04").unwrap();
        assert_eq!(
            u.source_lines(u.default_mirror)[2],
            "deb http://security.ubuntu.com/ubuntu jammy-security main restricted universe"
        );
    }
}
