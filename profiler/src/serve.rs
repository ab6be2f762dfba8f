//! `scorch serve`: the page and API over a store, and a receiver for
//! profiles other hosts push (Pyroscope's `/ingest` and Connect push APIs).
//!
//! With ingest on (the default, as Pyroscope accepts profiles by default)
//! the store is opened for writing, created if new, and kept within its
//! retention and size. When an agent is writing the store, or with
//! `--no-ingest`, the store is served read-only and pushes get a 503 that
//! says why.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use scorch_store::{Store, StoreOptions};
use scorch_web::IngestLimits;
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
    };
    let server = server::spawn_with_ingest(Arc::clone(&store), None, &listen, ingest)?;
    match ingest {
        Some(_) => info!(
            "serving {} at http://{}; receiving profiles at /ingest and {}",
            args.data_dir.display(),
            args.listen,
            scorch_web::PUSH_PATH
        ),
        None => info!(
            "serving {} read-only at http://{}",
            args.data_dir.display(),
            args.listen
        ),
    }
    signals::install();
    let mut last_retention: Option<Instant> = None;
    while !signals::stop_requested() {
        if ingest.is_some() && last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
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

/// Opens the store for writing when ingest is on and nobody else writes
/// it; else read-only. Returns the ingest limits when ingest is on.
fn open(args: &ServeArgs) -> anyhow::Result<(Store, Option<IngestLimits>)> {
    let read_only = || {
        Store::open_read_only(&args.data_dir, StoreOptions::default())
            .with_context(|| format!("opening the profile store in {}", args.data_dir.display()))
    };
    if args.no_ingest {
        return Ok((read_only()?, None));
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
    };
    let options = StoreOptions::new(args.retention, args.max_disk);
    match Store::open(&args.data_dir, options) {
        Ok(store) => {
            if let Some(recovery) = &store.open_report().recovery {
                warn!(
                    problem = %recovery.problem,
                    moved_to = %recovery.moved_to.display(),
                    "the store was corrupt: moved aside, readable windows copied"
                );
            }
            Ok((store, Some(limits)))
        }
        Err(scorch_store::Error::Locked { .. }) => {
            warn!(
                "the store in {} is being written by another scorch (an agent?): serving it \
                 read-only, without ingest",
                args.data_dir.display()
            );
            Ok((read_only()?, None))
        }
        Err(err) => Err(err)
            .with_context(|| format!("opening the profile store in {}", args.data_dir.display())),
    }
}
