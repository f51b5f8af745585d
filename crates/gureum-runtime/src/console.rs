//! The instance's console: `<state dir>/<id>/console.log` collects PID 1's stdout and stderr
//! (runc hands the file to the container directly) and everything written to the guest's
//! `/dev/console`, appended across restarts (EC2's GetConsoleOutput shows the latest output).
//! It is trimmed to its last [`KEEP_BYTES`] at each start once it passes [`MAX_BYTES`].
//!
//! Why a relay: systemd in a container writes its boot status ("[  OK  ] Started ...") and
//! runs its console getty only on `/dev/console`, never on its stdout, and it opens that device
//! anew for each message. A regular file there would be rewritten from offset 0 on every open
//! and a getty would fail on it, so `/dev/console` must be a terminal, whose other end someone
//! reads. That someone is the console relay: a tiny detached process (its own session, not a
//! child of gureum, so it survives gureum restarts) that allocates a host pty, publishes the
//! slave's path in `<id>/console.pty`, and appends whatever the guest writes to the log. The
//! driver bind-mounts the slave as the guest's `/dev/console` (as LXC does). The relay exits by
//! itself within [`RELAY_CHECK`] once `console.pty` is removed or names another pty (stop,
//! destroy, or a newer relay), so it never has to be found and killed. If it dies, the guest
//! loses console output, not its stdout, and the next start makes a new one.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::RuntimeError;

/// Size past which the log is trimmed at the next start.
pub(crate) const MAX_BYTES: u64 = 8 * 1024 * 1024;
/// What is kept when trimming.
pub(crate) const KEEP_BYTES: u64 = 1024 * 1024;

/// The last `max_bytes` of a file (empty if it does not exist).
pub(crate) fn tail(path: &Path, max_bytes: usize) -> Result<Vec<u8>, RuntimeError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io("open", path, e)),
    };
    let len = f
        .metadata()
        .map_err(|e| RuntimeError::io("stat", path, e))?
        .len();
    let start = len.saturating_sub(max_bytes as u64);
    f.seek(SeekFrom::Start(start))
        .map_err(|e| RuntimeError::io("seek", path, e))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    f.take(max_bytes as u64)
        .read_to_end(&mut buf)
        .map_err(|e| RuntimeError::io("read", path, e))?;
    Ok(buf)
}

/// Keeps only the last [`KEEP_BYTES`] of the log when it has grown past [`MAX_BYTES`].
pub(crate) fn trim(path: &Path) -> Result<(), RuntimeError> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(_) => return Ok(()),
    };
    if len <= MAX_BYTES {
        return Ok(());
    }
    let keep = tail(path, KEEP_BYTES as usize)?;
    let tmp = path.with_extension("log.tmp");
    std::fs::write(&tmp, keep).map_err(|e| RuntimeError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RuntimeError::io("rename", path, e))
}

/// Keeps a log that is being appended to within [`MAX_BYTES`] while it is open: once past
/// it, the head is cut off in place (`FALLOC_FL_COLLAPSE_RANGE`, whole blocks), leaving about
/// [`KEEP_BYTES`]. In place, because PID 1's stdout is the same file opened `O_APPEND` by
/// runc: appends go on landing at the new end, where a rewrite and rename would leave the
/// guest writing to an unlinked file that no one can see or bound. A file system without
/// collapse (rare on Linux data dirs) has the log emptied instead, so the host's disk stays
/// bounded either way. Without this a guest's root could fill the host's disk by writing to
/// its console (measured: about 16 MB/s).
pub(crate) fn bound(log: &std::fs::File) {
    use nix::fcntl::{fallocate, FallocateFlags};
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = log.metadata() else { return };
    if meta.len() <= MAX_BYTES {
        return;
    }
    let block = meta.blksize().max(512);
    let cut = (meta.len() - KEEP_BYTES) / block * block;
    let collapsed = fallocate(
        std::os::fd::AsRawFd::as_raw_fd(log),
        FallocateFlags::FALLOC_FL_COLLAPSE_RANGE,
        0,
        cut as nix::libc::off_t,
    );
    if collapsed.is_err() {
        let _ = log.set_len(0);
    }
}

/// Opens the log for appending (created 0600: consoles can show secrets).
pub(crate) fn open_append(path: &Path) -> Result<std::fs::File, RuntimeError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| RuntimeError::io("open", path, e))
}

/// How often a relay checks that it is still the instance's console.
pub(crate) const RELAY_CHECK: Duration = Duration::from_millis(500);

/// The file a relay publishes its pty slave's path in.
pub(crate) fn pty_file(instance_dir: &Path) -> PathBuf {
    instance_dir.join("console.pty")
}

