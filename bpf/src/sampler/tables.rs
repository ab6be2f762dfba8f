//! Unwind tables in BPF maps, for the in-kernel unwinder.
//!
//! Two maps, filled by user space before and while sampling:
//! - `rows`: one array of 16-byte rows shared by every file. A file's
//!   table (from `scorch-unwind`) is written once, to a contiguous range,
//!   however many processes map the file: counted first, then streamed in
//!   batches into the range taken, never held whole in user space.
//! - `procs`: process id → its executable mappings, sorted by address:
//!   `(start, end, ELF address of start, first row, row count)`. A mapping
//!   whose file has no table has a count of 0: the program walks frame
//!   pointers there and counts it.
//!
//! Row layout: `pc: u64, cfa_offset: i32, rbp_offset: i16, cfa_kind: u8,
//! rbp_kind: u8`; a PLT row keeps its threshold in `rbp_offset`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
use scorch_unwind::unwind::{executables, Image};
use scorch_unwind::{Cfa, CountedTable, FileKey, Rbp, Row, Table, TableSource};

use super::map_error;
use super::row_space::RowSpace;
use crate::error::{Error, Result};
use crate::map;

/// Bytes of one row in the `rows` map.
pub(super) const ROW_SIZE: usize = 16;
/// Rows written per `BPF_MAP_UPDATE_BATCH`.
const ROWS_PER_BATCH: usize = 4096;
/// Bytes of one mapping in a `procs` value.
pub(super) const MAPPING_SIZE: usize = 32;
/// Executable mappings kept per process (a power of two: the program binary-searches them).
pub(super) const MAX_MAPPINGS: usize = 128;
/// Bytes of a `procs` value: a count, padding, the mappings.
pub(super) const PROC_SIZE: usize = 8 + MAX_MAPPINGS * MAPPING_SIZE;

// Offsets in a row.
pub(super) const ROW_PC: i16 = 0;
pub(super) const ROW_CFA_OFFSET: i16 = 8;
pub(super) const ROW_RBP_OFFSET: i16 = 12;
pub(super) const ROW_CFA_KIND: i16 = 14;
pub(super) const ROW_RBP_KIND: i16 = 15;
// Offsets in a mapping.
pub(super) const MAP_START: i16 = 0;
pub(super) const MAP_END: i16 = 8;
pub(super) const MAP_VADDR: i16 = 16;
pub(super) const MAP_FIRST_ROW: i16 = 24;
pub(super) const MAP_ROW_COUNT: i16 = 28;

/// `cfa_kind` values.
pub(super) mod cfa_kind {
    pub const MISSING: i32 = 0;
    pub const RSP: i32 = 1;
    pub const RBP: i32 = 2;
    pub const PLT: i32 = 3;
    pub const SIGNAL: i32 = 4;
    pub const END: i32 = 5;
    pub const UNSUPPORTED: i32 = 6;
}

/// `rbp_kind` values.
pub(super) mod rbp_kind {
    pub const SAME: i32 = 0;
    pub const AT_CFA: i32 = 1;
    pub const UNSUPPORTED: i32 = 2;
}

/// The 16 bytes of `row` as the program reads them.
pub(super) fn encode_row(row: &Row) -> [u8; ROW_SIZE] {
    let (cfa_kind, cfa_offset, plt_threshold) = match row.cfa {
        Cfa::Missing => (cfa_kind::MISSING, 0, None),
        Cfa::Rsp(offset) => (cfa_kind::RSP, offset, None),
        Cfa::Rbp(offset) => (cfa_kind::RBP, offset, None),
        Cfa::Plt { offset, threshold } => (cfa_kind::PLT, offset, Some(threshold)),
        Cfa::Signal => (cfa_kind::SIGNAL, 0, None),
        Cfa::End => (cfa_kind::END, 0, None),
        Cfa::Unsupported => (cfa_kind::UNSUPPORTED, 0, None),
    };
    let (rbp_kind, rbp_offset) = match (plt_threshold, row.rbp) {
        (Some(threshold), _) => (rbp_kind::SAME, i16::from(threshold)),
        (None, Rbp::Same) => (rbp_kind::SAME, 0),
        (None, Rbp::AtCfa(offset)) => match i16::try_from(offset) {
            Ok(offset) => (rbp_kind::AT_CFA, offset),
            Err(_) => (rbp_kind::UNSUPPORTED, 0),
        },
        (None, Rbp::Unsupported) => (rbp_kind::UNSUPPORTED, 0),
    };
    let mut out = [0u8; ROW_SIZE];
    out[0..8].copy_from_slice(&row.pc.to_ne_bytes());
    out[8..12].copy_from_slice(&cfa_offset.to_ne_bytes());
    out[12..14].copy_from_slice(&rbp_offset.to_ne_bytes());
    out[14] = cfa_kind as u8;
    out[15] = rbp_kind as u8;
    out
}

