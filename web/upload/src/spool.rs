//! The spool: windows waiting to be delivered, one file each, bounded in bytes.
//!
//! A window's entries (one per process) are written to a temporary file,
//! flushed to disk and renamed into place, so a crash leaves either the
//! whole window or nothing, at the cost of one file sync per window. Files
//! are named `START-ID.window` (start zero-padded), so name order is age
//! order. The sender takes the oldest window, marks it in flight, rewrites
//! it with what remains after each delivered request, and deletes it once
//! everything went. When a new window would overflow the limit, the oldest
//! windows are deleted first and their entries counted, the one in flight
//! too (the sender gives it up before its next request), so a long outage
//! keeps the newest windows. Only names, sizes and counts are held in
//! memory; the profiles stay on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use prost::Message;
use tracing::warn;

use crate::entry::Entry;
use crate::Error;

const SUFFIX: &str = ".window";
const TEMP_SUFFIX: &str = ".tmp";
/// Field 1, length-delimited: the key of each [`SpoolFile`] entry.
const ENTRIES_KEY: u8 = (1 << 3) | 2;

/// The content of a spool file: a window's undelivered entries.
#[derive(Clone, PartialEq, ::prost::Message)]
struct SpoolFile {
    #[prost(message, repeated, tag = "1")]
    entries: Vec<Entry>,
}

/// A bounded on-disk queue of windows.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limit: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// File name → (size, entries), oldest first.
    files: BTreeMap<String, (u64, usize)>,
    bytes: u64,
    entries: usize,
    in_flight: BTreeSet<String>,
}

impl State {
    fn insert(&mut self, name: &str, size: u64, entries: usize) {
        self.remove(name);
        self.files.insert(name.to_string(), (size, entries));
        self.bytes += size;
        self.entries += entries;
    }

    fn remove(&mut self, name: &str) -> Option<(u64, usize)> {
        let (size, entries) = self.files.remove(name)?;
        self.bytes -= size;
        self.entries -= entries;
        Some((size, entries))
    }
}

