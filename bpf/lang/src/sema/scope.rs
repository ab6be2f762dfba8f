//! Scratch variables (`$x`) and where they are visible.
//!
//! A variable belongs to one probe. `let $x` declares it in the enclosing
//! block, as current bpftrace does; a plain `$x = …` with no `$x` in view
//! declares it for the rest of the probe, as older bpftrace did, so both
//! kinds of script keep working. A variable's type is the unification of
//! everything assigned to it (strings take the largest size), which takes
//! more than one walk over the probe: declarations are keyed by where they
//! are written, so every walk finds the same variable again.

use std::collections::HashMap;

use super::types::Type;
use crate::span::Span;

/// Identifies a variable; an index into [`super::Analysis::vars`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub u32);

/// One scratch variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarInfo {
    /// The name without `$`.
    pub name: String,
    /// Its type, once known: every assignment unified.
    pub ty: Option<Type>,
    /// The size of the integer it was first assigned. It holds 64 bits,
    /// but bpftrace's variable keeps that type: `bswap($port)` of a
    /// `u16` swaps two bytes.
    pub int_size: Option<u8>,
    /// Where it was declared (or first assigned).
    pub span: Span,
    /// Assigned a value that had an error, already reported: uses of it
    /// report nothing more.
    pub failed: bool,
}

/// Every variable of the program, persisting across walks.
#[derive(Debug, Clone, Default)]
pub(super) struct Vars {
    pub(super) infos: Vec<VarInfo>,
    by_decl: HashMap<Span, VarId>,
    /// Visible names, innermost block last; the first entry is the probe.
    scopes: Vec<HashMap<String, VarId>>,
}

impl Vars {
    /// Starts a probe: no variable is visible.
    pub(super) fn enter_probe(&mut self) {
        self.scopes.clear();
        self.scopes.push(HashMap::new());
    }

    pub(super) fn push_block(&mut self) {
        self.scopes.push(HashMap::new());
    }

    pub(super) fn pop_block(&mut self) {
        if self.scopes.len() > 1 {
            self.scopes.pop();
        }
    }

    /// The visible variable called `name`.
    pub(super) fn lookup(&self, name: &str) -> Option<VarId> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    /// Whether `name` is declared in the innermost block.
    pub(super) fn in_innermost(&self, name: &str) -> bool {
        self.scopes.last().is_some_and(|s| s.contains_key(name))
    }

    /// Declares `name` at `span`, in the innermost block (`let`) or for
    /// the whole probe.
    pub(super) fn declare(&mut self, name: &str, span: Span, block_scoped: bool) -> VarId {
        let id = *self.by_decl.entry(span).or_insert_with(|| {
            self.infos.push(VarInfo {
                name: name.to_string(),
                ty: None,
                int_size: None,
                span,
                failed: false,
            });
            VarId(self.infos.len() as u32 - 1)
        });
        let scope = if block_scoped {
            self.scopes.last_mut()
        } else {
            self.scopes.first_mut()
        };
        if let Some(scope) = scope {
            scope.insert(name.to_string(), id);
        }
        id
    }

    pub(super) fn info(&self, id: VarId) -> &VarInfo {
        &self.infos[id.0 as usize]
    }

    /// Notes that the variable was assigned a value with an error.
    pub(super) fn mark_failed(&mut self, id: VarId) {
        self.infos[id.0 as usize].failed = true;
    }

    /// Unifies `ty` into the variable's type; on a mismatch returns the
    /// type it already has.
    pub(super) fn assign(&mut self, id: VarId, ty: &Type) -> Result<(), Type> {
        let info = &mut self.infos[id.0 as usize];
        if let (None, Type::Int(int)) = (&info.ty, ty) {
            info.int_size = Some(int.size);
        }
        let ty = ty.widened();
        match &info.ty {
            None => {
                info.ty = Some(ty);
                Ok(())
            }
            // An integer variable keeps its type; values convert to it.
            Some(Type::Int(_)) if ty.is_int() => Ok(()),
            Some(known) => match known.unify(&ty) {
                Some(unified) => {
                    info.ty = Some(unified);
                    Ok(())
                }
                None => Err(known.clone()),
            },
        }
    }

    /// Visible variable names, for suggestions.
    pub(super) fn visible(&self) -> Vec<&str> {
        self.scopes
            .iter()
            .flat_map(|s| s.keys().map(String::as_str))
            .collect()
    }

    pub(super) fn snapshot(&self) -> Vec<Option<Type>> {
        self.infos.iter().map(|i| i.ty.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn let_is_block_scoped_and_assignment_is_probe_scoped() {
        let mut v = Vars::default();
        v.enter_probe();
        v.push_block();
        let a = v.declare("a", Span::new(1, 2), false);
        let b = v.declare("b", Span::new(3, 4), true);
        assert_eq!(v.lookup("b"), Some(b));
        v.pop_block();
        assert_eq!(v.lookup("a"), Some(a));
        assert_eq!(v.lookup("b"), None);
        // A second walk finds the same variable.
        v.enter_probe();
        assert_eq!(v.declare("a", Span::new(1, 2), false), a);
        assert_eq!(v.infos.len(), 2);
    }

    #[test]
    fn types_unify() {
        let mut v = Vars::default();
        v.enter_probe();
        let s = v.declare("s", Span::new(0, 1), false);
        v.assign(s, &Type::Str(4)).unwrap();
        v.assign(s, &Type::Str(16)).unwrap();
        assert_eq!(v.info(s).ty, Some(Type::Str(16)));
        assert_eq!(v.assign(s, &Type::I64), Err(Type::Str(16)));
    }
}
