//! `scorch serve`: the page and API over a store, and a receiver for
//! profiles other hosts push (Pyroscope's `/ingest` and Connect push APIs).
//!
//! With ingest on (the default, as Pyroscope accepts profiles by default)
//! the store is opened for writing and created if new. History is deleted
//! only when `--retention` or `--max-disk` is given: like Pyroscope, serve
//! keeps everything by default, so it never shortens the history an agent
//! keeps in the same store. When the store cannot be written (an agent
//! holds it, no permission, a read-only file system), or with
//! `--no-ingest`, it is served read-only and pushes get a 503 that says why.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use scorch_store::{Store, StoreOptions};
use scorch_web::{IngestLimits, IngestMode};
use tracing::{error, info, warn};

use crate::cli::ServeArgs;
use crate::{server, signals};

/// How often retention runs on a store that receives profiles.
const RETENTION_EVERY: Duration = Duration::from_secs(300);

/// Serves until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let (store, ingest) = open(args)?;
    let store = Arc::new(store);
    let listen = server::Listen {
        addr: args.listen,
        token_file: args.auth_token_file.clone(),
        answer_cache_bytes: args.answer_cache_size,
    };
    let accepting = matches!(ingest, IngestMode::Accept(_));
    let server = server::spawn_with_ingest(Arc::clone(&store), None, &listen, ingest)?;
    let limited = args.retention.is_some() || args.max_disk.is_some();
    match (accepting, limited) {
        (true, true) => info!(
            "serving {} at http://{}, writable: receiving profiles at /ingest and {}; \
             retention {:?}, max disk {:?}",
            args.data_dir.display(),
            args.listen,
            scorch_web::PUSH_PATH,
            args.retention,
            args.max_disk
        ),
        (true, false) => info!(
            "serving {} at http://{}, writable: receiving profiles at /ingest and {}; \
             keeping all history (no --retention or --max-disk)",
            args.data_dir.display(),
            args.listen,
            scorch_web::PUSH_PATH
        ),
        (false, _) => info!(
            "serving {} read-only at http://{}: pushed profiles get 503",
            args.data_dir.display(),
            args.listen
        ),
    }
    signals::install();
    let mut last_retention: Option<Instant> = None;
    while !signals::stop_requested() {
        if accepting && limited && last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            last_retention = Some(Instant::now());
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            match store.enforce_retention(now) {
                Ok(report) => info!(?report, "retention"),
                Err(err) => error!(%err, "retention failed"),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
    Ok(())
}

/// Opens the store for writing when ingest is on and the store can be
/// written; else read-only, with the reason ingest is off.
fn open(args: &ServeArgs) -> anyhow::Result<(Store, IngestMode)> {
    let read_only = || {
        Store::open_read_only(&args.data_dir, StoreOptions::default())
            .with_context(|| format!("opening the profile store in {}", args.data_dir.display()))
    };
    if args.no_ingest {
        return Ok((
            read_only()?,
            IngestMode::Refuse("ingest is off (`scorch serve --no-ingest`)".into()),
        ));
    }
    anyhow::ensure!(
        args.max_ingest_size > 0 && args.max_ingest_decompressed >= args.max_ingest_size,
        "--max-ingest-decompressed ({}) must be at least --max-ingest-size ({}), which must not be 0",
        args.max_ingest_decompressed,
        args.max_ingest_size
    );
    let limits = IngestLimits {
        compressed: args.max_ingest_size,
        decompressed: args.max_ingest_decompressed,
        max_age: args.retention,
        ..IngestLimits::default()
    };
    let options = StoreOptions::new(
        args.retention.unwrap_or(Duration::MAX),
        args.max_disk.unwrap_or(u64::MAX),
    );
    match Store::open(&args.data_dir, options) {
        Ok(store) => {
            if let Some(recovery) = &store.open_report().recovery {
                warn!(
                    problem = %recovery.problem,
                    moved_to = %recovery.moved_to.display(),
                    "the store was corrupt: moved aside, readable windows copied"
                );
            }
            Ok((store, IngestMode::Accept(limits)))
        }
        Err(err) => match not_writable(&err, &args.data_dir) {
            Some(why) => {
                let reason = format!(
                    "the store in {} {why}, so this server serves it read-only",
                    args.data_dir.display()
                );
                warn!("{reason}: {err}");
                Ok((read_only()?, IngestMode::Refuse(reason)))
            }
            None => Err(err).with_context(|| {
                format!("opening the profile store in {}", args.data_dir.display())
            }),
        },
    }
}

/// Why opening the store in `dir` for writing failed, when reading may
/// still work: another writer, no permission, a read-only file system.
fn not_writable(err: &scorch_store::Error, dir: &Path) -> Option<&'static str> {
    use scorch_store::Error as E;
    const READ_ONLY_FS: &str = "is on a read-only file system";
    const NO_PERMISSION: &str = "cannot be written by this user";
    let io = |e: &std::io::Error| match e.raw_os_error() {
        Some(libc::EROFS) => Some(READ_ONLY_FS),
        Some(libc::EACCES | libc::EPERM) => Some(NO_PERMISSION),
        _ => None,
    };
    match err {
        E::Locked { .. } => Some("is being written by another scorch (an agent?)"),
        E::CreateDir { source, .. } | E::Lock { source, .. } => io(source),
        // SQLite says "readonly database" or "unable to open": ask the
        // file system which it is.
        E::Sqlite { .. } => {
            let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
                return None;
            };
            // SAFETY: statvfs and access read a NUL-terminated path we own
            // and write only into `stat`.
            let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
            if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } == 0
                && stat.f_flag & libc::ST_RDONLY != 0
            {
                return Some(READ_ONLY_FS);
            }
            (unsafe { libc::access(path.as_ptr(), libc::W_OK) } != 0).then_some(NO_PERMISSION)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_stores_are_served_read_only() {
        let io = |errno| std::io::Error::from_raw_os_error(errno);
        let path = std::path::PathBuf::from("/x");
        let lock = |errno| scorch_store::Error::Lock {
            path: path.clone(),
            source: io(errno),
        };
        assert_eq!(
            not_writable(&lock(libc::EROFS), &path),
            Some("is on a read-only file system")
        );
        assert_eq!(
            not_writable(&lock(libc::EACCES), &path),
            Some("cannot be written by this user")
        );
        let mkdir = scorch_store::Error::CreateDir {
            path: path.clone(),
            source: io(libc::EPERM),
        };
        assert!(not_writable(&mkdir, &path).is_some());
        let locked = scorch_store::Error::Locked { path: path.clone() };
        assert!(not_writable(&locked, &path)
            .unwrap()
            .contains("another scorch"));
        assert_eq!(not_writable(&lock(libc::EIO), &path), None);
    }
}
