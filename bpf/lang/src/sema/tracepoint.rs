//! Tracepoint format files: the layout of a tracepoint's `args`.
//!
//! Every tracepoint describes its record in
//! `/sys/kernel/tracing/events/CATEGORY/NAME/format`:
//!
//! ```text
//! name: sys_enter_openat
//! ID: 633
//! format:
//!     field:unsigned short common_type;    offset:0;    size:2;    signed:0;
//!     ...
//!     field:int __syscall_nr;    offset:8;    size:4;    signed:1;
//!     field:const char * filename;    offset:24;    size:8;    signed:0;
//! ```
//!
//! [`parse_format`] turns that text into [`Field`]s: a name, the C
//! declaration, the offset in the record and the [`FieldType`] bpftrace
//! gives it. The C type wins over the `size:` column for integers, because
//! syscall tracepoints declare `int dfd` in an 8-byte slot and bpftrace
//! prints `-100`, not `18446744073709551516`. `common_*` fields are the
//! record header and are not part of `args`.

use super::types::{AddrSpace, IntType, Type};

/// A parsed format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// The tracepoint id, used to open its perf event.
    pub id: Option<u32>,
    /// The fields of `args`, in record order, without `common_*`.
    pub fields: Vec<Field>,
}

impl Format {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One field of a tracepoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field name.
    pub name: String,
    /// Its C declaration without the name, e.g. `const char *`.
    pub c_type: String,
    /// Offset from the start of the record.
    pub offset: u32,
    /// Size of its slot in the record.
    pub size: u32,
    /// How bpftrace reads it.
    pub ty: FieldType,
}

/// How a field is read from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// An integer stored at the offset (the low bytes of its slot).
    Int(IntType),
    /// A pointer stored at the offset.
    Ptr {
        /// The pointed-to C type.
        target: String,
        /// User pointers for syscall arguments, kernel pointers otherwise.
        space: AddrSpace,
    },
    /// `char name[N]`: a string stored in place.
    CharArray(u32),
    /// `__data_loc char[] name`: a u32 whose low half is the offset of a
    /// string in the record (and high half its length).
    DataLocStr,
    /// Anything else (arrays of integers, structs): not readable yet.
    Unsupported,
}

impl FieldType {
    /// The bpftrace type of `args.field`.
    pub fn value_type(&self) -> Option<Type> {
        match self {
            FieldType::Int(int) => Some(Type::Int(*int)),
            FieldType::Ptr { target, space } => Some(Type::Ptr {
                target: target.clone(),
                space: *space,
                to: None,
            }),
            FieldType::CharArray(len) => Some(Type::Str(*len)),
            FieldType::DataLocStr => Some(Type::Ptr {
                target: "char".into(),
                space: AddrSpace::Kernel,
                to: None,
            }),
            FieldType::Unsupported => None,
        }
    }
}

/// Parses the text of a format file of a tracepoint in `category`.
///
/// Lines that are not field lines are skipped, and so are malformed field
/// lines: a format file from a newer kernel never makes this fail.
pub fn parse_format(category: &str, text: &str) -> Format {
    let mut format = Format {
        id: None,
        fields: Vec::new(),
    };
    for line in text.lines() {
        let line = line.trim();
        if let Some(id) = line.strip_prefix("ID:") {
            format.id = id.trim().parse().ok();
        } else if let Some(field) = parse_field(category, line) {
            if !field.name.starts_with("common_") {
                format.fields.push(field);
            }
        }
    }
    format
}