/// What [`Spool::put`] had to drop to make room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Entries deleted undelivered.
    pub entries: usize,
    /// Their bytes.
    pub bytes: u64,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, keeping what a previous run left.
    pub fn open(dir: &Path, limit: u64) -> Result<Spool, Error> {
        fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create the spool directory", dir, e))?;
        let mut state = State::default();
        let listing =
            fs::read_dir(dir).map_err(|e| Error::io("cannot read the spool directory", dir, e))?;
        for item in listing {
            let item = item.map_err(|e| Error::io("cannot read the spool directory", dir, e))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(TEMP_SUFFIX) {
                // A write that a crash interrupted before its rename.
                let _ = fs::remove_file(item.path());
            } else if name.ends_with(SUFFIX) {
                match count_entries(&item.path()) {
                    Ok((entries, size)) => state.insert(&name, size, entries),
                    Err(err) => {
                        warn!(%err, file = %item.path().display(), "deleting a damaged spooled window");
                        let _ = fs::remove_file(item.path());
                    }
                }
            }
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            limit,
            state: Mutex::new(state),
        })
    }

    /// Writes a window's `entries` durably, dropping the oldest windows if
    /// the spool would overflow.
    pub fn put(&self, entries: &[Entry]) -> Result<Evicted, Error> {
        let Some(first) = entries.first() else {
            return Ok(Evicted::default());
        };
        let bytes = encode(entries);
        let size = bytes.len() as u64;
        if size > self.limit {
            return Err(Error::TooLarge {
                size,
                limit: self.limit,
            });
        }
        let name = format!(
            "{:020}-{}{SUFFIX}",
            first.start_unix_ns,
            file_safe(&first.id)
        );
        write_durably(&self.dir, &name, &bytes)?;
        let mut state = self.lock();
        state.insert(&name, size, entries.len());
        let mut evicted = Evicted::default();
        while state.bytes > self.limit {
            let Some(victim) = state.files.keys().find(|n| **n != name).cloned() else {
                break;
            };
            let (victim_size, victim_entries) = state.remove(&victim).unwrap_or_default();
            state.in_flight.remove(&victim);
            if let Err(err) = fs::remove_file(self.dir.join(&victim)) {
                warn!(%err, file = %victim, "cannot delete a spooled window");
            }
            evicted.entries += victim_entries;
            evicted.bytes += victim_size;
        }
        Ok(evicted)
    }

    /// The oldest window not in flight, now marked in flight.
    pub fn take(&self) -> Option<String> {
        let mut state = self.lock();
        let name = state
            .files
            .keys()
            .find(|n| !state.in_flight.contains(*n))
            .cloned()?;
        state.in_flight.insert(name.clone());
        Some(name)
    }

    /// A spooled window's entries; `None` (and the file dropped) when it is
    /// gone or unreadable.
    pub fn read(&self, name: &str) -> Option<Vec<Entry>> {
        let path = self.dir.join(name);
        match read_file(&path) {
            Ok(entries) => Some(entries),
            Err(err) => {
                if err.kind() != std::io::ErrorKind::NotFound {
                    warn!(%err, file = %path.display(), "dropping an unreadable spooled window");
                }
                let _ = self.finish(name);
                None
            }
        }
    }

    /// Keeps only `remaining` of a window whose other entries were sent
    /// (or refused for good); deletes the window when nothing remains.
    pub fn keep_only(&self, name: &str, remaining: &[Entry]) {
        if remaining.is_empty() {
            self.finish(name);
            return;
        }
        if !self.still_queued(name) {
            return;
        }
        let bytes = encode(remaining);
        // Rewriting is for a restart's sake: failing, the sent entries go again.
        let staged = match Staged::write(&self.dir, name, &bytes) {
            Ok(staged) => staged,
            Err(err) => {
                warn!(%err, "cannot shorten a spooled window");
                return;
            }
        };
        self.replace(staged, remaining.len());
    }

    /// Renames a staged rewrite into place if its window is still spooled
    /// (under the lock, so an eviction cannot come in between), else
    /// deletes it: an evicted window must not come back at the next start.
    fn replace(&self, staged: Staged, entries: usize) {
        let mut state = self.lock();
        if !state.files.contains_key(&staged.name) {
            drop(state);
            staged.discard();
            return;
        }
        let name = staged.name.clone();
        match staged.commit() {
            Ok(size) => state.insert(&name, size, entries),
            Err(err) => warn!(%err, "cannot shorten a spooled window"),
        }
    }

    /// Deletes a window that was delivered (or given up); returns how
    /// many entries it still held.
    pub fn finish(&self, name: &str) -> usize {
        let mut state = self.lock();
        state.in_flight.remove(name);
        let Some((_, entries)) = state.remove(name) else {
            return 0;
        };
        if let Err(err) = fs::remove_file(self.dir.join(name)) {
            if err.kind() != std::io::ErrorKind::NotFound {
                warn!(%err, file = %name, "cannot delete a spooled window");
            }
        }
        entries
    }

    /// Whether a window is still spooled (not evicted meanwhile).
    pub fn still_queued(&self, name: &str) -> bool {
        self.lock().files.contains_key(name)
    }

    /// Puts a window back in line after a failed attempt.
    pub fn release(&self, name: &str) {
        self.lock().in_flight.remove(name);
    }

    /// Entries waiting, in flight included.
    pub fn len(&self) -> usize {
        self.lock().entries
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `entries` as a spool file (a [`SpoolFile`], written without copying them).
fn encode(entries: &[Entry]) -> Vec<u8> {
    let size: usize = entries.iter().map(|e| e.encoded_len() + 11).sum();
    let mut out = Vec::with_capacity(size);
    for entry in entries {
        out.push(ENTRIES_KEY);
        // Writing to a Vec cannot fail.
        let _ = entry.encode_length_delimited(&mut out);
    }
    out
}

/// The entries of a spool file.
fn read_file(path: &Path) -> std::io::Result<Vec<Entry>> {
    let bytes = fs::read(path)?;
    SpoolFile::decode(bytes.as_slice())
        .map(|file| file.entries)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// A spool file's entry count and size, from its framing alone: each
/// entry is a key byte and a length, which are read; the profiles are
/// skipped, not read.
fn count_entries(path: &Path) -> std::io::Result<(usize, u64)> {
    let damaged =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(64, file);
    let (mut offset, mut entries) = (0u64, 0usize);
    while offset < size {
        let mut key = [0u8];
        reader.read_exact(&mut key)?;
        if key[0] != ENTRIES_KEY {
            return Err(damaged("not a spool file"));
        }
        let (length, varint_len) = read_varint(&mut reader)?;
        offset += 1 + varint_len;
        let length = i64::try_from(length).map_err(|_| damaged("entry length overflows"))?;
        if offset + length as u64 > size {
            return Err(damaged("truncated"));
        }
        reader.seek_relative(length)?;
        offset += length as u64;
        entries += 1;
    }
    Ok((entries, size))
}

/// A protobuf varint and how many bytes it took.
fn read_varint(reader: &mut impl Read) -> std::io::Result<(u64, u64)> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8];
        reader.read_exact(&mut byte)?;
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "bad varint",
    ))
}

