//! Handles on mapped files, one per file however many processes map it.
//!
//! A process's mappings name files by path, but a path is a weak promise:
//! the file may since have been deleted, replaced by a newer build, or live
//! in another mount namespace. So at capture time we open the file the
//! process really maps, through `/proc/PID/map_files/START-END`, and keep
//! that handle. Files are keyed by identity (device, inode, size,
//! modification time), so a library mapped by a hundred processes is opened,
//! parsed and cached once.
//!
//! When symbolizing, the file's own path is used while it still names the
//! same file (blazesym then finds `.gnu_debuglink` and `.dwp` companions next
//! to it); otherwise `/proc/self/fd/N` of our handle, which reaches the
//! mapped file even when it is deleted. Both paths are stable for the life of
//! the handle, so blazesym's per-path cache parses each file once.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Weak};

use crate::maps::MapsEntry;
use crate::vdso;

/// Identity of a file's content: same identity, same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    dev: u64,
    inode: u64,
    size: u64,
    mtime: (i64, i64),
}

impl FileId {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// A file mapped by some process, held open.
#[derive(Debug)]
pub(crate) struct MappedFile {
    pub(crate) id: FileId,
    /// The path the process mapped it under (`[vdso]` for the vDSO).
    path: String,
    handle: Arc<File>,
    build_id: OnceCell<Option<String>>,
}

impl MappedFile {
    /// The path to hand to blazesym: the file's own path while it is still
    /// this file, else the held handle.
    pub(crate) fn symbolize_path(&self) -> PathBuf {
        let same = fs::metadata(&self.path).is_ok_and(|m| FileId::of(&m) == self.id);
        if same {
            PathBuf::from(&self.path)
        } else {
            self.handle_path()
        }
    }

    /// Every path [`Self::symbolize_path`] may have returned.
    pub(crate) fn paths(&self) -> [PathBuf; 2] {
        [PathBuf::from(&self.path), self.handle_path()]
    }

    /// The GNU build-id as lowercase hex, read once.
    pub(crate) fn build_id(&self) -> Option<String> {
        self.build_id
            .get_or_init(|| {
                let bytes = blazesym::helper::read_elf_build_id(&self.handle_path()).ok()??;
                Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
            })
            .clone()
    }

    fn handle_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.handle.as_raw_fd()))
    }
}

/// A file opened for a mapping, on any thread; [`FileTable::adopt`] makes
/// it a [`MappedFile`].
#[derive(Debug)]
pub(crate) struct OpenedFile {
    id: FileId,
    path: String,
    handle: Arc<File>,
}

/// Opens the files of mappings, one handle per file among all the
/// snapshots that still hold it.
#[derive(Debug, Default)]
pub(crate) struct FileOpener {
    open: HashMap<FileId, Weak<File>>,
}

/// How many handles [`FileOpener`] remembers before it forgets closed ones.
const OPENER_SWEEP_AT: usize = 4096;

impl FileOpener {
    /// The file behind a file-backed mapping of process `pid`; `None` when
    /// it cannot be opened.
    pub(crate) fn open(&mut self, pid: u32, entry: &MapsEntry) -> Option<OpenedFile> {
        let path = entry.path.strip_suffix(" (deleted)").unwrap_or(entry.path);
        let link = PathBuf::from(format!(
            "/proc/{pid}/map_files/{:x}-{:x}",
            entry.start, entry.end
        ));
        // map_files needs CAP_SYS_ADMIN; without it, the path will do if it
        // still names the mapped inode.
        let (source, meta) = match fs::metadata(&link) {
            Ok(meta) => (link.as_path(), meta),
            Err(_) => {
                let meta = fs::metadata(path).ok().filter(|m| m.ino() == entry.inode)?;
                (Path::new(path), meta)
            }
        };
        let path = path.to_owned();
        let id = FileId::of(&meta);
        if let Some(handle) = self.open.get(&id).and_then(Weak::upgrade) {
            return Some(OpenedFile { id, path, handle });
        }
        let handle = File::open(source).ok()?;
        // Key by what we hold, in case the file changed since the stat.
        let id = FileId::of(&handle.metadata().ok()?);
        let handle = Arc::new(handle);
        if self.open.len() >= OPENER_SWEEP_AT {
            self.open.retain(|_, held| held.strong_count() > 0);
        }
        self.open.insert(id, Arc::downgrade(&handle));
        Some(OpenedFile { id, path, handle })
    }
}

/// Every file held open, by identity.
#[derive(Debug, Default)]
pub(crate) struct FileTable {
    files: HashMap<FileId, Rc<MappedFile>>,
    /// Our own vDSO image, the same code the kernel maps into every process.
    vdso: OnceCell<Option<Rc<MappedFile>>>,
    /// Opens files for captures made on this thread.
    pub(crate) opener: FileOpener,
}

impl FileTable {
    /// The held file with `file`'s identity, or `file` itself from now on.
    pub(crate) fn adopt(&mut self, file: OpenedFile) -> Rc<MappedFile> {
        let held = self.files.entry(file.id).or_insert_with(|| {
            Rc::new(MappedFile {
                id: file.id,
                path: file.path,
                handle: file.handle,
                build_id: OnceCell::new(),
            })
        });
        Rc::clone(held)
    }

    /// The vDSO image, if a mapping of `len` bytes can be symbolized with it.
    pub(crate) fn vdso(&self, len: u64) -> Option<Rc<MappedFile>> {
        let vdso = self.vdso.get_or_init(|| {
            let handle = vdso::image()?;
            let id = FileId::of(&handle.metadata().ok()?);
            Some(Rc::new(MappedFile {
                id,
                path: vdso::NAME.to_owned(),
                handle: Arc::new(handle),
                build_id: OnceCell::new(),
            }))
        });
        vdso.as_ref().filter(|v| v.id.size == len).cloned()
    }

    /// Closes the files no snapshot uses any more and returns them.
    pub(crate) fn sweep(&mut self) -> Vec<Rc<MappedFile>> {
        let unused: Vec<FileId> = self
            .files
            .iter()
            .filter(|(_, file)| Rc::strong_count(file) == 1)
            .map(|(id, _)| *id)
            .collect();
        unused
            .iter()
            .filter_map(|id| self.files.remove(id))
            .collect()
    }
}
