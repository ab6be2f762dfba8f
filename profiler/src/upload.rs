//! `--upload`: the flags turned into an endpoint, and the profiles handed
//! to scorch-upload: the agent's windows through its spool, `profile`'s
//! one-shot result directly.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use scorch_formats::Profile;
use scorch_upload::{Endpoint, Protocol, Series, UploadOptions, Uploader, Window};
use tracing::info;

use crate::agent::labels::{hostname, ProcessLabels};
use crate::cli::{UploadArgs, UploadProtocol};

/// How long a stopping agent keeps uploading before leaving the rest spooled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Attempts of a one-shot upload before giving up.
const ONE_SHOT_ATTEMPTS: u32 = 5;

/// The validated endpoint; `None` without `--upload`.
pub fn endpoint(args: &UploadArgs) -> anyhow::Result<Option<Endpoint>> {
    let Some(url) = &args.url else {
        return Ok(None);
    };
    let mut options = UploadOptions::new(url.clone());
    options.protocol = match args.protocol {
        UploadProtocol::Push => Protocol::Push,
        UploadProtocol::Ingest => Protocol::Ingest,
        UploadProtocol::Parca => Protocol::Parca,
    };
    options.app_name = args.app_name.clone();
    options.token_file = args.token_file.clone();
    options.headers = args.headers.clone();
    options.timeout = args.timeout;
    if let Some(path) = &args.basic_auth_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the basic-auth file {}", path.display()))?;
        options.basic_auth = Some(text.trim().to_string());
    }
    Ok(Some(Endpoint::new(&options)?))
}

/// Starts the agent's uploader with its spool in `spool_dir`; `None` without `--upload`.
pub fn start(
    args: &UploadArgs,
    spool_dir: &Path,
    spool_size: u64,
) -> anyhow::Result<Option<Uploader>> {
    let Some(endpoint) = endpoint(args)? else {
        return Ok(None);
    };
    let target = endpoint.base.to_string();
    let uploader = Uploader::start(endpoint, spool_dir, spool_size)?;
    info!(url = %target, spool = %spool_dir.display(), "uploading every window");
    Ok(Some(uploader))
}

/// Hands the agent's windows to the uploader: a copy into its bounded
/// queue, no encoding and no disk wait on the sampling thread.
pub fn submit(uploader: &Uploader, windows: &[scorch_store::Window], frequency_hz: u64) {
    let Some(first) = windows.first() else {
        return;
    };
    let window = Window {
        start_unix_ns: first.start_unix_ns,
        end_unix_ns: first.end_unix_ns,
        sample_rate_hz: Some(frequency_hz),
        series: windows
            .iter()
            .map(|w| Series {
                labels: &w.labels,
                profile: &w.profile,
            })
            .collect(),
    };
    uploader.submit(&window);
}

/// Stops the agent's uploader after a short grace, logging what it did.
pub fn stop(uploader: Uploader) {
    let stats = uploader.shutdown(SHUTDOWN_GRACE);
    info!(
        delivered = stats.delivered,
        rejected = stats.rejected,
        dropped_spool_full = stats.evicted,
        dropped_too_old = stats.expired,
        dropped_queue_full_windows = stats.queue_full,
        still_spooled = stats.pending,
        "uploader stopped; what is still spooled is sent at the next start"
    );
}

/// Pushes `profile` (the result of `scorch profile`) as one series per process.
pub fn send_profile(endpoint: &Endpoint, profile: &Profile) -> anyhow::Result<usize> {
    let host = hostname();
    let mut processes = ProcessLabels::default();
    let parts = profile.split_by(|s| (s.pid, s.comm.clone()));
    let labelled: Vec<_> = parts
        .iter()
        .map(|((pid, comm), part)| {
            processes.capture(*pid);
            (processes.labels(*pid, comm, &host, &[]), part)
        })
        .collect();
    let start = profile.meta.start_unix_ns;
    let window = Window {
        start_unix_ns: start,
        end_unix_ns: start.saturating_add(profile.meta.duration_ns),
        sample_rate_hz: profile.meta.frequency_hz,
        series: labelled
            .iter()
            .map(|(labels, profile)| Series { labels, profile })
            .collect(),
    };
    scorch_upload::send_now(endpoint, &window, ONE_SHOT_ATTEMPTS)
        .with_context(|| format!("uploading the profile to {}", endpoint.base))
}