/// `field:DECL;\toffset:N;\tsize:N;\tsigned:N;`
fn parse_field(category: &str, line: &str) -> Option<Field> {
    let mut decl = None;
    let (mut offset, mut size, mut signed) = (None, None, None);
    for part in line.split(';').map(str::trim) {
        if let Some(d) = part.strip_prefix("field:") {
            decl = Some(d.trim());
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = v.trim().parse::<u32>().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.trim().parse::<u32>().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = Some(v.trim() == "1");
        }
    }
    let (base, name, array) = split_decl(decl?)?;
    let (offset, size) = (offset?, size?);
    let ty = field_type(category, &base, array, size, signed.unwrap_or(false));
    let c_type = match array {
        Some(0) => format!("{base}[]"),
        Some(len) => format!("{base}[{len}]"),
        None => base,
    };
    Some(Field {
        name,
        c_type,
        offset,
        size,
        ty,
    })
}

/// Splits `const char * filename` into type, name and array length
/// (`Some(16)` for `[16]`, `Some(0)` for `[]`, wherever the brackets are).
fn split_decl(decl: &str) -> Option<(String, String, Option<u32>)> {
    let (decl, array) = match decl.find('[') {
        Some(open) => {
            let close = decl[open..].find(']')? + open;
            let len = decl[open + 1..close].trim();
            let len = if len.is_empty() { 0 } else { len.parse().ok()? };
            let rest = format!("{}{}", &decl[..open], &decl[close + 1..]);
            (rest, Some(len))
        }
        None => (decl.to_string(), None),
    };
    let decl = decl.trim_end();
    let start = decl
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = &decl[start..];
    if name.is_empty() {
        return None;
    }
    let c_type = decl[..start].trim().to_string();
    if c_type.is_empty() {
        return None;
    }
    Some((c_type, name.to_string(), array))
}

fn field_type(
    category: &str,
    c_type: &str,
    array: Option<u32>,
    size: u32,
    signed: bool,
) -> FieldType {
    if let Some(rest) = c_type.strip_prefix("__data_loc") {
        return if is_char(rest.trim()) {
            FieldType::DataLocStr
        } else {
            FieldType::Unsupported
        };
    }
    if let Some(len) = array {
        return if is_char(c_type) && len > 0 {
            FieldType::CharArray(len)
        } else {
            FieldType::Unsupported
        };
    }
    if let Some(target) = c_type.strip_suffix('*') {
        let space = if category == "syscalls" {
            AddrSpace::User
        } else {
            AddrSpace::Kernel
        };
        return FieldType::Ptr {
            target: target.trim().to_string(),
            space,
        };
    }
    if let Some(int) = c_int_type(c_type) {
        if u32::from(int.size) <= size {
            return FieldType::Int(int);
        }
    }
    match size {
        1 | 2 | 4 | 8 => FieldType::Int(IntType {
            size: size as u8,
            signed,
        }),
        _ => FieldType::Unsupported,
    }
}

fn is_char(c_type: &str) -> bool {
    matches!(
        c_type.trim_start_matches("const ").trim(),
        "char" | "signed char" | "unsigned char"
    )
}