/// One mapping of a `procs` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcMapping {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) vaddr: u64,
    pub(super) first_row: u32,
    pub(super) row_count: u32,
}

/// The `procs` value of a process with `mappings` (sorted; the first [`MAX_MAPPINGS`] kept).
pub(super) fn encode_proc(mappings: &[ProcMapping]) -> Vec<u8> {
    let kept = &mappings[..mappings.len().min(MAX_MAPPINGS)];
    let mut out = vec![0u8; PROC_SIZE];
    out[0..4].copy_from_slice(&(kept.len() as u32).to_ne_bytes());
    for (i, m) in kept.iter().enumerate() {
        let at = 8 + i * MAPPING_SIZE;
        out[at..at + 8].copy_from_slice(&m.start.to_ne_bytes());
        out[at + 8..at + 16].copy_from_slice(&m.end.to_ne_bytes());
        out[at + 16..at + 24].copy_from_slice(&m.vaddr.to_ne_bytes());
        out[at + 24..at + 28].copy_from_slice(&m.first_row.to_ne_bytes());
        out[at + 28..at + 32].copy_from_slice(&m.row_count.to_ne_bytes());
    }
    out
}

/// A hash map from a u32 whose entries are allocated as they are inserted:
/// room for many processes costs nothing until they are loaded.
fn create_unpreallocated_hash(name: &str, value_size: u32, entries: u32) -> Result<MapHandle> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        map_flags: libbpf_sys::BPF_F_NO_PREALLOC,
        ..Default::default()
    };
    MapHandle::create(MapType::Hash, Some(name), 4, value_size, entries, &opts).map_err(|e| {
        let what = format!("creating BPF map `{name}` ({entries} entries)");
        match e.kind() {
            libbpf_rs::ErrorKind::PermissionDenied => Error::Permission { what },
            _ => Error::sys(what, std::io::Error::other(e.to_string())),
        }
    })
}

/// Halvings of the program's row search: a file's table holds at most `2^ROW_STEPS` rows.
pub(super) const ROW_STEPS: usize = 21;
/// Most rows one file's table may have: more, and the search would stop short.
pub(super) const MAX_TABLE_ROWS: usize = 1 << ROW_STEPS;

/// Why a file's mappings are left to frame pointers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoTable {
    /// No table could be built (no call frame information, unreadable, not ELF).
    Unbuilt(String),
    /// The table has more rows than the in-kernel search reaches.
    TooManyRows {
        /// Rows of the table.
        rows: usize,
    },
    /// The row map has no room left for the table.
    RowMapFull {
        /// Rows of the table.
        rows: usize,
    },
    /// The process has more mappings with tables than the program searches.
    TooManyMappings,
}

impl std::fmt::Display for NoTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoTable::Unbuilt(why) => f.write_str(why),
            NoTable::TooManyRows { rows } => write!(
                f,
                "its table has {rows} rows, more than the {MAX_TABLE_ROWS} the in-kernel unwinder searches"
            ),
            NoTable::RowMapFull { rows } => {
                write!(f, "its {rows} rows do not fit in the unwind row map")
            }
            NoTable::TooManyMappings => write!(
                f,
                "the process has more than {MAX_MAPPINGS} executable mappings with tables"
            ),
        }
    }
}

/// An executable mapping's file left without a table, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// The path `/proc/PID/maps` shows (or `[vdso]`).
    pub path: String,
    /// Why it has no table.
    pub why: NoTable,
}

/// What loading a process's tables did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadedProcess {
    /// Executable mappings with a table.
    pub with_table: usize,
    /// Executable mappings left to frame pointers (anonymous code, or a file in `skipped`).
    pub without_table: usize,
    /// The files among them that have code but no table, and why.
    pub skipped: Vec<SkippedFile>,
}

