//! Builds the unwind table of each file named on the command line as the
//! sampler does — a walk counting the rows, a second handing them on in
//! batches of 4096, here encoded into 16-byte rows and dropped — and
//! prints, tab-separated: the path, its rows, their bytes in the sampler's
//! row map (16 a row), the build time in ms (both walks), the time of the
//! counting walk in ms and the peak of heap bytes the build held beyond
//! what was allocated before it. For `bench/unwind-vs-perf.sh`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use scorch_unwind::TableSource;

/// Bytes of a row in the sampler's map (`scorch_bpf`'s `ROW_SIZE`).
const ROW_BYTES: usize = 16;
/// Rows the sampler writes to its map at a time (`scorch_bpf`'s `ROWS_PER_BATCH`).
const BATCH_ROWS: usize = 4096;

/// The system allocator, counting the bytes allocated now and at most.
struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            let now = NOW.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            NOW.fetch_sub(layout.size(), Ordering::Relaxed);
            let now = NOW.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in std::env::args_os().skip(1) {
        let path = Path::new(&path);
        let before = NOW.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let start = Instant::now();
        match streamed(path) {
            Ok((rows, count_ms)) => {
                let ms = start.elapsed().as_secs_f64() * 1e3;
                let peak = PEAK.load(Ordering::Relaxed) - before;
                println!(
                    "{}\t{rows}\t{}\t{ms:.1}\t{count_ms:.1}\t{peak}",
                    path.display(),
                    rows * ROW_BYTES
                );
            }
            Err(err) => {
                eprintln!("{}: {err}", path.display());
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}

/// Counts and writes `path`'s rows; returns how many, and the counting walk's ms.
fn streamed(path: &Path) -> scorch_unwind::Result<(usize, f64)> {
    let start = Instant::now();
    let table = TableSource::open(path)?.count()?;
    let count_ms = start.elapsed().as_secs_f64() * 1e3;
    // As the sampler encodes a batch for one map update.
    let mut batch = Vec::with_capacity(BATCH_ROWS * ROW_BYTES);
    let mut written = 0;
    table
        .write(BATCH_ROWS, |chunk| {
            batch.clear();
            for row in chunk {
                batch.extend_from_slice(&row.pc.to_ne_bytes());
                batch.extend_from_slice(&[0; ROW_BYTES - 8]);
            }
            written += chunk.len();
            std::hint::black_box(&batch);
            Ok::<_, std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
    assert_eq!(written, table.rows());
    Ok((written, count_ms))
}