/// The console relay's `main`: `<relay> <console.log> <console.pty>`. Returns the exit code.
/// Wire it into a binary (this crate's `gureum-console-relay`, or a hidden subcommand of the
/// gureum binary) and name that in [`crate::RelayCommand`].
pub fn console_relay_main(args: &[OsString]) -> i32 {
    let [log, pty_file] = args else {
        eprintln!("usage: gureum-console-relay <console.log> <console.pty>");
        return 2;
    };
    match relay(Path::new(log), Path::new(pty_file)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("gureum-console-relay: {e}");
            1
        }
    }
}

fn relay(log_path: &Path, pty_file: &Path) -> Result<(), RuntimeError> {
    use nix::fcntl::OFlag;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};

    let err = |op: &'static str| move |e: nix::Error| RuntimeError::io(op, "/dev/ptmx", e.into());
    let mut master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).map_err(err("open"))?;
    grantpt(&master).map_err(err("grantpt"))?;
    unlockpt(&master).map_err(err("unlockpt"))?;
    let slave_path = ptsname_r(&master).map_err(err("ptsname"))?;
    // Holding the slave open keeps the pty alive between the guest's opens (otherwise reads
    // on the master fail with EIO whenever no guest process has the console open).
    let _slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(&slave_path)
        .map_err(|e| RuntimeError::io("open", &slave_path, e))?;
    let mut log = open_append(log_path)?;
    let tmp = pty_file.with_extension("pty.tmp");
    std::fs::write(&tmp, &slave_path).map_err(|e| RuntimeError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, pty_file).map_err(|e| RuntimeError::io("rename", pty_file, e))?;

    let still_ours = || {
        std::fs::read_to_string(pty_file)
            .map(|s| s == slave_path)
            .unwrap_or(false)
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut written = 0usize;
    let timeout = PollTimeout::try_from(RELAY_CHECK).unwrap_or(PollTimeout::MAX);
    loop {
        let ready = {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(n) => n > 0,
                Err(nix::Error::EINTR) => false,
                Err(e) => return Err(RuntimeError::io("poll", &slave_path, e.into())),
            }
        };
        if ready {
            match master.read(&mut buf) {
                Ok(n) if n > 0 => {
                    // A full disk must not kill the console; the bytes are lost instead.
                    let _ = log.write_all(&buf[..n]);
                    written += n;
                    if written >= BOUND_EVERY {
                        written = 0;
                        bound(&log);
                    }
                    continue;
                }
                // EIO: a getty's vhangup() just hung the terminal up; it reopens it shortly.
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        // PID 1's stdout reaches the file without passing through here: bound it on every
        // check too.
        bound(&log);
        if !still_ours() {
            return Ok(());
        }
    }
}

/// How much the relay writes between two checks of the log's size.
const BOUND_EVERY: usize = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_and_trims() {
        let p = std::env::temp_dir().join(format!("gureum-console-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&p);
        assert!(tail(&p, 10).unwrap().is_empty());
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(tail(&p, 4).unwrap(), b"6789");
        assert_eq!(tail(&p, 100).unwrap(), b"0123456789");
        let big = vec![b'x'; (MAX_BYTES + 10) as usize];
        std::fs::write(&p, &big).unwrap();
        trim(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), KEEP_BYTES);
        std::fs::remove_file(&p).unwrap();
    }

    /// A log past its bound, with another writer appending to it (as PID 1's stdout does), is
    /// cut in place: its size comes back to about KEEP_BYTES, the newest bytes stay at its
    /// end, and the other writer's next append lands after them.
    #[test]
    fn an_open_log_is_bounded_in_place() {
        let p = std::env::temp_dir().join(format!("gureum-bound-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let mut guest = open_append(&p).unwrap();
        let relay = open_append(&p).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..(MAX_BYTES >> 20) + 2 {
            guest.write_all(&chunk).unwrap();
        }
        guest.write_all(b"newest").unwrap();
        bound(&relay);
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len <= KEEP_BYTES + 64 * 1024, "{len}");
        guest.write_all(b"-after").unwrap();
        // Collapsed (ext4, xfs): the newest bytes stay; emptied elsewhere (tmpfs).
        let want: &[u8] = if len > 0 { b"newest-after" } else { b"-after" };
        assert!(tail(&p, 32).unwrap().ends_with(want));
        // Within the bound nothing happens.
        let before = std::fs::metadata(&p).unwrap().len();
        bound(&relay);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), before);
        std::fs::remove_file(&p).unwrap();
    }
}