/// A file's rows in the `rows` map, and its (rowless) table to map addresses.
#[derive(Debug, Clone)]
struct Placed {
    first: u32,
    count: u32,
    layout: Arc<Table>,
}

/// Where a file's rows are, or why it has none.
type Placement = std::result::Result<Placed, NoTable>;

/// A file whose rows are in the map, and who uses them.
#[derive(Debug)]
struct Resident {
    placed: Placed,
    /// Loaded processes whose mappings point at its rows.
    users: u32,
    /// The last round a process using it was loaded or sampled.
    last_used: u64,
}

/// What a path's inode is known to hold.
#[derive(Debug, Clone)]
enum InodeEntry {
    /// A table of this content identity.
    Content(FileKey),
    /// No table, and why.
    Failed(NoTable),
}

/// A loaded process: what it ran and the files its `procs` entry points into.
#[derive(Debug)]
struct LoadedEntry {
    identity: ExecIdentity,
    files: Vec<FileKey>,
    /// The round it was loaded in, when a file found no room then: it is
    /// loaded again in a later round, when room may have been freed.
    short_of_room: Option<u64>,
}

/// Most inodes remembered; past it, those without a table are forgotten.
const MAX_INODES: usize = 65_536;

/// What the unwind-table maps hold, for logs and stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Processes with an entry in the `procs` map.
    pub processes: usize,
    /// Files whose rows are in the row map.
    pub files: usize,
    /// Rows taken.
    pub rows_used: u64,
    /// Rows the map holds.
    pub rows_capacity: u32,
    /// Files evicted (least recently used first) to make room, since the start.
    pub files_evicted: u64,
    /// Processes whose entries were freed because they exited (or exec'd), since the start.
    pub processes_exited: u64,
}

impl TableStats {
    /// Bytes of the row map (preallocated) and of the `procs` entries (allocated as loaded).
    pub fn map_bytes(&self) -> u64 {
        u64::from(self.rows_capacity) * ROW_SIZE as u64 + (self.processes * PROC_SIZE) as u64
    }
}

/// What tells one program run in a process from the next: the process's
/// start time (a reused pid starts later) and its executable's device and
/// inode (an exec replaces it; kernel threads have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ExecIdentity {
    start_time: u64,
    exe: Option<(u64, u64)>,
}

impl ExecIdentity {
    /// The identity of what process `pid` runs now; `None` once it is gone.
    pub(super) fn of(pid: u32) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let exe = std::fs::metadata(format!("/proc/{pid}/exe")).ok();
        Some(Self {
            start_time: start_time(&stat)?,
            exe: exe.map(|m| (m.dev(), m.ino())),
        })
    }
}

/// Field 22 of `/proc/PID/stat`, the start time in clock ticks after boot.
fn start_time(stat: &str) -> Option<u64> {
    // The command name, in parentheses, may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(") ")?;
    // `rest` starts at field 3 (state).
    rest.split(' ').nth(22 - 3)?.parse().ok()
}

/// The mappings a `procs` value holds: those with rows first, at most
/// [`MAX_MAPPINGS`], sorted by address. Returns them and the mappings with
/// rows that did not fit.
fn select_mappings(mut mappings: Vec<ProcMapping>) -> (Vec<ProcMapping>, Vec<ProcMapping>) {
    // A mapping without rows only sends the program to frame pointers, as
    // an address outside every mapping does: those are the first to go.
    mappings.sort_by_key(|m| (m.row_count == 0, m.start));
    let cut = mappings.split_off(mappings.len().min(MAX_MAPPINGS));
    mappings.sort_by_key(|m| m.start);
    let cut_with_rows = cut.into_iter().filter(|m| m.row_count > 0).collect();
    (mappings, cut_with_rows)
}