/// A file written and synced under a temporary name, not yet in place.
struct Staged {
    dir: PathBuf,
    name: String,
    temp: PathBuf,
    size: u64,
}

impl Staged {
    /// Writes `bytes` to `dir/name.tmp` and syncs it.
    fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<Staged, Error> {
        let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&temp);
            Error::io("cannot write to the spool", dir.join(name), e)
        })?;
        Ok(Staged {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            temp,
            size: bytes.len() as u64,
        })
    }

    /// Renames the file into place and syncs the directory; returns its size.
    fn commit(self) -> Result<u64, Error> {
        let path = self.dir.join(&self.name);
        let rename = || -> std::io::Result<()> {
            fs::rename(&self.temp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        rename().map_err(|e| {
            let _ = fs::remove_file(&self.temp);
            Error::io("cannot write to the spool", &path, e)
        })?;
        Ok(self.size)
    }

    /// Deletes the staged file.
    fn discard(self) {
        let _ = fs::remove_file(&self.temp);
    }
}

/// Writes `bytes` to `dir/name` durably: a temporary file, synced, renamed
/// into place, the directory synced.
pub(crate) fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    Staged::write(dir, name, bytes)?.commit().map(drop)
}

/// The window start a spool file's name carries.
pub fn start_unix_ns(name: &str) -> Option<u64> {
    name.split_once('-')?.0.parse().ok()
}

