//! What the compiler asks of the running kernel, behind one trait.
//!
//! Semantic analysis needs a few facts that only the kernel has: which
//! tracepoints exist and what their records look like. [`Kernel`] is that
//! question list; [`TraceFs`] answers it from a tracefs directory — the
//! live `/sys/kernel/tracing`, or a copied slice of it in tests, so the
//! analysis stays a pure function of its inputs. Raw tracepoints come
//! from the kernel's BTF, or a `raw_tracepoints` list beside a copy.

use std::cell::OnceCell;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use scorch_bpf::btf_types::KernelTypes;

/// The kernel facts semantic analysis needs.
pub trait Kernel {
    /// Every tracepoint, as `(category, name)`.
    fn tracepoints(&self) -> io::Result<Vec<(String, String)>>;
    /// The text of a tracepoint's format file.
    fn tracepoint_format(&self, category: &str, name: &str) -> io::Result<String>;
    /// Every raw tracepoint, as `(name, number of arguments)`.
    fn raw_tracepoints(&self) -> io::Result<Vec<(String, u32)>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel does not list its raw tracepoints",
        ))
    }
    /// The process named with `-p`: libraries resolve through its
    /// mappings, and uprobes fire in it only.
    fn target_pid(&self) -> Option<u32> {
        None
    }
    /// The file of the command given with `-c` (whose pid is
    /// [`Kernel::target_pid`]): uprobes on its name attach to it.
    fn command_binary(&self) -> Option<&Path> {
        None
    }
    /// The kernel functions kprobes can target.
    fn kernel_functions(&self) -> io::Result<Vec<String>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel does not list its functions",
        ))
    }
    /// The kernel's BTF: functions and their prototypes for fentry/fexit.
    fn kernel_types(&self) -> io::Result<Arc<KernelTypes>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel has no BTF",
        ))
    }
    /// Whether kprobes must attach through fentry/fexit.
    fn kprobes_via_fentry(&self) -> bool {
        false
    }
    /// The address of kernel symbol `name`, for `kaddr()`.
    fn kernel_symbol(&self, name: &str) -> io::Result<Option<u64>> {
        let _ = name;
        Ok(None)
    }
    /// Whether [`Kernel::kernel_symbol`] knows variables as well as
    /// functions (CONFIG_KALLSYMS_ALL), to explain a missing one.
    fn kernel_lists_data_symbols(&self) -> io::Result<bool> {
        Ok(true)
    }
    /// The kernel's types, for `curtask->pid`, casts and `sizeof`; `None`
    /// when its BTF cannot be read.
    fn types(&self) -> Option<&KernelTypes> {
        None
    }
    /// The id of the cgroup at `path` (its inode number in cgroupfs), for
    /// `cgroupid()`.
    fn cgroup_id(&self, path: &str) -> io::Result<u64> {
        let _ = path;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "cgroups are not available here",
        ))
    }
}

/// The id of the cgroup directory at `path`: the 8-byte file handle that
/// cgroupfs gives it, which is what `bpf_get_current_cgroup_id` returns.
pub fn cgroup_id(path: &str) -> io::Result<u64> {
    /// `struct file_handle` with room for the largest handle (`MAX_HANDLE_SZ`).
    #[repr(C)]
    struct FileHandle {
        handle_bytes: u32,
        handle_type: i32,
        f_handle: [u8; 128],
    }
    let c_path = std::ffi::CString::new(path)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    let mut handle = FileHandle {
        handle_bytes: 128,
        handle_type: 0,
        f_handle: [0; 128],
    };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: the path is NUL-terminated and the handle has room for
    // `handle_bytes` bytes after its header, as the syscall requires.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            &mut handle as *mut FileHandle,
            &mut mount_id as *mut libc::c_int,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if handle.handle_bytes != 8 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a cgroup v2 directory (its file handle is not an 8-byte id)",
        ));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&handle.f_handle[..8]);
    Ok(u64::from_ne_bytes(id))
}

/// The address of `name` in `/proc/kallsyms`-format text.
pub fn kallsyms_lookup(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let addr = f.next()?;
        let _kind = f.next()?;
        (f.next()? == name)
            .then(|| u64::from_str_radix(addr, 16).ok())
            .flatten()
    })
}

/// A tracefs directory: `available_events` and `events/CAT/NAME/format`;
/// and the kernel's BTF, read on first use: a `btf` file beside a copied
/// tracefs, else `/sys/kernel/btf/vmlinux`.
pub struct TraceFs {
    root: PathBuf,
    pid: Option<u32>,
    command: Option<PathBuf>,
    types: OnceCell<Option<Arc<KernelTypes>>>,
}

impl Clone for TraceFs {
    fn clone(&self) -> Self {
        TraceFs {
            root: self.root.clone(),
            pid: self.pid,
            command: self.command.clone(),
            types: OnceCell::new(),
        }
    }
}

impl std::fmt::Debug for TraceFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceFs")
            .field("root", &self.root)
            .field("pid", &self.pid)
            .field("command", &self.command)
            .finish()
    }
}