/// The unwind-table maps and what user space placed in them.
///
/// Tables are built one at a time, one FDE at a time (`scorch-unwind`),
/// their rows streamed into the map as they are walked: user space keeps
/// only where each file's rows are, found by inode (one `stat`) and by
/// content identity (build id), so a library mapped by every process is
/// built and written once. When the row map is full, the file least
/// recently used goes first (those no loaded process uses before any
/// other); a process whose file is evicted loses its entry and walks frame
/// pointers until it is loaded again. Files used in the current or the
/// last round ([`Self::next_round`]) are never evicted, so processes that
/// run together do not evict each other in turn; a process left short of
/// room is loaded again in a later round.
#[derive(Debug)]
pub(super) struct TableMaps {
    rows: MapHandle,
    procs: MapHandle,
    space: RowSpace,
    files: HashMap<FileKey, Resident>,
    by_inode: HashMap<FileKey, InodeEntry>,
    loaded: HashMap<u32, LoadedEntry>,
    round: u64,
    files_evicted: u64,
    processes_exited: u64,
}

impl TableMaps {
    /// Maps for `rows` rows in all and `processes` processes.
    pub(super) fn create(rows: u32, processes: u32) -> Result<Self> {
        Ok(Self {
            rows: map::create(MapType::Array, "scorch_urows", 4, ROW_SIZE as u32, rows)?,
            procs: create_unpreallocated_hash("scorch_uprocs", PROC_SIZE as u32, processes)?,
            space: RowSpace::new(rows),
            files: HashMap::new(),
            by_inode: HashMap::new(),
            loaded: HashMap::new(),
            round: 0,
            files_evicted: 0,
            processes_exited: 0,
        })
    }

    /// Handles on the row map and the per-process map, for the program.
    pub(super) fn handles(&self) -> Result<(MapHandle, MapHandle)> {
        let dup = |map: &MapHandle| {
            MapHandle::try_from(map).map_err(|e| map_error("duplicating an unwind map", e))
        };
        Ok((dup(&self.rows)?, dup(&self.procs)?))
    }

    /// What the maps hold.
    pub(super) fn stats(&self) -> TableStats {
        TableStats {
            processes: self.loaded.len(),
            files: self.files.len(),
            rows_used: self.space.used(),
            rows_capacity: self.space.capacity(),
            files_evicted: self.files_evicted,
            processes_exited: self.processes_exited,
        }
    }

    /// Starts a new round: files not used since become evictable.
    pub(super) fn next_round(&mut self) {
        self.round += 1;
    }

    /// Whether process `pid` was loaded and still runs what it ran then,
    /// with every table it could have (none left out for room in an earlier round).
    pub(super) fn is_current(&self, pid: u32) -> bool {
        self.loaded.get(&pid).is_some_and(|then| {
            then.short_of_room.is_none_or(|round| round == self.round)
                && ExecIdentity::of(pid) == Some(then.identity)
        })
    }

    /// Marks the files of loaded process `pid` used in this round.
    pub(super) fn touch(&mut self, pid: u32) {
        if let Some(entry) = self.loaded.get(&pid) {
            for key in &entry.files {
                if let Some(file) = self.files.get_mut(key) {
                    file.last_used = self.round;
                }
            }
        }
    }

    /// Frees the entries of loaded processes that exited or exec'd since;
    /// returns how many. Their files stay until their room is needed.
    pub(super) fn forget_exited(&mut self) -> usize {
        let gone: Vec<u32> = self
            .loaded
            .iter()
            .filter(|(&pid, then)| ExecIdentity::of(pid) != Some(then.identity))
            .map(|(&pid, _)| pid)
            .collect();
        for &pid in &gone {
            self.unload(pid);
        }
        self.processes_exited += gone.len() as u64;
        gone.len()
    }

    /// Removes process `pid`'s entry; its files lose a user.
    fn unload(&mut self, pid: u32) {
        if let Some(entry) = self.loaded.remove(&pid) {
            self.release(&entry.files);
        }
        // Absent already when it never had one.
        let _ = self.procs.delete(&pid.to_ne_bytes());
    }

    /// Takes one user from each of `files`.
    fn release(&mut self, files: &[FileKey]) {
        for key in files {
            if let Some(file) = self.files.get_mut(key) {
                file.users = file.users.saturating_sub(1);
            }
        }
    }