/// `id` restricted to characters safe in a file name.
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window starting at `start` of `n` entries of `size` bytes.
    fn window(start: u64, n: usize, size: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                id: format!("id-{start}-{i}"),
                start_unix_ns: start,
                pprof: vec![7; size],
                ..Entry::default()
            })
            .collect()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("scorch-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn oldest_first_evicted_when_full_and_kept_across_reopen() {
        let dir = temp_dir("evict");
        let one = encode(&window(1, 2, 1000)).len() as u64;
        let spool = Spool::open(&dir, one * 3).unwrap();
        for start in 1..=3 {
            assert_eq!(
                spool.put(&window(start, 2, 1000)).unwrap(),
                Evicted::default()
            );
        }
        let evicted = spool.put(&window(4, 2, 1000)).unwrap();
        assert_eq!(evicted.entries, 2);
        assert_eq!(spool.len(), 6);
        assert!(spool.bytes() <= one * 3);
        drop(spool);

        let spool = Spool::open(&dir, one * 3).unwrap();
        assert_eq!(spool.len(), 6);
        let first = spool.take().unwrap();
        let second = spool.take().unwrap();
        assert_eq!(spool.read(&first).unwrap()[0].start_unix_ns, 2);
        assert_eq!(spool.read(&second).unwrap()[0].start_unix_ns, 3);
        spool.finish(&first);
        spool.release(&second);
        assert_eq!(spool.len(), 4);
        assert_eq!(spool.take(), Some(second));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_are_spool_file_messages() {
        let entries = window(5, 3, 20);
        let expected = SpoolFile {
            entries: entries.clone(),
        };
        assert_eq!(encode(&entries), expected.encode_to_vec());
    }

    #[test]
    fn partial_delivery_survives_a_restart() {
        let dir = temp_dir("partial");
        let spool = Spool::open(&dir, 1 << 20).unwrap();
        let entries = window(1, 3, 10);
        spool.put(&entries).unwrap();
        let name = spool.take().unwrap();
        spool.keep_only(&name, &entries[2..]);
        assert_eq!(spool.len(), 1);
        drop(spool);
        let spool = Spool::open(&dir, 1 << 20).unwrap();
        let name = spool.take().unwrap();
        assert_eq!(spool.read(&name).unwrap(), entries[2..]);
        spool.keep_only(&name, &[]);
        assert!(spool.is_empty());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_window_in_flight_is_evicted_too_and_damage_is_dropped() {
        let dir = temp_dir("inflight");
        let one = encode(&window(1, 1, 100)).len() as u64;
        let spool = Spool::open(&dir, one * 2).unwrap();
        spool.put(&window(1, 1, 100)).unwrap();
        spool.put(&window(2, 1, 100)).unwrap();
        let first = spool.take().unwrap();
        assert_eq!(spool.put(&window(3, 1, 100)).unwrap().entries, 1);
        assert!(
            !spool.still_queued(&first),
            "the oldest goes, in flight or not"
        );
        spool.keep_only(&first, &window(1, 1, 10));
        assert!(
            !dir.join(&first).exists(),
            "an evicted window is not rewritten"
        );
        assert!(matches!(
            spool.put(&window(9, 1, 1000)),
            Err(Error::TooLarge { .. })
        ));

        fs::write(dir.join("00000000000000000000-x.window"), b"\xff\xff\xff").unwrap();
        fs::write(dir.join("half.window.tmp"), b"x").unwrap();
        drop(spool);
        let spool = Spool::open(&dir, one * 10).unwrap();
        assert!(!dir.join("half.window.tmp").exists());
        assert!(!dir.join("00000000000000000000-x.window").exists());
        assert_eq!(spool.len(), 2);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_rewrite_racing_an_eviction_does_not_bring_the_window_back() {
        let dir = temp_dir("race");
        let one = encode(&window(1, 1, 100)).len() as u64;
        let spool = Spool::open(&dir, one * 2).unwrap();
        spool.put(&window(1, 1, 100)).unwrap();
        spool.put(&window(2, 1, 100)).unwrap();
        let first = spool.take().unwrap();
        // The sender staged a shorter copy; a new window evicts the
        // original before the copy is renamed into place.
        let staged = Staged::write(&dir, &first, &encode(&window(1, 1, 10))).unwrap();
        assert_eq!(spool.put(&window(3, 1, 100)).unwrap().entries, 1);
        spool.replace(staged, 1);
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(!names.contains(&first), "{names:?}");
        drop(spool);
        assert_eq!(Spool::open(&dir, one * 2).unwrap().len(), 2);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn entries_are_counted_from_the_framing() {
        let dir = temp_dir("count");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.window");
        let bytes = encode(&window(1, 5, 300));
        fs::write(&path, &bytes).unwrap();
        assert_eq!(count_entries(&path).unwrap(), (5, bytes.len() as u64));
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(count_entries(&path).is_err(), "a truncated file is damaged");
        fs::write(&path, b"").unwrap();
        assert_eq!(count_entries(&path).unwrap(), (0, 0));
        let _ = fs::remove_dir_all(&dir);
    }
}
