//! Parameters of a user binary's functions from its DWARF, for `-lv`
//! (`uprobe:/bin/app:handle` → `struct req* r`), spelled as bpftrace
//! spells them: DWARF's base type names (`long unsigned int`), `*` right
//! after the pointee.
//!
//! A binary without `.debug_info` has no parameters to show; an
//! unreadable one neither: `-l` still lists its functions.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use gimli::{AttributeValue, EndianSlice, RunTimeEndian, Unit, UnitOffset};
use object::{Object, ObjectSection};

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

/// What bpftrace calls a type it cannot name.
const UNKNOWN: &str = "<unknown type>";

/// How deep type names nest before the rest is left out.
const MAX_TYPE_DEPTH: u32 = 16;

/// The functions of `wanted` defined in `path` with their parameters'
/// `type name` lines; empty when the binary has no DWARF. The file is
/// mapped, and only the DWARF sections are read.
pub(super) fn function_params(
    path: &Path,
    wanted: &HashSet<String>,
) -> HashMap<String, Vec<String>> {
    read(path, wanted).unwrap_or_default()
}

fn read(
    path: &Path,
    wanted: &HashSet<String>,
) -> Result<HashMap<String, Vec<String>>, Box<dyn std::error::Error>> {
    let mut functions = HashMap::new();
    if wanted.is_empty() {
        return Ok(functions);
    }
    let file = std::fs::File::open(path)?;
    // SAFETY: the mapping is only read; a binary changed while it is
    // listed can give wrong names, never unsafety in the parsers, which
    // check every offset.
    let data = unsafe { memmap2::Mmap::map(&file)? };
    let file = object::File::parse(&*data)?;
    if file.section_by_name(".debug_info").is_none() {
        return Ok(functions);
    }
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let sections = gimli::DwarfSections::load(|id| -> Result<Cow<[u8]>, object::Error> {
        match file.section_by_name(id.name()) {
            Some(section) => section.uncompressed_data(),
            None => Ok(Cow::Borrowed(&[])),
        }
    })?;
    let dwarf = sections.borrow(|s| EndianSlice::new(s, endian));
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        unit_functions(&dwarf, &unit, wanted, &mut functions)?;
        if functions.len() == wanted.len() {
            break;
        }
    }
    Ok(functions)
}

/// Adds the functions of `wanted` defined in `unit` (the first definition
/// of a name wins).
fn unit_functions(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &Unit<Reader<'_>>,
    wanted: &HashSet<String>,
    out: &mut HashMap<String, Vec<String>>,
) -> gimli::Result<()> {
    let mut entries = unit.entries();
    // The function being read: its name, depth and parameters.
    let mut current: Option<(String, isize, Vec<String>)> = None;
    while let Some(entry) = entries.next_dfs()? {
        let depth = entry.depth();
        if let Some((_, at, _)) = &current {
            if depth <= *at {
                if let Some((name, _, params)) = current.take() {
                    out.entry(name).or_insert(params);
                }
            }
        }
        match entry.tag() {
            gimli::DW_TAG_subprogram if current.is_none() => {
                let declaration = matches!(
                    entry.attr_value(gimli::DW_AT_declaration),
                    Some(AttributeValue::Flag(true))
                );
                let name = entry
                    .attr_value(gimli::DW_AT_name)
                    .and_then(|v| string(dwarf, unit, v));
                if let (Some(name), false) = (name, declaration) {
                    if wanted.contains(&name) && !out.contains_key(&name) {
                        current = Some((name, depth, Vec::new()));
                    }
                }
            }
            gimli::DW_TAG_formal_parameter => {
                if let Some((_, at, params)) = &mut current {
                    if depth == *at + 1 {
                        let name = entry
                            .attr_value(gimli::DW_AT_name)
                            .and_then(|v| string(dwarf, unit, v))
                            .unwrap_or_default();
                        let ty = entry.attr_value(gimli::DW_AT_type);
                        let ty = type_name(dwarf, unit, ty, 0);
                        // An unnamed parameter is its type alone.
                        params.push(match name.is_empty() {
                            true => ty,
                            false => format!("{ty} {name}"),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if let Some((name, _, params)) = current {
        out.entry(name).or_insert(params);
    }
    Ok(())
}

fn string(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &Unit<Reader<'_>>,
    v: AttributeValue<Reader<'_>>,
) -> Option<String> {
    dwarf
        .attr_string(unit, v)
        .ok()
        .map(|s| String::from_utf8_lossy(s.slice()).into_owned())
}

/// The C spelling of the type `at` refers to (`void` for none): in this
/// unit, or in another one (`DW_FORM_ref_addr`, as `dwz` writes).
fn type_name(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &Unit<Reader<'_>>,
    at: Option<AttributeValue<Reader<'_>>>,
    depth: u32,
) -> String {
    match at {
        Some(AttributeValue::UnitRef(offset)) => type_at(dwarf, unit, offset, depth),
        Some(AttributeValue::DebugInfoRef(offset)) => {
            if let Some(local) = offset.to_unit_offset(&unit.header) {
                return type_at(dwarf, unit, local, depth);
            }
            match unit_holding(dwarf, offset) {
                Some((other, local)) => type_at(dwarf, &other, local, depth),
                None => UNKNOWN.to_string(),
            }
        }
        Some(_) => UNKNOWN.to_string(),
        None => "void".to_string(),
    }
}

/// The unit that holds the entry at `offset` in `.debug_info`, and the
/// entry's offset in it.
fn unit_holding<'a>(
    dwarf: &gimli::Dwarf<Reader<'a>>,
    offset: gimli::DebugInfoOffset,
) -> Option<(Unit<Reader<'a>>, UnitOffset)> {
    let mut units = dwarf.units();
    while let Ok(Some(header)) = units.next() {
        if let Some(local) = offset.to_unit_offset(&header) {
            return Some((dwarf.unit(header).ok()?, local));
        }
    }
    None
}

/// The C spelling of the type at `offset` in `unit`.
fn type_at(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &Unit<Reader<'_>>,
    offset: UnitOffset,
    depth: u32,
) -> String {
    let Ok(entry) = unit.entry(offset) else {
        return UNKNOWN.to_string();
    };
    if depth > MAX_TYPE_DEPTH {
        return "void".to_string();
    }
    let name = entry
        .attr_value(gimli::DW_AT_name)
        .and_then(|v| string(dwarf, unit, v))
        .unwrap_or_default();
    let inner = || type_name(dwarf, unit, entry.attr_value(gimli::DW_AT_type), depth + 1);
    match entry.tag() {
        gimli::DW_TAG_pointer_type => format!("{}*", inner()),
        // `const char`, but `char* const` for a constant pointer.
        gimli::DW_TAG_const_type => {
            let inner = inner();
            if inner == UNKNOWN {
                inner
            } else if inner.ends_with('*') {
                format!("{inner} const")
            } else {
                format!("const {inner}")
            }
        }
        gimli::DW_TAG_structure_type => format!("struct {name}"),
        gimli::DW_TAG_union_type => format!("union {name}"),
        gimli::DW_TAG_enumeration_type => format!("enum {name}"),
        gimli::DW_TAG_class_type if !name.is_empty() => name,
        gimli::DW_TAG_array_type => format!("{}[]", inner()),
        gimli::DW_TAG_base_type | gimli::DW_TAG_typedef => match name.is_empty() {
            true => inner(),
            false => name,
        },
        // `volatile`, `restrict`, C++ references, functions, and the rest:
        // bpftrace names none of them.
        _ => UNKNOWN.to_string(),
    }
}
