//! The live status line on stderr: elapsed time, samples (or waits), losses.
//!
//! Shown only when stderr is a terminal and `-q` was not given.

use std::io::{IsTerminal, Write};
use std::time::Duration;

/// A status line that rewrites itself in place.
#[derive(Debug)]
pub struct StatusLine {
    enabled: bool,
    shown: bool,
    /// What is counted: `samples`, or `waits` off CPU.
    unit: &'static str,
}

impl StatusLine {
    /// A status line counting `unit` (e.g. `samples`), shown only on a
    /// terminal and when not quiet.
    pub fn new(quiet: bool, unit: &'static str) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            shown: false,
            unit,
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
        recorded: u64,
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
            "\r\x1b[2K{:.1}s / {total}  {recorded} {}  {lost} lost",
            elapsed.as_secs_f64(),
            self.unit
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