    /// Loads the tables of process `pid` and its mappings.
    pub(super) fn load_process(&mut self, pid: u32) -> Result<LoadedProcess> {
        let identity = ExecIdentity::of(pid);
        let executables = executables(pid)
            .map_err(|e| Error::sys(format!("reading the mappings of process {pid}"), e))?;
        // A new run under the pid may map other files than the last.
        if let Some(old) = self.loaded.remove(&pid) {
            self.release(&old.files);
        }
        let mut loaded = LoadedProcess::default();
        let mut mappings = Vec::new();
        let mut pinned: Vec<FileKey> = Vec::new();
        for e in &executables {
            let placed = match &e.image {
                Image::File(path) => Some(self.place_file(path, &pinned)?),
                Image::Memory(bytes) => Some(match TableSource::image(bytes, Path::new(&e.path)) {
                    Ok(source) => self.place(source, &pinned)?,
                    Err(err) => Err(NoTable::Unbuilt(err.to_string())),
                }),
                Image::None => None,
            };
            if let Some(Ok(p)) = &placed {
                if !pinned.contains(p.layout.key()) {
                    pinned.push(p.layout.key().clone());
                }
            }
            let mapping = match placed {
                Some(Ok(p)) => p.layout.vaddr_of(e.offset).map(|vaddr| ProcMapping {
                    start: e.start,
                    end: e.end,
                    vaddr,
                    first_row: p.first,
                    row_count: p.count,
                }),
                Some(Err(why)) => {
                    loaded.skipped.push(SkippedFile {
                        path: e.path.clone(),
                        why,
                    });
                    None
                }
                None => None,
            };
            mappings.push(mapping.unwrap_or(ProcMapping {
                start: e.start,
                end: e.end,
                vaddr: 0,
                first_row: 0,
                row_count: 0,
            }));
        }
        let (kept, cut) = select_mappings(mappings);
        for m in &cut {
            let path = executables
                .iter()
                .find(|e| e.start == m.start)
                .map_or_else(String::new, |e| e.path.clone());
            loaded.skipped.push(SkippedFile {
                path,
                why: NoTable::TooManyMappings,
            });
        }
        loaded.with_table = kept.iter().filter(|m| m.row_count > 0).count();
        loaded.without_table = executables.len() - loaded.with_table;
        let Some(identity) = identity else {
            // Gone meanwhile: nothing will sample it.
            let _ = self.procs.delete(&pid.to_ne_bytes());
            return Ok(loaded);
        };
        map::set(&self.procs, &pid.to_ne_bytes(), &encode_proc(&kept))?;
        for key in &pinned {
            if let Some(file) = self.files.get_mut(key) {
                file.users += 1;
                file.last_used = self.round;
            }
        }
        let short_of_room = loaded
            .skipped
            .iter()
            .any(|s| matches!(s.why, NoTable::RowMapFull { .. }))
            .then_some(self.round);
        self.loaded.insert(
            pid,
            LoadedEntry {
                identity,
                files: pinned,
                short_of_room,
            },
        );
        Ok(loaded)
    }

