//! Log lines of the long-running commands, through `tracing`: level from
//! `RUST_LOG` (default `info`), text for people or JSON for machines.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global logger.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
