//! `scorch serve`: the page and API over an existing store, read-only.

use std::sync::Arc;

use anyhow::Context;
use scorch_store::{Store, StoreOptions};
use tracing::info;

use crate::cli::ServeArgs;
use crate::{server, signals};

/// Serves until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let store = Store::open_read_only(&args.data_dir, StoreOptions::default())
        .with_context(|| format!("opening the profile store in {}", args.data_dir.display()))?;
    let server = server::spawn(
        Arc::new(store),
        None,
        &server::Listen {
            addr: args.listen,
            token_file: args.auth_token_file.clone(),
        },
    )?;
    info!(
        "serving {} at http://{}",
        args.data_dir.display(),
        args.listen
    );
    signals::install();
    while !signals::stop_requested() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.stop();
    Ok(())
}
