//! `system()` and `cat()`: work done in user space when their event
//! arrives, with the text their format produced.
//!
//! `system` runs the text with `/bin/sh -c` and prints what the command
//! wrote to its standard output (its standard error goes to ours);
//! `cat` prints the first [`CAT_BYTES_MAX`] bytes of the file the text
//! names. Both print the bytes as they are, without adding a newline.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

/// Most bytes `cat()` prints of a file, as bpftrace's default
/// `BPFTRACE_CAT_BYTES_MAX`.
pub(super) const CAT_BYTES_MAX: u64 = 10240;

/// Runs `command` with the shell; its standard output, or why it could
/// not run.
pub(super) fn system(command: &[u8]) -> Result<Vec<u8>, String> {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(OsStr::from_bytes(command))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map(|o| o.stdout)
        .map_err(|e| format!("failed to run /bin/sh: {e}"))
}

/// The start of the file at `path`, or bpftrace's message when it
/// cannot be read.
pub(super) fn cat(path: &[u8]) -> Result<Vec<u8>, String> {
    let path = OsStr::from_bytes(path);
    let fail = |e: std::io::Error| {
        let reason = std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(0));
        // Without the "(os error N)" that Rust appends.
        let reason = reason.to_string();
        let reason = reason.split(" (os error").next().unwrap_or("").to_string();
        format!("failed to open file '{}': {reason}", path.to_string_lossy())
    };
    let file = std::fs::File::open(path).map_err(fail)?;
    let mut bytes = Vec::new();
    file.take(CAT_BYTES_MAX)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_returns_what_the_command_prints() {
        assert_eq!(system(b"echo a; printf b").unwrap(), b"a\nb");
    }

    #[test]
    fn cat_reads_files_and_names_missing_ones() {
        let text = cat(b"/proc/self/comm").unwrap();
        assert!(text.ends_with(b"\n"), "{text:?}");
        assert_eq!(
            cat(b"/nonexistent/x").unwrap_err(),
            "failed to open file '/nonexistent/x': No such file or directory"
        );
        let big = cat(b"/dev/zero").unwrap();
        assert_eq!(big.len() as u64, CAT_BYTES_MAX);
    }
}