    /// The rows of the file at `path`, built and copied in on first use.
    fn place_file(&mut self, path: &Path, pinned: &[FileKey]) -> Result<Placement> {
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) => {
                return Ok(Err(NoTable::Unbuilt(format!(
                    "cannot read {}: {e}",
                    path.display()
                ))))
            }
        };
        let inode = FileKey::of_metadata(&meta);
        match self.by_inode.get(&inode) {
            Some(InodeEntry::Content(key)) => {
                if let Some(file) = self.files.get(key) {
                    return Ok(Ok(file.placed.clone()));
                }
            }
            // Built before but without room: again only if room can be made.
            Some(InodeEntry::Failed(NoTable::RowMapFull { rows })) if !self.may_fit(*rows) => {
                return Ok(Err(NoTable::RowMapFull { rows: *rows }))
            }
            Some(InodeEntry::Failed(why @ (NoTable::Unbuilt(_) | NoTable::TooManyRows { .. }))) => {
                return Ok(Err(why.clone()))
            }
            _ => {}
        }
        let placed = match TableSource::open(path) {
            Ok(source) => self.place(source, pinned)?,
            Err(err) => Err(NoTable::Unbuilt(err.to_string())),
        };
        if self.by_inode.len() >= MAX_INODES {
            self.by_inode
                .retain(|_, e| matches!(e, InodeEntry::Content(_)));
        }
        let entry = match &placed {
            Ok(p) => InodeEntry::Content(p.layout.key().clone()),
            Err(why) => InodeEntry::Failed(why.clone()),
        };
        self.by_inode.insert(inode, entry);
        Ok(placed)
    }

    /// Whether a file last used in round `last_used` may be evicted: not
    /// when used in this round or the one before (a process that runs
    /// keeps its files however the rounds fall between its samples).
    fn evictable(&self, last_used: u64) -> bool {
        last_used + 1 < self.round
    }

    /// Whether `rows` rows could fit once every evictable file is evicted.
    fn may_fit(&self, rows: usize) -> bool {
        let evictable: u64 = self
            .files
            .values()
            .filter(|f| self.evictable(f.last_used))
            .map(|f| u64::from(f.placed.count))
            .sum();
        let free = u64::from(self.space.capacity()) - self.space.used();
        rows as u64 <= free + evictable
    }

    /// Writes the rows of `source`'s table in unless a table of the same
    /// content is there, evicting the least recently used files (not
    /// `pinned`) for room. The rows are counted first (a walk that stores
    /// nothing), then walked again straight into the room taken for them.
    fn place(&mut self, source: TableSource, pinned: &[FileKey]) -> Result<Placement> {
        if let Some(file) = self.files.get(source.key()) {
            return Ok(Ok(file.placed.clone()));
        }
        let table = match source.count() {
            Ok(table) => table,
            Err(err) => return Ok(Err(NoTable::Unbuilt(err.to_string()))),
        };
        let rows = table.rows();
        if let Err(why) = room_for(rows, self.space.capacity()) {
            return Ok(Err(why));
        }
        let count = rows as u32;
        let first = loop {
            if let Some(first) = self.space.take(count) {
                break first;
            }
            match self.victim(pinned) {
                Some(key) => self.evict(&key),
                None => return Ok(Err(NoTable::RowMapFull { rows })),
            }
        };
        if let Err(err) = self.write_rows(first, &table) {
            self.space.free(first);
            return Err(err);
        }
        let placed = Placed {
            first,
            count,
            layout: Arc::new(table.into_layout()),
        };
        self.files.insert(
            placed.layout.key().clone(),
            Resident {
                placed: placed.clone(),
                users: 0,
                last_used: self.round,
            },
        );
        Ok(Ok(placed))
    }

    /// Writes `table`'s rows from row `first` on, as they are walked.
    fn write_rows(&self, first: u32, table: &CountedTable) -> Result<()> {
        // In batches: one system call per row would cost more than building the table.
        let mut next = first;
        let mut keys = Vec::with_capacity(ROWS_PER_BATCH * 4);
        let mut values = Vec::with_capacity(ROWS_PER_BATCH * ROW_SIZE);
        table.write(ROWS_PER_BATCH, |chunk| {
            keys.clear();
            values.clear();
            for (index, row) in (next..).zip(chunk) {
                keys.extend_from_slice(&index.to_ne_bytes());
                values.extend_from_slice(&encode_row(row));
            }
            next += chunk.len() as u32;
            self.rows
                .update_batch(
                    &keys,
                    &values,
                    chunk.len() as u32,
                    MapFlags::ANY,
                    MapFlags::ANY,
                )
                .map_err(|e| map_error("filling the unwind row map", e))
        })
    }

    /// The file to evict next: unused before used, then least recently
    /// used, then the fewest users; never one used in the last two rounds
    /// or `pinned`.
    fn victim(&self, pinned: &[FileKey]) -> Option<FileKey> {
        self.files
            .iter()
            .filter(|(key, f)| self.evictable(f.last_used) && !pinned.contains(key))
            .min_by_key(|(_, f)| (f.users > 0, f.last_used, f.users))
            .map(|(key, _)| key.clone())
    }

    /// Frees file `key`'s rows; the processes using them lose their entries first.
    fn evict(&mut self, key: &FileKey) {
        let users: Vec<u32> = self
            .loaded
            .iter()
            .filter(|(_, entry)| entry.files.contains(key))
            .map(|(&pid, _)| pid)
            .collect();
        for pid in users {
            self.unload(pid);
        }
        if let Some(file) = self.files.remove(key) {
            self.space.free(file.placed.first);
            self.files_evicted += 1;
        }
        self.by_inode
            .retain(|_, e| !matches!(e, InodeEntry::Content(k) if k == key));
    }
}

/// The unwind tables, shared: any thread can load processes through a clone.
#[derive(Debug, Clone)]
pub struct UnwindTables(Arc<Mutex<TableMaps>>);