impl TraceFs {
    /// The tracefs mounted at `root` (or a copy of one).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        TraceFs {
            root: root.into(),
            pid: None,
            command: None,
            types: OnceCell::new(),
        }
    }

    /// The same, tracing process `pid` (`-p`).
    pub fn with_pid(mut self, pid: Option<u32>) -> Self {
        self.pid = pid;
        self
    }

    /// The same, tracing the command `-c` started as `pid` from `file`.
    pub fn with_command(mut self, pid: u32, file: PathBuf) -> Self {
        self.pid = Some(pid);
        self.command = Some(file);
        self
    }

    /// The text of `kallsyms` beside a copied tracefs, else of
    /// `/proc/kallsyms`.
    fn kallsyms(&self) -> io::Result<String> {
        let copy = self.root.join("kallsyms");
        match copy.exists() {
            true => read(&copy),
            false => read(Path::new("/proc/kallsyms")),
        }
    }

    /// The directory this reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is the running kernel's tracefs rather than a copy.
    fn is_live(&self) -> bool {
        self.root == Path::new(scorch_bpf::mounts::TRACEFS)
    }

    /// The kernel's types, read once: a `btf` file beside a copied
    /// tracefs, else the running kernel's.
    fn btf(&self) -> Option<&Arc<KernelTypes>> {
        self.types
            .get_or_init(|| {
                let copy = self.root.join("btf");
                let types = match copy.exists() {
                    true => KernelTypes::parse(&copy.to_string_lossy()),
                    false => KernelTypes::vmlinux(),
                };
                types.ok().map(Arc::new)
            })
            .as_ref()
    }
}

fn read(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
}

impl Kernel for TraceFs {
    fn types(&self) -> Option<&KernelTypes> {
        self.btf().map(|types| &**types)
    }

    fn target_pid(&self) -> Option<u32> {
        self.pid
    }

    fn command_binary(&self) -> Option<&Path> {
        self.command.as_deref()
    }

    /// tracefs's `available_filter_functions`; for the live tracefs, under
    /// lockdown, the text symbols of `/proc/kallsyms`.
    fn kernel_functions(&self) -> io::Result<Vec<String>> {
        if !self.is_live() && !self.root.join("available_filter_functions").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no available_filter_functions beside the copied tracefs",
            ));
        }
        scorch_bpf::probe::kernel_functions(&self.root.to_string_lossy())
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// The running kernel's BTF, for the live tracefs only.
    fn kernel_types(&self) -> io::Result<Arc<KernelTypes>> {
        if !self.is_live() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "a copied tracefs has no kernel BTF beside it",
            ));
        }
        self.btf().cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "cannot read the kernel's BTF (/sys/kernel/btf/vmlinux)",
            )
        })
    }

    /// For the live tracefs: when the kernel has no kprobe PMU, or
    /// `SCORCH_KPROBE_VIA_FENTRY` is set.
    fn kprobes_via_fentry(&self) -> bool {
        self.is_live() && super::kernel_probes::kprobes_via_fentry()
    }

    /// From `kallsyms` beside a copied tracefs, else `/proc/kallsyms`.
    fn kernel_symbol(&self, name: &str) -> io::Result<Option<u64>> {
        Ok(kallsyms_lookup(&self.kallsyms()?, name))
    }

    /// Whether the same list holds `init_task`, a variable every kernel
    /// has: it does when the kernel was built with CONFIG_KALLSYMS_ALL.
    fn kernel_lists_data_symbols(&self) -> io::Result<bool> {
        Ok(kallsyms_lookup(&self.kallsyms()?, "init_task").is_some())
    }

    /// From `cgroup_ids` (`PATH ID` lines) beside a copied tracefs, else
    /// from the cgroup filesystem.
    fn cgroup_id(&self, path: &str) -> io::Result<u64> {
        let copy = self.root.join("cgroup_ids");
        if !copy.exists() {
            return cgroup_id(path);
        }
        read(&copy)?
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(p, _)| *p == path)
            .and_then(|(_, id)| id.trim().parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not in cgroup_ids"))
    }

    /// From `raw_tracepoints` (`NAME ARGS` lines) beside a copied tracefs,
    /// else from the kernel's BTF.
    fn raw_tracepoints(&self) -> io::Result<Vec<(String, u32)>> {
        let copy = self.root.join("raw_tracepoints");
        if copy.exists() {
            return Ok(read(&copy)?
                .lines()
                .filter_map(|line| {
                    let (name, args) = line.trim().split_once(' ')?;
                    Some((name.to_string(), args.trim().parse().ok()?))
                })
                .collect());
        }
        scorch_bpf::btf::raw_tracepoints(scorch_bpf::btf::VMLINUX)
            .map(|list| list.into_iter().map(|t| (t.name, t.args)).collect())
            .map_err(|e| io::Error::other(e.to_string()))
    }

    fn tracepoints(&self) -> io::Result<Vec<(String, String)>> {
        let text = read(&self.root.join("available_events"))?;
        Ok(text
            .lines()
            .filter_map(|line| line.trim().split_once(':'))
            .map(|(cat, name)| (cat.to_string(), name.to_string()))
            .collect())
    }

    fn tracepoint_format(&self, category: &str, name: &str) -> io::Result<String> {
        // Names come from the program: never let them walk out of events/.
        let clean = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
        if !clean(category) || !clean(name) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no tracepoint {category}:{name}"),
            ));
        }
        read(
            &self
                .root
                .join("events")
                .join(category)
                .join(name)
                .join("format"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> TraceFs {
        TraceFs::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tracefs"
        ))
    }

    #[test]
    fn lists_and_reads_the_fixture() {
        let fs = fixture();
        let all = fs.tracepoints().unwrap();
        assert!(all.contains(&("syscalls".into(), "sys_enter_openat".into())));
        assert!(fs
            .tracepoint_format("sched", "sched_switch")
            .unwrap()
            .starts_with("name: sched_switch\n"));
        let err = fs.tracepoint_format("sched", "nope").unwrap_err();
        assert!(
            err.to_string().contains("events/sched/nope/format"),
            "{err}"
        );
        assert!(fs.tracepoint_format("..", "x").is_err());
        let raw = fs.raw_tracepoints().unwrap();
        assert!(raw.contains(&("sched_switch".into(), 4)));
    }
}
