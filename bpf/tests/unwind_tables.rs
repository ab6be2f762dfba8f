//! The unwind-table maps of a whole-host profiler, with real maps and real
//! processes: an exited process's entry is freed, and a full row map
//! evicts the least recently used file, never one used in the last two rounds.

mod workloads;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use scorch_bpf::{
    online_cpus, Event, Rate, Sampler, SamplerConfig, Target, UnwindTables, UserUnwind,
};
use scorch_unwind::unwind::{executables, Image};
use scorch_unwind::{build, build_image, FileKey};

/// `tests/workloads/qsort_spin.c` built once with `-O2 -fomit-frame-pointer`.
fn qsort_spin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| workloads::c_without_frame_pointers("qsort_spin", "qsort_spin_tables"))
        .clone()
}

/// A running process that printed "ready", killed when dropped.
struct Process(Child);

impl Process {
    fn start(command: &mut Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Self(child)
    }

    /// The workload: C, no frame pointers, maps libc.
    fn workload() -> Self {
        Self::start(&mut Command::new(qsort_spin()))
    }

    /// Perl, asleep: libc and files of its own.
    fn perl() -> Self {
        Self::start(Command::new("perl").args(["-e", "$| = 1; print qq(ready\\n); sleep 1000"]))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn end(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Rows of each file with a table that process `pid` maps, by content identity.
fn table_rows(pid: u32) -> HashMap<FileKey, usize> {
    let mut rows = HashMap::new();
    for e in executables(pid).expect("mappings") {
        let table = match &e.image {
            Image::File(path) => build(path),
            Image::Memory(bytes) => build_image(bytes, Path::new(&e.path)),
            Image::None => continue,
        };
        if let Ok(table) = table {
            rows.insert(table.key().clone(), table.rows().len());
        }
    }
    rows
}

/// Prepared (not attached) whole-host sampler maps with `rows` rows.
fn tables(rows: u32) -> (Sampler, UnwindTables) {
    let config = SamplerConfig {
        target: Target::All,
        rate: Rate::Frequency(49),
        event: Event::CpuClock,
        cpus: online_cpus().unwrap(),
        user_stacks: true,
        kernel_stacks: true,
        include_idle: false,
        per_thread: false,
        stack_storage_size: 64,
        max_keys: 64,
        double_buffered: true,
        track_pids: true,
        off_cpu: None,
    };
    let unwind = UserUnwind::Tables {
        rows,
        processes: 16,
    };
    let sampler = Sampler::prepare(&config, unwind).expect("the unwinder loads (Linux 6.9+)");
    let tables = sampler.unwind_tables().expect("tables");
    (sampler, tables)
}

#[test]
fn an_exited_process_entry_is_freed() {
    let (_sampler, tables) = tables(1 << 20);
    let workload = Process::workload();
    let loaded = tables
        .refresh(workload.pid())
        .unwrap()
        .expect("loaded at first sight");
    assert!(loaded.with_table >= 2, "{loaded:?}");
    assert_eq!(
        tables.refresh(workload.pid()).unwrap(),
        None,
        "still current"
    );
    let before = tables.stats();
    assert_eq!(before.processes, 1, "{before:?}");
    assert!(before.files >= 2 && before.rows_used > 0, "{before:?}");

    assert_eq!(tables.forget_exited(), 0, "it still runs");
    workload.end();
    assert_eq!(tables.forget_exited(), 1);
    let after = tables.stats();
    assert_eq!(
        (after.processes, after.processes_exited),
        (0, 1),
        "{after:?}"
    );
    // Its files stay for the next process that maps them, until room is needed.
    assert_eq!(after.files, before.files, "{after:?}");
}

#[test]
fn a_full_row_map_evicts_the_least_recently_used_file() {
    let perl = Process::perl();
    let workload = Process::workload();
    let (perl_rows, workload_rows) = (table_rows(perl.pid()), table_rows(workload.pid()));
    let mut union = perl_rows.clone();
    union.extend(workload_rows.clone());
    let needed = |rows: &HashMap<FileKey, usize>| rows.values().sum::<usize>() as u32;
    // Room for either process, not for both.
    let capacity = needed(&union) - 1;
    assert!(capacity >= needed(&perl_rows) && capacity >= needed(&workload_rows));
    let (_sampler, tables) = tables(capacity);

    let perl_loaded = tables.refresh(perl.pid()).unwrap().unwrap();
    assert!(perl_loaded.skipped.is_empty(), "{perl_loaded:?}");
    // Perl's files are in use in this round: the workload gets no room.
    let refused = tables.refresh(workload.pid()).unwrap().unwrap();
    assert!(!refused.skipped.is_empty(), "{refused:?}");
    assert_eq!(tables.stats().files_evicted, 0);

    // Two rounds later, perl has not run: its files go for the workload's.
    tables.next_round();
    tables.next_round();
    tables.forget_exited();
    let loaded = tables.load(workload.pid()).unwrap();
    assert!(loaded.skipped.is_empty(), "{loaded:?}");
    assert_eq!(loaded.with_table, workload_rows.len(), "{loaded:?}");
    let stats = tables.stats();
    assert!(stats.files_evicted >= 1, "{stats:?}");
    assert_eq!(
        stats.processes, 1,
        "perl lost its entry with its file: {stats:?}"
    );
    assert!(stats.rows_used <= u64::from(capacity));

    // Perl comes back while the workload's files are in use: they stay.
    let perl_again = tables.refresh(perl.pid()).unwrap().unwrap();
    assert!(!perl_again.skipped.is_empty(), "{perl_again:?}");
    assert_eq!(
        tables.refresh(workload.pid()).unwrap(),
        None,
        "still loaded"
    );
}
