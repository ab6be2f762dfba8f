//! C types: the kernel's, from BTF, and those a script declares.
//!
//! `curtask->real_parent->comm`, `(struct sock *)arg0` and
//! `sizeof(struct task_struct)` all ask questions about C types: where a
//! member lies, what it is, how big a type is. The kernel's BTF answers
//! them for its own types ([`KernelTypes`]); a script may declare more
//! (`struct flow { u32 saddr; u16 sport; }`), laid out here as a C compiler
//! lays them out. [`CTypes`] puts the two behind one set of ids
//! ([`CTypeId`]), so a script struct can hold a pointer to a kernel one
//! and the checker never asks where a type came from.
//!
//! It also knows the identifiers C headers would have given a script:
//! enumerators (from BTF enums and the script's own `enum`s) and the
//! `#define` constants of [`super::constants`].

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

use scorch_bpf::btf_types::{KernelTypes, Type as Btf};

use super::tracepoint::c_int_type;
use super::types::{AddrSpace, IntType, Type};
use crate::ast::{RecordKind, TypeExpr, TypeKind};
use crate::diag::Diagnostic;

mod declare;

/// A C type: one of the kernel's (its BTF id) or one made here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CTypeId {
    /// A type of the kernel's BTF.
    Kernel(u32),
    /// A type declared by the script (or made for a cast).
    Script(u32),
}

/// What a C type is, typedefs and qualifiers seen through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `void`.
    Void,
    /// An integer, `char`, `_Bool` or enum.
    Int {
        /// Its size and signedness.
        int: IntType,
        /// Whether it is a `char`.
        char: bool,
    },
    /// A pointer.
    Pointer(CTypeId),
    /// A fixed-size array.
    Array {
        /// Element type.
        element: CTypeId,
        /// Number of elements.
        len: u32,
    },
    /// A struct or union, defined.
    Record {
        /// `struct NAME` or `union NAME`.
        name: String,
        /// Size in bytes.
        size: u32,
    },
    /// Something a script cannot read: floats, functions, undefined structs.
    Opaque(String),
}

/// A member of a struct or union (members of anonymous members appear
/// in their place, as C lets code name them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// Offset from the start of the record, in bits.
    pub offset_bits: u32,
    /// Width when a bitfield, else 0.
    pub bitfield_bits: u32,
    /// Its type.
    pub ty: CTypeId,
}

/// A type made here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Made {
    Int(IntType, bool),
    Pointer(CTypeId),
    Array(CTypeId, u32),
    /// `struct NAME` used but never defined: pointers to it are fine.
    Forward(String),
    Record {
        name: String,
        size: u32,
        align: u32,
        members: Vec<Member>,
    },
}

/// The C types a program can name.
pub struct CTypes<'k> {
    kernel: Option<&'k KernelTypes>,
    made: RefCell<Vec<Made>>,
    /// Script records by `struct NAME` / `union NAME`.
    records: HashMap<String, CTypeId>,
    /// Enumerators the script declares.
    script_enums: HashMap<String, i64>,
    /// The kernel's enumerators, read on first use.
    kernel_enums: OnceCell<HashMap<String, i64>>,
    /// Kernel lookups by name already made: each is a scan of every type.
    kernel_names: RefCell<HashMap<String, Option<u32>>>,
}

impl<'k> CTypes<'k> {
    /// The kernel's types (when its BTF could be read), and none of the
    /// script's yet.
    pub fn new(kernel: Option<&'k KernelTypes>) -> Self {
        CTypes {
            kernel,
            made: RefCell::new(Vec::new()),
            records: HashMap::new(),
            script_enums: HashMap::new(),
            kernel_enums: OnceCell::new(),
            kernel_names: RefCell::new(HashMap::new()),
        }
    }

    /// `lookup(name)` in the kernel's types, remembered.
    fn kernel_lookup(
        &self,
        key: &str,
        lookup: impl FnOnce(&KernelTypes) -> Option<u32>,
    ) -> Option<u32> {
        let k = self.kernel?;
        if let Some(found) = self.kernel_names.borrow().get(key) {
            return *found;
        }
        let found = lookup(k);
        self.kernel_names
            .borrow_mut()
            .insert(key.to_string(), found);
        found
    }

