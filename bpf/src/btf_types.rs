//! Kernel types from BTF, as the tracing language needs them.
//!
//! `curtask->real_parent->comm` asks, at each step, what the value in hand
//! is (a pointer to `struct task_struct`), where a member lies in it and
//! what that member is. The kernel's BTF holds exactly that for every
//! kernel type and function. [`KernelTypes`] answers those questions with
//! typedefs and qualifiers (`const`, `volatile`, type tags) seen through,
//! and spells types as C does for messages and `-lv` listings.

use std::ffi::{CStr, CString};

use crate::btf::{RawTracepoint, VMLINUX};
use crate::error::{Error, Result};

/// A type's id in the BTF (0 is `void`).
pub type TypeId = u32;

/// What a type is, with typedefs and qualifiers seen through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `void`.
    Void,
    /// An integer (also `char` and `_Bool`).
    Int {
        /// Size in bytes.
        size: u32,
        /// Whether it is signed.
        signed: bool,
        /// Whether it is a `char` (by BTF's flag or by name).
        char: bool,
        /// Whether it is a `_Bool`.
        bool: bool,
    },
    /// A pointer to the type with this id.
    Pointer(TypeId),
    /// A fixed-size array.
    Array {
        /// Element type.
        element: TypeId,
        /// Number of elements.
        len: u32,
    },
    /// A struct (`union` false) or union.
    Struct {
        /// Its tag (empty when anonymous).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Whether it is a union.
        union: bool,
    },
    /// An enum.
    Enum {
        /// Its tag (empty when anonymous).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Whether its values are signed.
        signed: bool,
    },
    /// A floating-point type.
    Float {
        /// Size in bytes.
        size: u32,
    },
    /// A function prototype (what function pointers point at).
    Function,
    /// A declared but undefined struct or union (`struct foo;`).
    Forward(String),
}

/// A member of a struct or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name (members of anonymous members are listed by their own names).
    pub name: String,
    /// Offset from the start of the outer struct, in bits.
    pub offset_bits: u32,
    /// Width in bits when it is a bitfield, 0 otherwise.
    pub bitfield_bits: u32,
    /// Its type.
    pub ty: TypeId,
}

/// A named parameter of a kernel function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name (empty when BTF does not say).
    pub name: String,
    /// Its type.
    pub ty: TypeId,
}

/// The kernel's types, read from its BTF.
pub struct KernelTypes {
    btf: Btf,
    /// The file they came from, for messages.
    path: String,
}

/// A parsed BTF blob; freed when dropped.
struct Btf(*mut libbpf_sys::btf);

impl Drop for Btf {
    fn drop(&mut self) {
        // SAFETY: the pointer came from btf__parse and is freed once.
        unsafe { libbpf_sys::btf__free(self.0) }
    }
}

// BTF kinds, from `include/uapi/linux/btf.h`.
const INT: u32 = 1;
const PTR: u32 = 2;
const ARRAY: u32 = 3;
const STRUCT: u32 = 4;
const UNION: u32 = 5;
const ENUM: u32 = 6;
const FWD: u32 = 7;
const TYPEDEF: u32 = 8;
const VOLATILE: u32 = 9;
const CONST: u32 = 10;
const RESTRICT: u32 = 11;
const FUNC: u32 = 12;
const FUNC_PROTO: u32 = 13;
const FLOAT: u32 = 16;
const TYPE_TAG: u32 = 18;
const ENUM64: u32 = 19;

/// Longest chain of typedefs and qualifiers followed before giving up
/// (BTF from a sane kernel has no cycles; a corrupt one must not hang us).
const MAX_CHAIN: usize = 64;

/// One type record as BTF stores it.
struct Raw {
    kind: u32,
    vlen: usize,
    kind_flag: bool,
    /// `size` for sized kinds, `type` for referring ones.
    size_or_type: u32,
    name: String,
    record: *const libbpf_sys::btf_type,
}

impl Raw {
    /// The `n`-th 32-bit word after the 12-byte header: kind-specific data.
    fn word(&self, n: usize) -> u32 {
        // SAFETY: callers only read words the record's kind and vlen say exist.
        unsafe { *(self.record.add(1) as *const u32).add(n) }
    }
}

