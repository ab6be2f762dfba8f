//! `#define` constants scripts use without their headers.
//!
//! bpftrace hands `#include <linux/sched.h>` and friends to clang, so a
//! script can write `TASK_RUNNING` or `AF_INET`. scorch has no C
//! preprocessor; instead it knows the macros bpftrace's published tools and
//! common one-liners rely on, whether or not the `#include` is written.
//! Enumerators (`TCP_ESTABLISHED`, `BPF_MAP_TYPE_HASH`) are not listed:
//! they come from the kernel's BTF ([`super::ctypes::CTypes::enumerator`]).
//! Values that the C library defines are taken from it (the `libc` crate's
//! x86-64/aarch64 Linux values); the kernel-only ones are from the
//! kernel's headers, as the comments say.

/// The value of the `#define` constant `name`, if it is one scorch knows.
pub fn lookup(name: &str) -> Option<i64> {
    TABLE.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

/// Every known name, for "did you mean".
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|&(n, _)| n)
}

macro_rules! from_libc {
    ($($name:ident),* $(,)?) => {
        [$((stringify!($name), libc::$name as i64)),*]
    };
}

const LIBC: [(&str, i64); 99] = from_libc![
    // <sys/socket.h>
    AF_UNSPEC,
    AF_UNIX,
    AF_LOCAL,
    AF_INET,
    AF_INET6,
    AF_NETLINK,
    AF_PACKET,
    AF_VSOCK,
    SOCK_STREAM,
    SOCK_DGRAM,
    SOCK_RAW,
    SOCK_SEQPACKET,
    SOCK_NONBLOCK,
    SOCK_CLOEXEC,
    IPPROTO_IP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IPV6,
    // <fcntl.h>
    O_RDONLY,
    O_WRONLY,
    O_RDWR,
    O_ACCMODE,
    O_CREAT,
    O_EXCL,
    O_NOCTTY,
    O_TRUNC,
    O_APPEND,
    O_NONBLOCK,
    O_DSYNC,
    O_SYNC,
    O_DIRECT,
    O_LARGEFILE,
    O_DIRECTORY,
    O_NOFOLLOW,
    O_NOATIME,
    O_CLOEXEC,
    O_PATH,
    O_TMPFILE,
    AT_FDCWD,
    AT_SYMLINK_NOFOLLOW,
    AT_REMOVEDIR,
    // <signal.h>
    SIGHUP,
    SIGINT,
    SIGQUIT,
    SIGILL,
    SIGTRAP,
    SIGABRT,
    SIGBUS,
    SIGFPE,
    SIGKILL,
    SIGUSR1,
    SIGSEGV,
    SIGUSR2,
    SIGPIPE,
    SIGALRM,
    SIGTERM,
    SIGCHLD,
    SIGCONT,
    SIGSTOP,
    SIGTSTP,
    SIGTTIN,
    SIGTTOU,
    SIGURG,
    SIGXCPU,
    SIGXFSZ,
    SIGVTALRM,
    SIGPROF,
    SIGWINCH,
    SIGIO,
    SIGSYS,
    // <errno.h>
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOSPC,
    EPIPE,
    ENOSYS,
    ETIMEDOUT,
    ECONNREFUSED,
    EINPROGRESS,
    // <sys/mman.h>
    PROT_READ,
    PROT_WRITE,
];

/// Task states and flags from `include/linux/sched.h` (Linux 6.x).
const KERNEL: [(&str, i64); 24] = [
    ("TASK_RUNNING", 0x0000),
    ("TASK_INTERRUPTIBLE", 0x0001),
    ("TASK_UNINTERRUPTIBLE", 0x0002),
    ("__TASK_STOPPED", 0x0004),
    ("__TASK_TRACED", 0x0008),
    ("EXIT_DEAD", 0x0010),
    ("EXIT_ZOMBIE", 0x0020),
    ("EXIT_TRACE", 0x0030),
    ("TASK_PARKED", 0x0040),
    ("TASK_DEAD", 0x0080),
    ("TASK_WAKEKILL", 0x0100),
    ("TASK_WAKING", 0x0200),
    ("TASK_NOLOAD", 0x0400),
    ("TASK_NEW", 0x0800),
    ("TASK_KILLABLE", 0x0100 | 0x0002),
    ("TASK_STOPPED", 0x0100 | 0x0004),
    ("TASK_TRACED", 0x0008),
    ("TASK_IDLE", 0x0002 | 0x0400),
    ("TASK_NORMAL", 0x0001 | 0x0002),
    ("TASK_REPORT", 0x007f),
    ("PF_EXITING", 0x0000_0004),
    ("PF_KTHREAD", 0x0020_0000),
    ("PF_IDLE", 0x0000_0002),
    ("PF_WQ_WORKER", 0x0000_0020),
];

const TABLE: [(&str, i64); 99 + 24] = {
    let mut out = [("", 0i64); 99 + 24];
    let mut i = 0;
    while i < LIBC.len() {
        out[i] = LIBC[i];
        i += 1;
    }
    let mut j = 0;
    while j < KERNEL.len() {
        out[i + j] = KERNEL[j];
        j += 1;
    }
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libc_and_kernel_values() {
        assert_eq!(lookup("AF_INET"), Some(2));
        assert_eq!(lookup("AF_INET6"), Some(10));
        assert_eq!(lookup("SIGKILL"), Some(9));
        assert_eq!(lookup("O_CREAT"), Some(0o100));
        assert_eq!(lookup("TASK_RUNNING"), Some(0));
        assert_eq!(lookup("TASK_UNINTERRUPTIBLE"), Some(2));
        assert_eq!(lookup("NOPE"), None);
        assert!(names().all(|n| !n.is_empty()));
    }
}