    /// Whether kernel types are available.
    pub fn has_kernel(&self) -> bool {
        self.kernel.is_some()
    }

    fn make(&self, made: Made) -> CTypeId {
        let mut all = self.made.borrow_mut();
        if let Some(i) = all.iter().position(|m| *m == made) {
            return CTypeId::Script(i as u32);
        }
        all.push(made);
        CTypeId::Script(all.len() as u32 - 1)
    }

    fn made(&self, i: u32) -> Option<Made> {
        self.made.borrow().get(i as usize).cloned()
    }

    /// The integer type `int`.
    pub fn int(&self, int: IntType) -> CTypeId {
        self.make(Made::Int(int, false))
    }

    /// A pointer to `to`.
    pub fn pointer_to(&self, to: CTypeId) -> CTypeId {
        self.make(Made::Pointer(to))
    }

    /// What `id` is.
    pub fn shape(&self, id: CTypeId) -> Shape {
        match id {
            CTypeId::Script(i) => match self.made(i) {
                Some(Made::Int(int, char)) => Shape::Int { int, char },
                Some(Made::Pointer(to)) => Shape::Pointer(to),
                Some(Made::Array(element, len)) => Shape::Array { element, len },
                Some(Made::Record { name, size, .. }) => Shape::Record { name, size },
                Some(Made::Forward(name)) => {
                    Shape::Opaque(format!("{name} (declared, never defined)"))
                }
                None => Shape::Void,
            },
            CTypeId::Kernel(id) => self.kernel_shape(id, 0),
        }
    }

    fn kernel_shape(&self, id: u32, depth: u32) -> Shape {
        let Some(k) = self.kernel else {
            return Shape::Void;
        };
        match k.resolve(id) {
            Btf::Void => Shape::Void,
            Btf::Int {
                size,
                signed,
                char,
                bool,
            } => Shape::Int {
                int: IntType {
                    size: size.clamp(1, 8) as u8,
                    // `char` reads as `int8`, as in bpftrace.
                    signed: (signed || char) && !bool,
                },
                char,
            },
            Btf::Enum { size, signed, .. } => Shape::Int {
                int: IntType {
                    size: size.clamp(1, 8) as u8,
                    signed,
                },
                char: false,
            },
            Btf::Pointer(to) => Shape::Pointer(CTypeId::Kernel(to)),
            Btf::Array { element, len } => Shape::Array {
                element: CTypeId::Kernel(element),
                len,
            },
            Btf::Struct { size, .. } => Shape::Record {
                name: k.name_of(id),
                size,
            },
            Btf::Forward(name) => {
                // Defined elsewhere in the kernel's BTF, most likely.
                let defined = if depth == 0 {
                    k.struct_named(&name).filter(|&d| d != id)
                } else {
                    None
                };
                match defined {
                    Some(d) => self.kernel_shape(d, depth + 1),
                    None => Shape::Opaque(format!("{} (declared, never defined)", k.name_of(id))),
                }
            }
            Btf::Float { .. } => Shape::Opaque("a floating-point number".into()),
            Btf::Function => Shape::Opaque("a function".into()),
        }
    }

    /// The struct or union `id` itself, with forward declarations
    /// followed to their definition.
    fn definition(&self, id: CTypeId) -> CTypeId {
        match (id, self.kernel) {
            (CTypeId::Kernel(k_id), Some(k)) => match k.resolve(k_id) {
                Btf::Forward(name) => k.struct_named(&name).map_or(id, CTypeId::Kernel),
                _ => id,
            },
            _ => id,
        }
    }

    /// The members of struct or union `id`.
    pub fn members(&self, id: CTypeId) -> Vec<Member> {
        match self.definition(id) {
            CTypeId::Script(i) => match self.made(i) {
                Some(Made::Record { members, .. }) => members,
                _ => Vec::new(),
            },
            CTypeId::Kernel(k_id) => self.kernel.map_or_else(Vec::new, |k| {
                k.members(k_id)
                    .into_iter()
                    .map(|m| Member {
                        name: m.name,
                        offset_bits: m.offset_bits,
                        bitfield_bits: m.bitfield_bits,
                        ty: CTypeId::Kernel(m.ty),
                    })
                    .collect()
            }),
        }
    }

