//! The live status line on stderr: elapsed time, samples, losses.
//!
//! Shown only when stderr is a terminal and `-q` was not given.

use std::io::{IsTerminal, Write};
use std::time::Duration;

/// A status line that rewrites itself in place.
#[derive(Debug)]
pub struct StatusLine {
    enabled: bool,
    shown: bool,
}

impl StatusLine {
    /// A status line, shown only on a terminal and when not quiet.
    pub fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// Whether updates are shown (callers can skip computing them otherwise).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Redraws the line.
    pub fn update(
        &mut self,
        elapsed: Duration,
        duration: Option<Duration>,
        samples: u64,
        lost: u64,
    ) {
        if !self.enabled {
            return;
        }
        let total = match duration {
            Some(d) => format!("{}s", d.as_secs()),
            None => "Ctrl-C to stop".to_string(),
        };
        let line = format!(
            "\r\x1b[2K{:.1}s / {total}  {samples} samples  {lost} lost",
            elapsed.as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
        self.shown = true;
    }

    /// Erases the line.
    pub fn clear(&mut self) {
        if self.shown {
            let _ = std::io::stderr().write_all(b"\r\x1b[2K");
            self.shown = false;
        }
    }
}