impl UnwindTables {
    pub(super) fn new(tables: TableMaps) -> Self {
        Self(Arc::new(Mutex::new(tables)))
    }

    /// Handles on the row map and the per-process map, for a program.
    pub(super) fn handles(&self) -> Result<(MapHandle, MapHandle)> {
        self.lock().handles()
    }

    fn lock(&self) -> MutexGuard<'_, TableMaps> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Loads (again) the tables of process `pid`.
    pub fn load(&self, pid: u32) -> Result<LoadedProcess> {
        self.lock().load_process(pid)
    }

    /// Loads the tables of process `pid` unless they are loaded and it
    /// still runs the same program (not a new process under a reused pid,
    /// not replaced by an exec); `None` when nothing was loaded. Either
    /// way its files count as used in this round.
    pub fn refresh(&self, pid: u32) -> Result<Option<LoadedProcess>> {
        let mut tables = self.lock();
        if tables.is_current(pid) {
            tables.touch(pid);
            return Ok(None);
        }
        tables.load_process(pid).map(Some)
    }

    /// Starts a new round of use: files no process used since the last
    /// one may be evicted for room.
    pub fn next_round(&self) {
        self.lock().next_round();
    }

    /// Frees the entries of processes that exited (or exec'd); returns how many.
    pub fn forget_exited(&self) -> usize {
        self.lock().forget_exited()
    }

    /// What the maps hold now.
    pub fn stats(&self) -> TableStats {
        self.lock().stats()
    }
}