    /// Size of `id` in bytes, if it has one.
    pub fn size_of(&self, id: CTypeId) -> Option<u32> {
        match self.shape(id) {
            Shape::Int { int, .. } => Some(u32::from(int.size)),
            Shape::Pointer(_) => Some(8),
            Shape::Array { element, len } => self.size_of(element)?.checked_mul(len),
            Shape::Record { size, .. } => Some(size),
            Shape::Void | Shape::Opaque(_) => None,
        }
    }

    /// Alignment of `id` when laid out in a script struct.
    fn align_of(&self, id: CTypeId, depth: u32) -> u32 {
        match self.shape(id) {
            Shape::Int { int, .. } => u32::from(int.size),
            Shape::Pointer(_) => 8,
            Shape::Array { element, .. } if depth < 16 => self.align_of(element, depth + 1),
            Shape::Record { .. } => match id {
                CTypeId::Script(i) => match self.made(i) {
                    Some(Made::Record { align, .. }) => align,
                    _ => 1,
                },
                CTypeId::Kernel(_) if depth < 16 => self
                    .members(id)
                    .iter()
                    .map(|m| self.align_of(m.ty, depth + 1))
                    .max()
                    .unwrap_or(1),
                CTypeId::Kernel(_) => 8,
            },
            _ => 1,
        }
    }

    /// How C spells `id`.
    pub fn name_of(&self, id: CTypeId) -> String {
        match id {
            CTypeId::Kernel(k_id) => self.kernel.map_or("void".into(), |k| k.name_of(k_id)),
            CTypeId::Script(i) => match self.made(i) {
                Some(Made::Int(int, _)) => int.to_string(),
                Some(Made::Pointer(to)) => format!("{} *", self.name_of(to)),
                Some(Made::Array(element, len)) => format!("{}[{len}]", self.name_of(element)),
                Some(Made::Record { name, .. } | Made::Forward(name)) => name,
                None => "void".into(),
            },
        }
    }

    /// The struct or union `kind name`, the script's first.
    pub fn record(&self, kind: RecordKind, name: &str) -> Option<CTypeId> {
        let key = format!("{} {name}", kind.as_str());
        if let Some(&id) = self.records.get(&key) {
            return Some(id);
        }
        let k = self.kernel?;
        let id = self.kernel_lookup(&key, |k| k.struct_named(&key))?;
        let union = matches!(k.resolve(id), Btf::Struct { union: true, .. });
        (union == (kind == RecordKind::Union)).then_some(CTypeId::Kernel(id))
    }

    /// The type a plain name denotes: a language or C integer type, or a
    /// kernel typedef.
    pub fn named(&self, name: &str) -> Option<CTypeId> {
        if let Some(int) = c_int_type(name) {
            let char = name == "char";
            return Some(self.make(Made::Int(int, char)));
        }
        self.kernel_lookup(name, |k| k.type_named(name))
            .map(CTypeId::Kernel)
    }

    /// The value of enumerator `name`: the script's, else the kernel's.
    pub fn enumerator(&self, name: &str) -> Option<i64> {
        if let Some(&v) = self.script_enums.get(name) {
            return Some(v);
        }
        let k = self.kernel?;
        self.kernel_enums
            .get_or_init(|| {
                let mut all = HashMap::new();
                for (name, value) in k.enumerators() {
                    all.entry(name).or_insert(value);
                }
                all
            })
            .get(name)
            .copied()
    }

    /// The closest constant or enumerator name to `name`, for "did you
    /// mean".
    pub fn near_constant(&self, name: &str) -> Option<String> {
        let mut names: Vec<&str> = super::constants::names().collect();
        names.extend(self.script_enums.keys().map(String::as_str));
        if let Some(kernel) = self.kernel_enums.get() {
            names.extend(kernel.keys().map(String::as_str));
        }
        crate::suggest::closest(name, names).map(str::to_string)
    }

    /// The closest struct name to `name`, for "did you mean".
    pub fn near_record(&self, name: &str) -> Option<String> {
        let mut names: Vec<String> = self
            .records
            .keys()
            .filter_map(|k| k.split_once(' ').map(|(_, n)| n.to_string()))
            .collect();
        if let Some(k) = self.kernel {
            names.extend(k.struct_names());
        }
        crate::suggest::closest(name, names.iter().map(String::as_str)).map(str::to_string)
    }

