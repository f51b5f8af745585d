//! The three seccomp user-notification ioctls (`SECCOMP_IOCTL_NOTIF_RECV`, `_SEND`,
//! `_ID_VALID`), the only `unsafe` in the workspace: no crate wraps them without linking the C
//! libseccomp (whose headers would become a build dependency of every gureum build). Each call
//! passes a pointer to a plain, fully initialised `libc` struct of the size the ioctl number
//! encodes, and the kernel writes nothing beyond it.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// One intercepted system call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Notification {
    /// The kernel's cookie for the answer and for [`id_valid`].
    pub id: u64,
    /// The calling thread, in mountd's pid namespace (the host's).
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// Waits for the next notification (blocks; poll the fd first).
pub(crate) fn recv(fd: BorrowedFd<'_>) -> io::Result<Notification> {
    // The kernel requires a zeroed buffer.
    let mut req = libc::seccomp_notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr: 0,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        },
    };
    // SAFETY: `req` is a valid, writable `seccomp_notif`, the type RECV's number encodes.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Notification {
        id: req.id,
        pid: req.pid,
        nr: req.data.nr,
        arch: req.data.arch,
        args: req.data.args,
    })
}

/// How a notification is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The call returns 0.
    Success,
    /// The call fails with this errno.
    Error(i32),
    /// The kernel runs the call itself, with the caller's own credentials.
    Continue,
}

/// Answers a notification. ENOENT: the caller is gone (killed, or the call interrupted).
pub(crate) fn respond(fd: BorrowedFd<'_>, id: u64, answer: Answer) -> io::Result<()> {
    let (error, flags) = match answer {
        Answer::Success => (0, 0),
        Answer::Error(errno) => (-errno, 0),
        Answer::Continue => (0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
    };
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error,
        flags,
    };
    // SAFETY: `resp` is a valid `seccomp_notif_resp`, the type SEND's number encodes.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the notification is still pending: after opening anything under `/proc/<pid>`,
/// this proves the pid still names the caller (not a process that reused it).
pub(crate) fn id_valid(fd: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    // SAFETY: `id` is a valid, readable u64, the type ID_VALID's number encodes.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id) == 0 }
}