/// Whether a table of `rows` rows can ever go in a map of `capacity` rows.
fn room_for(rows: usize, capacity: u32) -> std::result::Result<(), NoTable> {
    if rows == 0 {
        return Err(NoTable::Unbuilt("its table is empty".to_owned()));
    }
    if rows > MAX_TABLE_ROWS {
        return Err(NoTable::TooManyRows { rows });
    }
    if u32::try_from(rows).is_ok_and(|count| count <= capacity) {
        Ok(())
    } else {
        Err(NoTable::RowMapFull { rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_encode_as_the_program_reads_them() {
        let row = Row {
            pc: 0x1122_3344_5566_7788,
            cfa: Cfa::Rbp(16),
            rbp: Rbp::AtCfa(-16),
        };
        let bytes = encode_row(&row);
        assert_eq!(&bytes[0..8], &0x1122_3344_5566_7788u64.to_ne_bytes());
        assert_eq!(&bytes[8..12], &16i32.to_ne_bytes());
        assert_eq!(&bytes[12..14], &(-16i16).to_ne_bytes());
        assert_eq!(
            (bytes[14], bytes[15]),
            (cfa_kind::RBP as u8, rbp_kind::AT_CFA as u8)
        );
        let plt = encode_row(&Row {
            pc: 0,
            cfa: Cfa::Plt {
                offset: 8,
                threshold: 11,
            },
            rbp: Rbp::Same,
        });
        assert_eq!((plt[8], plt[12], plt[14]), (8, 11, cfa_kind::PLT as u8));
        let far = encode_row(&Row {
            pc: 0,
            cfa: Cfa::Rsp(8),
            rbp: Rbp::AtCfa(-70000),
        });
        assert_eq!(far[15], rbp_kind::UNSUPPORTED as u8);
    }

    #[test]
    fn tables_beyond_the_row_search_are_refused() {
        assert_eq!(room_for(MAX_TABLE_ROWS, u32::MAX), Ok(()));
        assert_eq!(
            room_for(MAX_TABLE_ROWS + 1, u32::MAX),
            Err(NoTable::TooManyRows {
                rows: MAX_TABLE_ROWS + 1
            })
        );
        assert_eq!(room_for(10, 10), Ok(()));
        assert_eq!(room_for(11, 10), Err(NoTable::RowMapFull { rows: 11 }));
        assert!(matches!(room_for(0, 10), Err(NoTable::Unbuilt(_))));
    }

    #[test]
    fn the_row_search_covers_the_largest_table() {
        // After ROW_STEPS halvings of [0, MAX_TABLE_ROWS) one row is left.
        let mut width = MAX_TABLE_ROWS;
        for _ in 0..ROW_STEPS {
            width = width.div_ceil(2);
        }
        assert_eq!(width, 1);
        let mut width = MAX_TABLE_ROWS + 1;
        for _ in 0..ROW_STEPS {
            width = width.div_ceil(2);
        }
        assert_eq!(width, 2, "one more row and the search stops short");
    }

    #[test]
    fn mappings_with_rows_are_kept_first() {
        let mapping = |i: u64, rows: u32| ProcMapping {
            start: i * 0x1000,
            end: i * 0x1000 + 0x1000,
            vaddr: 0,
            first_row: 0,
            row_count: rows,
        };
        // Rowless mappings first in address order, then more with rows than fit.
        let all: Vec<_> = (0..50)
            .map(|i| mapping(i, 0))
            .chain((50..50 + MAX_MAPPINGS as u64 + 2).map(|i| mapping(i, 1)))
            .collect();
        let (kept, cut) = select_mappings(all);
        assert_eq!(kept.len(), MAX_MAPPINGS);
        assert!(kept.iter().all(|m| m.row_count == 1));
        assert!(kept.windows(2).all(|w| w[0].start < w[1].start));
        assert_eq!(cut.len(), 2);
        // Few enough: every mapping is kept, in address order.
        let (kept, cut) = select_mappings(vec![mapping(3, 1), mapping(1, 0)]);
        assert_eq!(kept, vec![mapping(1, 0), mapping(3, 1)]);
        assert!(cut.is_empty());
    }

    #[test]
    fn start_time_is_field_22() {
        let stat =
            "42 (a (weird) name) R 1 42 42 0 -1 4194304 100 0 0 0 5 1 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(start_time(stat), Some(987654));
        let me = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(start_time(&me).is_some());
        let me = ExecIdentity::of(std::process::id()).expect("our own identity");
        assert!(me.exe.is_some());
        assert_eq!(ExecIdentity::of(std::process::id()), Some(me));
        // A kernel thread (kthreadd) has no executable, but an identity all the same.
        if let Some(kthreadd) = ExecIdentity::of(2) {
            assert_eq!(kthreadd.exe, None);
        }
    }

    #[test]
    fn streamed_rows_in_the_map_are_the_built_tables() {
        // Real maps (needs root): every file this test process maps is
        // streamed in, then read back row by row and compared with the
        // table `scorch_unwind::build` holds in memory, encoded.
        let mut maps = TableMaps::create(1 << 20, 16).expect("unwind maps (run as root)");
        let pid = std::process::id();
        let loaded = maps.load_process(pid).expect("our own tables");
        assert!(loaded.with_table >= 2, "libc and this binary: {loaded:?}");
        let mut compared = 0;
        for e in executables(pid).expect("our mappings") {
            let Image::File(path) = &e.image else {
                continue;
            };
            let table = scorch_unwind::build(path).expect("a table");
            let placed = &maps.files[table.key()].placed;
            assert_eq!(placed.count as usize, table.rows().len(), "{path:?}");
            for (i, row) in table.rows().iter().enumerate() {
                let index = placed.first + i as u32;
                let bytes = maps
                    .rows
                    .lookup(&index.to_ne_bytes(), MapFlags::ANY)
                    .expect("a row lookup")
                    .expect("a row");
                assert_eq!(bytes, encode_row(row), "{path:?} row {i}");
            }
            compared += 1;
        }
        assert!(compared >= 2, "{compared} files compared");
        assert_eq!(
            maps.stats().rows_used,
            maps.files.values().map(|f| u64::from(f.placed.count)).sum()
        );
    }

    #[test]
    fn procs_encode_count_then_mappings() {
        let m = ProcMapping {
            start: 0x1000,
            end: 0x2000,
            vaddr: 0x400000,
            first_row: 7,
            row_count: 9,
        };
        let bytes = encode_proc(&[m; MAX_MAPPINGS + 3]);
        assert_eq!(bytes.len(), PROC_SIZE);
        assert_eq!(&bytes[0..4], &(MAX_MAPPINGS as u32).to_ne_bytes());
        let at = 8 + MAPPING_SIZE;
        assert_eq!(&bytes[at..at + 8], &0x1000u64.to_ne_bytes());
        assert_eq!(&bytes[at + 16..at + 24], &0x400000u64.to_ne_bytes());
        assert_eq!(&bytes[at + 28..at + 32], &9u32.to_ne_bytes());
    }
}