    /// The C type a written type names, or why there is none.
    pub fn from_type_expr(&self, t: &TypeExpr) -> Result<CTypeId, Diagnostic> {
        match &t.kind {
            TypeKind::Named(name) => self.named(name).ok_or_else(|| {
                let d = Diagnostic::error(t.span, format!("unknown type `{name}`"));
                if self.kernel.is_none() {
                    d.with_help("kernel types need the kernel's BTF (/sys/kernel/btf/vmlinux)")
                } else {
                    d
                }
            }),
            TypeKind::Record {
                kind: RecordKind::Enum,
                name,
            } => Ok(match self.kernel.and_then(|k| k.type_named(name)) {
                Some(id) => CTypeId::Kernel(id),
                None => self.int(IntType::I32),
            }),
            TypeKind::Record { kind, name } => self.record(*kind, name).ok_or_else(|| {
                let mut d =
                    Diagnostic::error(t.span, format!("unknown type `{} {name}`", kind.as_str()));
                if self.kernel.is_none() {
                    d = d.with_help("kernel types need the kernel's BTF (/sys/kernel/btf/vmlinux)");
                } else if let Some(near) = self.near_record(name) {
                    d = d.with_help(format!("did you mean `{} {near}`?", kind.as_str()));
                } else {
                    d = d.with_help(format!(
                        "this kernel's BTF has no `{} {name}`; declare it in the script: `{} {name} {{ … }}`",
                        kind.as_str(),
                        kind.as_str()
                    ));
                }
                d
            }),
            TypeKind::Pointer(inner) => {
                let to = match &inner.kind {
                    TypeKind::Named(n) if n == "void" => self.int(IntType {
                        size: 1,
                        signed: false,
                    }),
                    _ => self.from_type_expr(inner)?,
                };
                Ok(self.pointer_to(to))
            }
            TypeKind::Array { elem, len } => {
                let element = self.from_type_expr(elem)?;
                Ok(self.make(Made::Array(element, len.unwrap_or(0).min(1 << 20) as u32)))
            }
        }
    }

    /// The type of a value of C type `id` read from `space`, or why it
    /// cannot be read.
    pub fn value_type(&self, id: CTypeId, space: AddrSpace) -> Result<Type, String> {
        self.member_type(id, space, space)
    }

    /// The type of a value of C type `id` read from `space` whose pointers
    /// point into `pointers`: they differ for a member of a struct copied
    /// from user memory, which is read from the copy.
    pub fn member_type(
        &self,
        id: CTypeId,
        space: AddrSpace,
        pointers: AddrSpace,
    ) -> Result<Type, String> {
        match self.shape(id) {
            Shape::Int { int, .. } => Ok(Type::Int(int)),
            Shape::Pointer(to) => Ok(self.pointer(to, pointers)),
            Shape::Array { element, len } => {
                if matches!(self.shape(element), Shape::Int { char: true, .. }) {
                    return Ok(Type::Str(len.max(1)));
                }
                self.mem(id, space, pointers)
            }
            Shape::Record { .. } => self.mem(id, space, pointers),
            Shape::Void => Err("void".into()),
            Shape::Opaque(what) => Err(what),
        }
    }

    /// A pointer to `to` in `space`, as a value.
    pub fn pointer(&self, to: CTypeId, space: AddrSpace) -> Type {
        Type::Ptr {
            target: self.name_of(to),
            space,
            to: Some(to),
        }
    }

    fn mem(&self, id: CTypeId, space: AddrSpace, pointers: AddrSpace) -> Result<Type, String> {
        let size = self
            .size_of(id)
            .ok_or_else(|| format!("{} (no size)", self.name_of(id)))?;
        Ok(Type::Mem {
            id,
            name: self.name_of(id),
            size,
            space,
            pointers,
        })
    }
}

/// C type spelling `name` without surrounding space and leading
/// `const`/`volatile` (`const struct path` → `struct path`).
pub fn strip_qualifiers(name: &str) -> &str {
    let mut name = name.trim();
    while let Some(rest) = name
        .strip_prefix("const ")
        .or_else(|| name.strip_prefix("volatile "))
    {
        name = rest.trim();
    }
    name
}
