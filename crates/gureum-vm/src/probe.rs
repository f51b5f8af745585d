//! The accelerator probe: KVM is used only if a real test guest boots under it within a
//! deadline. A `/dev/kvm` that opens is not enough: on nested hosts it can open and even run
//! a few instructions while a Linux guest hangs for ever (this project's own development host
//! does exactly that: the stub below boots under KVM, the kernel does not).
//!
//! The test guest is the image's own kernel booted without a root disk: it runs through CPU
//! set-up, interrupts, timers and the serial console and then panics (`VFS: Unable to mount
//! root fs`), which with `panic=-1 -no-reboot` ends QEMU. Without a kernel, a 77-byte
//! multiboot stub that prints a line on the serial port and exits through `isa-debug-exit`
//! checks that the accelerator runs guest code at all.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::qemu::Accel;

/// How long a test guest may take. TCG boots the Debian cloud kernel to its panic in about 2 s
/// on this project's 2-core host; KVM takes well under one.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(20);

const STUB_MARKER: &str = "gureum-probe-ok";
const KERNEL_MARKERS: [&str; 2] = ["Kernel panic", "VFS: Unable to mount root"];

/// A multiboot (a.out kludge) image loaded at 1 MiB: writes `gureum-probe-ok\n` to COM1, then
/// writes 0 to the isa-debug-exit port (QEMU exits with status 1) and halts.
pub fn stub_image() -> Vec<u8> {
    const BASE: u32 = 0x10_0000;
    const MAGIC: u32 = 0x1BAD_B002;
    const FLAGS: u32 = 0x0001_0000; // addresses in the header (a.out kludge)
    let mut code: Vec<u8> = vec![
        0x66, 0xBA, 0xF8, 0x03, // mov dx, 0x3f8
        0xBE, 0, 0, 0, 0,    // mov esi, msg
        0xAC, // l: lodsb
        0x84, 0xC0, // test al, al
        0x74, 0x03, // jz done
        0xEE, // out dx, al
        0xEB, 0xF8, // jmp l
        0x66, 0xBA, 0xF4, 0x00, // done: mov dx, 0xf4
        0xB0, 0x00, // mov al, 0
        0xEE, // out dx, al
        0xFA, 0xF4, 0xEB, 0xFD, // cli; h: hlt; jmp h
    ];
    let header_len = 32u32;
    let msg_addr = BASE + header_len + code.len() as u32;
    code[5..9].copy_from_slice(&msg_addr.to_le_bytes());
    let mut out = Vec::new();
    for w in [
        MAGIC,
        FLAGS,
        0u32.wrapping_sub(MAGIC.wrapping_add(FLAGS)),
        BASE,
        BASE,
        0,
        0,
        BASE + header_len,
    ] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&code);
    out.extend_from_slice(STUB_MARKER.as_bytes());
    out.extend_from_slice(b"\n\0");
    out
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// How long the test guest took under KVM, or why KVM is unusable.
    pub kvm: Result<Duration, String>,
    pub tcg: Result<Duration, String>,
    /// Whether the test guest was a real kernel (else the stub).
    pub with_kernel: bool,
}

impl ProbeReport {
    /// The accelerator to use: KVM if its test guest booted, else TCG.
    pub fn accel(&self) -> Accel {
        if self.kvm.is_ok() {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }
}

/// Boots the test guest under KVM (when `/dev/kvm` opens) and under TCG.
pub async fn probe(qemu: &Path, kernel: Option<&Path>, deadline: Duration) -> ProbeReport {
    let kvm = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Err(e) => Err(format!("/dev/kvm: {e}")),
        Ok(_) => boot_test(qemu, Accel::Kvm, kernel, deadline).await,
    };
    let tcg = boot_test(qemu, Accel::Tcg, kernel, deadline).await;
    ProbeReport {
        kvm,
        tcg,
        with_kernel: kernel.is_some(),
    }
}

/// Boots the test guest once; `Ok(time to its marker)`.
pub async fn boot_test(
    qemu: &Path,
    accel: Accel,
    kernel: Option<&Path>,
    deadline: Duration,
) -> Result<Duration, String> {
    let stub_path: Option<PathBuf> = match kernel {
        Some(_) => None,
        None => {
            let p = std::env::temp_dir().join(format!(
                "gureum-probe-{}-{}.bin",
                std::process::id(),
                accel.as_str()
            ));
            std::fs::write(&p, stub_image()).map_err(|e| format!("writing the stub: {e}"))?;
            Some(p)
        }
    };
    let image = kernel.map(Path::to_path_buf).or(stub_path.clone());
    let mut cmd = Command::new(qemu);
    cmd.args(accel.args())
        .args(["-machine", "pc", "-m", "256", "-smp", "1"])
        .args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-serial", "stdio", "-monitor", "none", "-no-reboot"])
        .arg("-kernel")
        .arg(image.as_deref().unwrap_or(Path::new("/nonexistent")))
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x01"]);
    if kernel.is_some() {
        cmd.args(["-append", "console=ttyS0 panic=-1 root=/dev/null"]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let result = async {
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", qemu.display()))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let found = tokio::time::timeout(deadline, async {
            loop {
                let n = stdout.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    return false;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen);
                let hit = if kernel.is_some() {
                    KERNEL_MARKERS.iter().any(|m| text.contains(m))
                } else {
                    text.contains(STUB_MARKER)
                };
                if hit {
                    return true;
                }
            }
        })
        .await;
        let took = started.elapsed();
        let _ = child.start_kill();
        let _ = child.wait().await;
        match found {
            Ok(true) => Ok(took),
            Ok(false) => {
                let mut err = String::new();
                let _ = stderr.read_to_string(&mut err).await;
                let err = err.trim().lines().last().unwrap_or("").to_string();
                Err(format!(
                    "the test guest ended without booting under {}{}",
                    accel.as_str(),
                    if err.is_empty() {
                        String::new()
                    } else {
                        format!(": {err}")
                    }
                ))
            }
            Err(_) => Err(format!(
                "the test guest did not boot under {} within {} s",
                accel.as_str(),
                deadline.as_secs()
            )),
        }
    }
    .await;
    if let Some(p) = stub_path {
        let _ = std::fs::remove_file(p);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_has_a_valid_multiboot_header() {
        let s = stub_image();
        assert_eq!(s.len(), 77);
        let w = |i: usize| u32::from_le_bytes(s[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(w(0), 0x1BAD_B002);
        assert_eq!(w(0).wrapping_add(w(1)).wrapping_add(w(2)), 0);
        assert_eq!(w(7), 0x10_0000 + 32);
        assert!(s.ends_with(b"gureum-probe-ok\n\0"));
    }
}