/// The integer type a C type name denotes, for the names tracepoints use.
pub fn c_int_type(name: &str) -> Option<IntType> {
    let name = name
        .trim()
        .trim_start_matches("const ")
        .trim_start_matches("volatile ")
        .trim();
    let (size, signed) = match name {
        "char" | "signed char" | "s8" | "__s8" | "int8_t" | "int8" => (1, true),
        "unsigned char" | "u8" | "__u8" | "uint8_t" | "uint8" | "bool" | "_Bool" => (1, false),
        "short" | "short int" | "signed short" | "s16" | "__s16" | "int16_t" | "int16" => (2, true),
        "unsigned short" | "unsigned short int" | "u16" | "__u16" | "uint16_t" | "uint16"
        | "umode_t" | "__be16" | "__le16" => (2, false),
        "int" | "signed int" | "signed" | "s32" | "__s32" | "int32_t" | "int32" | "pid_t"
        | "clockid_t" | "key_serial_t" | "mqd_t" | "timer_t" => (4, true),
        "unsigned int" | "unsigned" | "u32" | "__u32" | "uint32_t" | "uint32" | "uid_t"
        | "gid_t" | "qid_t" | "dev_t" | "gfp_t" | "fmode_t" | "__be32" | "__le32"
        | "compat_uptr_t" => (4, false),
        "long" | "long int" | "signed long" | "long long" | "long long int" | "s64" | "__s64"
        | "int64_t" | "int64" | "ssize_t" | "loff_t" | "off_t" | "time64_t" | "ktime_t" => {
            (8, true)
        }
        "unsigned long"
        | "unsigned long int"
        | "unsigned long long"
        | "unsigned long long int"
        | "u64"
        | "__u64"
        | "uint64_t"
        | "uint64"
        | "size_t"
        | "sector_t"
        | "blkcnt_t"
        | "aio_context_t"
        | "cap_user_header_t"
        | "cap_user_data_t" => (8, false),
        _ => return None,
    };
    Some(IntType { size, signed })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAT: &str =
        include_str!("../../tests/fixtures/tracefs/events/syscalls/sys_enter_openat/format");
    const SWITCH: &str =
        include_str!("../../tests/fixtures/tracefs/events/sched/sched_switch/format");
    const EXEC: &str =
        include_str!("../../tests/fixtures/tracefs/events/sched/sched_process_exec/format");

    #[test]
    fn syscall_fields_take_their_c_types() {
        let f = parse_format("syscalls", OPENAT);
        assert_eq!(f.id, Some(782));
        let names: Vec<&str> = f.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["__syscall_nr", "dfd", "filename", "flags", "mode"]);
        let dfd = f.field("dfd").unwrap();
        assert_eq!((dfd.offset, dfd.size), (16, 8));
        assert_eq!(dfd.ty, FieldType::Int(IntType::I32));
        assert_eq!(
            f.field("filename").unwrap().ty,
            FieldType::Ptr {
                target: "const char".into(),
                space: AddrSpace::User
            }
        );
        assert_eq!(
            f.field("mode").unwrap().ty,
            FieldType::Int(IntType {
                size: 2,
                signed: false
            })
        );
    }

    #[test]
    fn char_arrays_are_strings_and_data_loc_is_a_kernel_pointer() {
        let f = parse_format("sched", SWITCH);
        let prev = f.field("prev_comm").unwrap();
        assert_eq!(
            (prev.offset, prev.ty.clone()),
            (8, FieldType::CharArray(16))
        );
        assert_eq!(
            f.field("prev_state").unwrap().ty,
            FieldType::Int(IntType::I64)
        );
        let exec = parse_format("sched", EXEC);
        let filename = exec.field("filename").unwrap();
        assert_eq!(filename.ty, FieldType::DataLocStr);
        assert_eq!(filename.c_type, "__data_loc char[]");
        assert_eq!(
            filename.ty.value_type(),
            Some(Type::Ptr {
                target: "char".into(),
                space: AddrSpace::Kernel,
                to: None,
            })
        );
    }

    #[test]
    fn odd_lines_are_skipped() {
        let f = parse_format(
            "x",
            "ID: nope\nformat:\n\tfield:int;\toffset:8;\tsize:4;\tsigned:1;\n\
             \tfield:u8 addr[4];\toffset:8;\tsize:4;\tsigned:0;\n\
             \tfield:struct foo bar;\toffset:12;\tsize:12;\tsigned:0;\n\
             \tfield:weird_t w;\toffset:24;\tsize:2;\tsigned:1;\n\
             \tfield:int broken;\toffset:x;\n",
        );
        assert_eq!(f.id, None);
        let kinds: Vec<(&str, &FieldType)> =
            f.fields.iter().map(|f| (f.name.as_str(), &f.ty)).collect();
        assert_eq!(
            kinds,
            [
                ("addr", &FieldType::Unsupported),
                ("bar", &FieldType::Unsupported),
                (
                    "w",
                    &FieldType::Int(IntType {
                        size: 2,
                        signed: true
                    })
                )
            ]
        );
    }
}