impl KernelTypes {
    /// The running kernel's types, from `/sys/kernel/btf/vmlinux`.
    pub fn vmlinux() -> Result<Self> {
        Self::parse(VMLINUX)
    }

    /// The types in the BTF file at `path`.
    pub fn parse(path: &str) -> Result<Self> {
        let what = || format!("reading BTF from {path}");
        let c_path = CString::new(path)
            .map_err(|_| Error::sys(what(), std::io::ErrorKind::InvalidInput.into()))?;
        // SAFETY: c_path is a valid C string; a null btf_ext is allowed.
        let btf = unsafe { libbpf_sys::btf__parse(c_path.as_ptr(), std::ptr::null_mut()) };
        // libbpf 1.x returns NULL with errno set on failure.
        if btf.is_null() {
            return Err(Error::sys(what(), std::io::Error::last_os_error()));
        }
        Ok(Self {
            btf: Btf(btf),
            path: path.to_string(),
        })
    }

    /// Every raw tracepoint the kernel describes (its `btf_trace_NAME`
    /// typedefs), sorted by name.
    pub fn raw_tracepoints(&self) -> Vec<RawTracepoint> {
        let mut out: Vec<RawTracepoint> = self
            .ids()
            .filter_map(|id| {
                let typedef = self.raw(id).filter(|r| r.kind == TYPEDEF)?;
                let name = typedef.name.strip_prefix("btf_trace_")?;
                let pointer = self.raw(typedef.size_or_type).filter(|r| r.kind == PTR)?;
                let proto = self
                    .raw(pointer.size_or_type)
                    .filter(|r| r.kind == FUNC_PROTO)?;
                Some(RawTracepoint {
                    name: name.to_string(),
                    // The first parameter is the context, not an argument.
                    args: proto.vlen.saturating_sub(1) as u32,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The id of kernel function `name`, which fentry/fexit programs name
    /// as their target.
    pub fn function_id(&self, name: &str) -> Result<TypeId> {
        self.find(name, FUNC).ok_or_else(|| {
            Error::Probe(format!(
                "the kernel's BTF ({}) has no function `{name}`: it may be inlined, static without BTF, or misspelled; list candidates with `scorch trace -l 'fentry:*{name}*'`",
                self.path
            ))
        })
    }

    /// The id of the `btf_trace_NAME` typedef of raw tracepoint `name`,
    /// which tp_btf programs name as their target.
    pub fn tracepoint_id(&self, name: &str) -> Result<TypeId> {
        self.find(&format!("btf_trace_{name}"), TYPEDEF).ok_or_else(|| {
            Error::Probe(format!(
                "the kernel's BTF ({}) has no raw tracepoint `{name}`; list them with `scorch trace -l 'rawtracepoint:*'`",
                self.path
            ))
        })
    }

    /// Every type id in the file (0, `void`, has no record).
    fn ids(&self) -> std::ops::Range<TypeId> {
        // SAFETY: btf is valid.
        1..unsafe { libbpf_sys::btf__type_cnt(self.btf.0) }
    }

    fn raw(&self, id: TypeId) -> Option<Raw> {
        // SAFETY: btf is valid; an out-of-range id gives NULL.
        let record = unsafe { libbpf_sys::btf__type_by_id(self.btf.0, id) };
        if record.is_null() {
            return None;
        }
        // SAFETY: record points at a btf_type inside the parsed blob.
        let (name_off, info, size_or_type) = unsafe {
            (
                (*record).name_off,
                (*record).info,
                (*record).__bindgen_anon_1.size,
            )
        };
        Some(Raw {
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            size_or_type,
            name: self.string(name_off),
            record,
        })
    }

    fn string(&self, offset: u32) -> String {
        // SAFETY: btf is valid; names are NUL-terminated in its string section.
        let name = unsafe { libbpf_sys::btf__name_by_offset(self.btf.0, offset) };
        if name.is_null() {
            return String::new();
        }
        // SAFETY: non-null names are valid C strings owned by btf.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    }

    fn find(&self, name: &str, kind: u32) -> Option<TypeId> {
        let c_name = CString::new(name).ok()?;
        // SAFETY: btf is valid and c_name a valid C string.
        let id = unsafe { libbpf_sys::btf__find_by_name_kind(self.btf.0, c_name.as_ptr(), kind) };
        u32::try_from(id).ok()
    }

    /// The struct or union named `name` (`task_struct`, `struct task_struct`
    /// or `union bpf_attr`).
    pub fn struct_named(&self, name: &str) -> Option<TypeId> {
        let name = name.trim();
        if let Some(tag) = name.strip_prefix("union ") {
            return self.find(tag.trim(), UNION);
        }
        let tag = name.strip_prefix("struct ").unwrap_or(name).trim();
        self.find(tag, STRUCT).or_else(|| self.find(tag, UNION))
    }

    /// The type `id` stands for, through typedefs and qualifiers.
    pub fn resolve(&self, id: TypeId) -> Type {
        let Some(raw) = self.skip_aliases(id).and_then(|id| self.raw(id)) else {
            return Type::Void;
        };
        match raw.kind {
            INT => {
                let encoding = raw.word(0) >> 24;
                Type::Int {
                    size: raw.size_or_type,
                    signed: encoding & 1 != 0,
                    // Kernels built with -funsigned-char leave the flag off.
                    char: encoding & 2 != 0 || raw.name == "char",
                    bool: encoding & 4 != 0,
                }
            }
            PTR => Type::Pointer(raw.size_or_type),
            ARRAY => Type::Array {
                element: raw.word(0),
                len: raw.word(2),
            },
            STRUCT | UNION => Type::Struct {
                name: raw.name,
                size: raw.size_or_type,
                union: raw.kind == UNION,
            },
            ENUM | ENUM64 => Type::Enum {
                name: raw.name,
                size: raw.size_or_type,
                signed: raw.kind_flag,
            },
            FLOAT => Type::Float {
                size: raw.size_or_type,
            },
            FUNC_PROTO => Type::Function,
            FWD => Type::Forward(raw.name),
            _ => Type::Void,
        }
    }

    /// `id` with typedefs and qualifiers followed to the type they name.
    fn skip_aliases(&self, mut id: TypeId) -> Option<TypeId> {
        for _ in 0..MAX_CHAIN {
            let raw = self.raw(id)?;
            match raw.kind {
                TYPEDEF | VOLATILE | CONST | RESTRICT | TYPE_TAG => id = raw.size_or_type,
                _ => return Some(id),
            }
        }
        None
    }

    /// Size of type `id` in bytes (`None` for `void`, functions and
    /// undefined structs).
    pub fn size_of(&self, id: TypeId) -> Option<u32> {
        // SAFETY: btf is valid; bad ids give a negative error.
        let size = unsafe { libbpf_sys::btf__resolve_size(self.btf.0, id) };
        u32::try_from(size).ok().filter(|&s| s > 0)
    }

    /// The members of struct or union `id` in declaration order; members of
    /// anonymous struct/union members appear in their place, with offsets
    /// from the outer struct, as C lets code name them.
    pub fn members(&self, id: TypeId) -> Vec<Member> {
        let mut out = Vec::new();
        self.collect_members(id, 0, &mut out, 0);
        out
    }

    fn collect_members(&self, id: TypeId, base_bits: u32, out: &mut Vec<Member>, depth: usize) {
        let Some(raw) = self.skip_aliases(id).and_then(|id| self.raw(id)) else {
            return;
        };
        if !matches!(raw.kind, STRUCT | UNION) || depth > MAX_CHAIN {
            return;
        }
        for i in 0..raw.vlen {
            // btf_member: name_off, type, offset (bitfield size in the top
            // byte when the struct's kind_flag is set).
            let (name_off, ty, offset) =
                (raw.word(3 * i), raw.word(3 * i + 1), raw.word(3 * i + 2));
            let (offset_bits, bitfield_bits) = match raw.kind_flag {
                true => (offset & 0x00ff_ffff, offset >> 24),
                false => (offset, 0),
            };
            let name = self.string(name_off);
            if name.is_empty() {
                self.collect_members(ty, base_bits + offset_bits, out, depth + 1);
            } else {
                out.push(Member {
                    name,
                    offset_bits: base_bits + offset_bits,
                    bitfield_bits,
                    ty,
                });
            }
        }
    }

    /// The member `name` of struct or union `id`, if it has one.
    pub fn member(&self, id: TypeId, name: &str) -> Option<Member> {
        self.members(id).into_iter().find(|m| m.name == name)
    }

    /// The parameters and return type of kernel function `name`.
    pub fn function(&self, name: &str) -> Option<(Vec<Param>, TypeId)> {
        let func = self.raw(self.find(name, FUNC)?)?;
        let proto = self.raw(func.size_or_type)?;
        if proto.kind != FUNC_PROTO {
            return None;
        }
        let params = (0..proto.vlen)
            .map(|i| Param {
                name: self.string(proto.word(2 * i)),
                ty: proto.word(2 * i + 1),
            })
            // A trailing `void` parameter marks a variadic function.
            .filter(|p| !(p.ty == 0 && p.name.is_empty()))
            .collect();
        Some((params, proto.size_or_type))
    }

    /// The names of every kernel function BTF describes, sorted: the
    /// targets fentry/fexit can name.
    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ids()
            .filter_map(|id| self.raw(id))
            .filter(|raw| raw.kind == FUNC)
            .map(|raw| raw.name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The typedef or base type (`pid_t`, `u64`, `unsigned int`) named
    /// `name`.
    pub fn type_named(&self, name: &str) -> Option<TypeId> {
        self.find(name, TYPEDEF).or_else(|| self.find(name, INT))
    }

    /// The tags of every struct and union, for suggestions.
    pub fn struct_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ids()
            .filter_map(|id| self.raw(id))
            .filter(|raw| matches!(raw.kind, STRUCT | UNION) && !raw.name.is_empty())
            .map(|raw| raw.name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Every enumerator of every enum, with its value, in BTF order (the
    /// first of two enumerators with one name wins where it matters).
    pub fn enumerators(&self) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for raw in self.ids().filter_map(|id| self.raw(id)) {
            for i in 0..raw.vlen {
                // btf_enum: name_off, val (i32, or u32 when unsigned);
                // btf_enum64: name_off, lo32, hi32.
                let value = match raw.kind {
                    ENUM if raw.kind_flag => i64::from(raw.word(2 * i + 1) as i32),
                    ENUM => i64::from(raw.word(2 * i + 1)),
                    ENUM64 => {
                        (u64::from(raw.word(3 * i + 2)) << 32 | u64::from(raw.word(3 * i + 1)))
                            as i64
                    }
                    _ => break,
                };
                let name_off = if raw.kind == ENUM64 {
                    raw.word(3 * i)
                } else {
                    raw.word(2 * i)
                };
                out.push((self.string(name_off), value));
            }
        }
        out
    }

    /// The argument types of raw tracepoint `name` (its `btf_trace_NAME`
    /// prototype without the context parameter).
    pub fn raw_tracepoint_args(&self, name: &str) -> Option<Vec<TypeId>> {
        let typedef = self.raw(self.find(&format!("btf_trace_{name}"), TYPEDEF)?)?;
        let pointer = self.raw(typedef.size_or_type).filter(|r| r.kind == PTR)?;
        let proto = self
            .raw(pointer.size_or_type)
            .filter(|r| r.kind == FUNC_PROTO)?;
        Some((1..proto.vlen).map(|i| proto.word(2 * i + 1)).collect())
    }

    /// How C spells type `id`: `struct task_struct *`, `char[16]`, `pid_t`.
    pub fn name_of(&self, id: TypeId) -> String {
        self.spell(id, 0)
    }

    fn spell(&self, id: TypeId, depth: usize) -> String {
        let Some(raw) = self.raw(id).filter(|_| depth < MAX_CHAIN) else {
            return "void".to_string();
        };
        let next = |t| self.spell(t, depth + 1);
        match raw.kind {
            0 => "void".to_string(),
            PTR => format!("{} *", next(raw.size_or_type)),
            ARRAY => format!("{}[{}]", next(raw.word(0)), raw.word(2)),
            CONST => format!("const {}", next(raw.size_or_type)),
            VOLATILE => format!("volatile {}", next(raw.size_or_type)),
            RESTRICT | TYPE_TAG => next(raw.size_or_type),
            STRUCT => format!("struct {}", raw.name),
            UNION => format!("union {}", raw.name),
            ENUM | ENUM64 => format!("enum {}", raw.name),
            FUNC_PROTO => "function".to_string(),
            FWD if raw.kind_flag => format!("union {}", raw.name),
            FWD => format!("struct {}", raw.name),
            _ => raw.name,
        }
    }
}
