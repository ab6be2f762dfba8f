//! The command of `-c`, started stopped before its `exec`.
//!
//! bpftrace forks the command and holds it before `exec` until the probes
//! are attached, so its pid is known while attaching (uprobes, USDT and
//! watchpoints fire in it only) and nothing it does is missed. Here the
//! child blocks reading a pipe: [`PausedCommand::release`] writes a byte
//! and the child `exec`s; dropping the value unreleased closes the pipe
//! and the child exits without running the command. A second pipe, closed
//! by a successful `exec`, carries the `errno` of a failed one.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::RunError;

/// A forked child that runs the command once released; reaped on drop.
#[derive(Debug)]
pub(super) struct PausedCommand {
    pid: libc::pid_t,
    file: PathBuf,
    shown: String,
    release: Option<OwnedFd>,
    exec_error: OwnedFd,
    reaped: bool,
}

/// The file `program` runs: itself when it holds a `/`, else the first
/// executable file of that name in `$PATH`, as `execvp` finds it.
fn find(program: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
}

/// A pipe whose ends close on `exec`: (read, write).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl PausedCommand {
    /// Forks `argv` (program first) and holds it before its `exec`.
    pub(super) fn start(argv: &[String]) -> Result<Self, RunError> {
        let shown = argv.join(" ");
        let fail = |why: String| RunError::Bpf(format!("starting `{shown}`: {why}"));
        let Some(program) = argv.first() else {
            return Err(fail("the command is empty".into()));
        };
        let file = find(program).ok_or_else(|| {
            fail(format!(
                "no executable `{program}`{}",
                if program.contains('/') {
                    ""
                } else {
                    " in $PATH; give its path"
                }
            ))
        })?;
        let c_file = CString::new(file.as_os_str().as_bytes())
            .map_err(|_| fail("the path holds a NUL byte".into()))?;
        let c_args = argv
            .iter()
            .map(|a| CString::new(OsStr::new(a).as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| fail("an argument holds a NUL byte".into()))?;
        let mut c_argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        c_argv.push(std::ptr::null());
        let (wait_r, wait_w) = pipe().map_err(|e| fail(e.to_string()))?;
        let (err_r, err_w) = pipe().map_err(|e| fail(e.to_string()))?;
        // SAFETY: the child calls only async-signal-safe functions (close,
        // read, sigprocmask, signal, execv, write, _exit) on data prepared
        // before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(fail(std::io::Error::last_os_error().to_string()));
        }
        if pid == 0 {
            // SAFETY: see above; the child never returns from this block.
            unsafe {
                libc::close(wait_w.as_raw_fd());
                libc::close(err_r.as_raw_fd());
                let mut byte = 0u8;
                let n = loop {
                    let n = libc::read(wait_r.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                    if n >= 0 || *libc::__errno_location() != libc::EINTR {
                        break n;
                    }
                };
                if n != 1 {
                    // The tracer gave up before attaching: do not run it.
                    libc::_exit(127);
                }
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::execv(c_file.as_ptr(), c_argv.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(
                    err_w.as_raw_fd(),
                    (&errno as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>(),
                );
                libc::_exit(127);
            }
        }
        drop(wait_r);
        drop(err_w);
        Ok(PausedCommand {
            pid,
            file,
            shown,
            release: Some(wait_w),
            exec_error: err_r,
            reaped: false,
        })
    }

    /// Its pid, the command's from its `exec` on.
    pub(super) fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// The file it runs.
    pub(super) fn file(&self) -> &Path {
        &self.file
    }

    /// Lets it `exec` the command; an error if the `exec` failed.
    pub(super) fn release(&mut self) -> Result<(), RunError> {
        let Some(release) = self.release.take() else {
            return Ok(());
        };
        let fail = |why: String| RunError::Bpf(format!("starting `{}`: {why}", self.shown));
        // SAFETY: writes one byte from a local to an owned descriptor.
        let n = unsafe { libc::write(release.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        if n != 1 {
            return Err(fail(std::io::Error::last_os_error().to_string()));
        }
        drop(release);
        let mut errno: libc::c_int = 0;
        let n = loop {
            // SAFETY: reads at most one c_int into a local.
            let n = unsafe {
                libc::read(
                    self.exec_error.as_raw_fd(),
                    (&mut errno as *mut libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>(),
                )
            };
            if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break n;
            }
        };
        match n {
            0 => Ok(()),
            _ => Err(fail(std::io::Error::from_raw_os_error(errno).to_string())),
        }
    }

    /// Stops it if it still runs, and reaps it.
    pub(super) fn finish(&mut self) {
        if self.reaped {
            return;
        }
        self.release = None;
        let mut status = 0;
        // SAFETY: the pid is our own unreaped child.
        unsafe {
            if libc::waitpid(self.pid, &mut status, libc::WNOHANG) == 0 {
                libc::kill(self.pid, libc::SIGKILL);
                while libc::waitpid(self.pid, &mut status, 0) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
            }
        }
        self.reaped = true;
    }
}

impl Drop for PausedCommand {
    fn drop(&mut self) {
        self.finish();
    }
}
