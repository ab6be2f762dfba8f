//! Structs and unions stored whole: `$t = curtask->se.load`,
//! `@m[pid] = *p`, a struct in a tuple or a map key.
//!
//! A struct read through a pointer is normally held as its address
//! ([`Type::Mem`]) until a member is read. Where such a value is stored —
//! in a variable, a map, a tuple, or `print()` — its bytes are copied
//! instead, and it becomes a [`Type::Record`]: the layout user space needs
//! to print it as bpftrace does (`{ .weight = 1024, .inv_weight = 0 }`).
//! Members of a stored record read from the copy (`$t.weight`).

use std::sync::Arc;

use super::check::Checker;
use super::ctypes::{CTypeId, CTypes, Shape};
use super::types::{AddrSpace, Type};
use crate::ast::{Block, Expr, ExprKind};

/// A struct or union's layout, for printing its copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// Its C type, for reading members of the copy.
    pub id: CTypeId,
    /// As C spells it (`struct load_weight`).
    pub name: String,
    /// Its size in bytes.
    pub size: u32,
    /// Its members in order; those of unnamed members inlined.
    pub fields: Vec<Field>,
    /// Where its pointer members point: the memory it was copied from.
    pub pointers: AddrSpace,
}

/// A member of a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Where it starts, in bits from the start of the record.
    pub offset_bits: u32,
    /// What it holds.
    pub kind: FieldKind,
}

/// What a [`Field`] or an array element holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// An integer or enum of `size` bytes, or `bits` bits for a bitfield.
    Int {
        /// Size in bytes.
        size: u8,
        /// Signed.
        signed: bool,
        /// Width of a bitfield, else 0.
        bits: u8,
    },
    /// A pointer: bpftrace prints it as a signed number in values and in
    /// hex in map keys.
    Ptr,
    /// A `char` array: a string of at most this many bytes.
    Str(u32),
    /// An array of `len` elements of `stride` bytes.
    Array {
        /// The element.
        element: Box<FieldKind>,
        /// How many.
        len: u32,
        /// Size of one.
        stride: u32,
    },
    /// A nested struct or union.
    Record(Arc<Record>),
    /// Something bpftrace shows as nothing (a float, a function).
    Opaque,
}

/// How deeply records nest before the rest prints as nothing.
const MAX_NESTING: u32 = 16;

/// The layout of struct or union `id`, copied from memory in which its
/// pointers point into `pointers`.
pub fn layout(types: &CTypes, id: CTypeId, name: String, size: u32, pointers: AddrSpace) -> Record {
    let mut fields = Vec::new();
    members(types, id, 0, 0, pointers, &mut fields);
    Record {
        id,
        name,
        size,
        fields,
        pointers,
    }
}

/// Appends the members of record `id`, which starts `base_bits` into the
/// outer record, inlining unnamed ones.
fn members(
    types: &CTypes,
    id: CTypeId,
    base_bits: u32,
    depth: u32,
    pointers: AddrSpace,
    out: &mut Vec<Field>,
) {
    for m in types.members(id) {
        let offset_bits = base_bits.saturating_add(m.offset_bits);
        if m.name.is_empty() {
            if depth < MAX_NESTING && matches!(types.shape(m.ty), Shape::Record { .. }) {
                members(types, m.ty, offset_bits, depth + 1, pointers, out);
            }
            continue;
        }
        let kind = if m.bitfield_bits > 0 {
            match types.shape(m.ty) {
                Shape::Int { int, .. } => FieldKind::Int {
                    size: int.size,
                    signed: int.signed,
                    bits: m.bitfield_bits.min(64) as u8,
                },
                _ => FieldKind::Opaque,
            }
        } else {
            kind(types, m.ty, depth + 1, pointers)
        };
        out.push(Field {
            name: m.name,
            offset_bits,
            kind,
        });
    }
}

fn kind(types: &CTypes, id: CTypeId, depth: u32, pointers: AddrSpace) -> FieldKind {
    match types.shape(id) {
        Shape::Int { int, .. } => FieldKind::Int {
            size: int.size,
            signed: int.signed,
            bits: 0,
        },
        Shape::Pointer(_) => FieldKind::Ptr,
        Shape::Array { element, len } => match types.shape(element) {
            Shape::Int { char: true, .. } => FieldKind::Str(len),
            _ if depth < MAX_NESTING => FieldKind::Array {
                element: Box::new(kind(types, element, depth + 1, pointers)),
                len,
                stride: types.size_of(element).unwrap_or(0),
            },
            _ => FieldKind::Opaque,
        },
        Shape::Record { name, size } if depth < MAX_NESTING => {
            let mut fields = Vec::new();
            members(types, id, 0, depth + 1, pointers, &mut fields);
            FieldKind::Record(Arc::new(Record {
                id,
                name,
                size,
                fields,
                pointers,
            }))
        }
        _ => FieldKind::Opaque,
    }
}

impl Checker<'_> {
    /// The type of `e` where its value is stored: a struct or union in
    /// memory becomes a copy of its bytes.
    pub(super) fn stored_expr(&mut self, e: &Expr) -> Option<Type> {
        let ty = self.expr(e)?;
        let Type::Mem {
            id,
            name,
            size,
            pointers,
            ..
        } = &ty
        else {
            return Some(ty);
        };
        if !matches!(self.types.shape(*id), Shape::Record { .. }) {
            return Some(ty);
        }
        let record = Type::Record(Arc::new(layout(
            self.types,
            *id,
            name.clone(),
            *size,
            *pointers,
        )));
        self.copy_whole(e, &record);
        Some(record)
    }

    /// Makes `e`, which reads a struct, copy it as `record`: a ternary or
    /// a block copies it where each of its values is read.
    fn copy_whole(&mut self, e: &Expr, record: &Type) {
        self.set_type(e, record);
        match &e.kind {
            ExprKind::Ternary {
                then, otherwise, ..
            } => {
                self.copy_whole(then, record);
                self.copy_whole(otherwise, record);
            }
            ExprKind::Block(Block {
                value: Some(value), ..
            }) => self.copy_whole(value, record),
            _ => {}
        }
    }
}

/// Where the members of a stored record are read from: its copy, in BPF
/// memory, which `probe_read_kernel` reads.
pub const COPY_SPACE: AddrSpace = AddrSpace::Kernel;
