//! Parsing of `/proc/PID/maps`.
//!
//! Each line describes one memory mapping:
//! `START-END PERMS OFFSET MAJOR:MINOR INODE [PATH]`, numbers in hex except
//! the inode, the path padded with spaces and possibly containing spaces
//! itself (and ending in ` (deleted)` when the file was unlinked). Lines that
//! do not have this shape are skipped rather than trusted.

/// One mapping of a process, as `/proc/PID/maps` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapsEntry<'a> {
    /// First address of the mapping.
    pub start: u64,
    /// One past the last address of the mapping.
    pub end: u64,
    /// Whether the mapping may execute code.
    pub executable: bool,
    /// File offset at which the mapping starts.
    pub offset: u64,
    /// Inode of the mapped file (0 for anonymous mappings).
    pub inode: u64,
    /// Path or pseudo-name (`[vdso]`, `[anon:name]`); empty when anonymous.
    pub path: &'a str,
}

/// Parses the text of `/proc/PID/maps`, skipping malformed lines.
pub(crate) fn parse(text: &str) -> impl Iterator<Item = MapsEntry<'_>> {
    text.lines().filter_map(parse_line)
}

/// Parses one line of `/proc/PID/maps`.
fn parse_line(line: &str) -> Option<MapsEntry<'_>> {
    let mut rest = line;
    let range = field(&mut rest)?;
    let perms = field(&mut rest)?;
    let offset = field(&mut rest)?;
    let _device = field(&mut rest)?;
    let inode = field(&mut rest)?;
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    if start >= end || perms.len() != 4 {
        return None;
    }
    Some(MapsEntry {
        start,
        end,
        executable: perms.as_bytes()[2] == b'x',
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        path: rest.trim_start(),
    })
}

/// Splits the next whitespace-separated field off the front of `rest`.
fn field<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let text = rest.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let (field, tail) = text.split_at(end);
    *rest = tail;
    (!field.is_empty()).then_some(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_backed_line() {
        let line = "7f3a1c000000-7f3a1c1b5000 r-xp 00028000 08:01 1835263                    /usr/lib/x86_64-linux-gnu/libc.so.6";
        assert_eq!(
            parse_line(line),
            Some(MapsEntry {
                start: 0x7f3a1c000000,
                end: 0x7f3a1c1b5000,
                executable: true,
                offset: 0x28000,
                inode: 1835263,
                path: "/usr/lib/x86_64-linux-gnu/libc.so.6",
            })
        );
    }

    #[test]
    fn paths_keep_spaces_and_anonymous_mappings_have_none() {
        let spaced =
            parse_line("1000-2000 r-xp 00000000 00:2a 77 /tmp/my dir/a b (deleted)").unwrap();
        assert_eq!(spaced.path, "/tmp/my dir/a b (deleted)");
        let anon = parse_line("7f0000000000-7f0000001000 rwxp 00000000 00:00 0 ").unwrap();
        assert_eq!((anon.path, anon.inode, anon.executable), ("", 0, true));
        let data = parse_line("1000-2000 rw-p 00000000 00:00 0 [heap]").unwrap();
        assert!(!data.executable);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "\n\
            garbage\n\
            1000 r-xp 0 08:01 1 /a\n\
            2000-1000 r-xp 0 08:01 1 /a\n\
            1000-1000 r-xp 0 08:01 1 /a\n\
            zz-2000 r-xp 0 08:01 1 /a\n\
            1000-2000 r-x 0 08:01 1 /a\n\
            1000-2000 r-xp 0g 08:01 1 /a\n\
            1000-2000 r-xp 0 08:01 -1 /a\n\
            1000-2000 r-xp 0 08:01\n\
            1000-2000 r-xp\n\
            \u{fffd}\u{0}-\u{1} r-xp 0 0 0\n\
            10000000000000000-10000000000000001 r-xp 0 08:01 1 /a\n\
            3000-4000 r-xp 00001000 08:01 9 /ok\n";
        let entries: Vec<_> = parse(text).collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].start, entries[0].offset, entries[0].path),
            (0x3000, 0x1000, "/ok")
        );
    }
}
