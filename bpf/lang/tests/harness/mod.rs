//! Running real programs from tests: a workload thread started once the
//! probes are attached, and what the run printed. Shared by the root-only
//! runtime test files; each serializes its runs with [`SERIAL`].

use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scorch_lang::{run, RunError, RunOptions, SourceFile};

/// Held by each test that runs a program.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// The lock that runs tracing tests one at a time, or `None` (and why, on
/// stderr) when they cannot trace.
pub fn serial() -> Option<std::sync::MutexGuard<'static, ()>> {
    privileged().then(|| SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Whether the tests can trace; prints why not.
pub fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: tracing needs root (CAP_BPF, CAP_PERFMON)");
    }
    root
}

/// Collects stderr and reports when the probes are attached.
struct Stderr {
    text: Arc<Mutex<Vec<u8>>>,
    attached: Option<mpsc::Sender<()>>,
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut text = self.text.lock().unwrap();
        text.extend_from_slice(buf);
        let seen = String::from_utf8_lossy(&text).contains("Attached");
        drop(text);
        if seen {
            if let Some(tx) = self.attached.take() {
                let _ = tx.send(());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run printed and returned.
pub struct Outcome {
    pub result: Result<u8, RunError>,
    pub out: String,
    pub err: String,
}

/// Runs `program` with `opts`; `workload` gets its own thread id first
/// (to put in the program) and runs once the probes are attached.
pub fn trace_with(
    program: impl FnOnce(i32) -> String,
    opts: RunOptions,
    workload: impl FnOnce() + Send + 'static,
) -> Outcome {
    trace_source(|tid| SourceFile::inline(program(tid)), opts, workload)
}

/// Runs the source `program` makes from the workload's thread id; see
/// [`trace_with`].
pub fn trace_source(
    program: impl FnOnce(i32) -> SourceFile,
    opts: RunOptions,
    workload: impl FnOnce() + Send + 'static,
) -> Outcome {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name("scorch-worker".into())
        .spawn(move || {
            // SAFETY: gettid has no preconditions.
            let _ = tid_tx.send(unsafe { libc::gettid() });
            if go_rx.recv_timeout(Duration::from_secs(20)).is_ok() {
                workload();
            }
        })
        .expect("worker thread");
    let tid = tid_rx.recv().expect("worker tid");
    let source = program(tid);
    let text = Arc::new(Mutex::new(Vec::new()));
    let mut err = Stderr {
        text: text.clone(),
        attached: Some(go_tx),
    };
    let mut out = Vec::new();
    let result = run(&source, &opts, &mut out, &mut err);
    drop(err);
    worker.join().expect("workload thread");
    let err = String::from_utf8_lossy(&text.lock().unwrap()).into_owned();
    Outcome {
        result,
        out: String::from_utf8_lossy(&out).into_owned(),
        err,
    }
}

/// Runs `program` with default options; see [`trace_with`].
pub fn trace(
    program: impl FnOnce(i32) -> String,
    workload: impl FnOnce() + Send + 'static,
) -> Outcome {
    trace_with(program, RunOptions::default(), workload)
}
