//! The map table: every `@map`, its key and value types, across probes.
//!
//! Maps are global, so a map's types are the sum of what every probe does
//! with it: `@start[tid] = nsecs` in one probe and `@start[tid]` read in
//! another must agree. Each use records what it implies — a key shape, a
//! value type — and the first place that fixed it; a later use that
//! disagrees is an error naming both places.

use std::collections::HashMap;

use super::types::{tseries_difference, Type};
use crate::diag::Diagnostic;
use crate::span::Span;

/// What one map turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// The name without `@` (empty for `@`).
    pub name: String,
    /// The key fields, empty for a map used without keys. Integers are
    /// widened to 8 bytes; a tuple key is flattened into its fields.
    pub keys: Vec<Type>,
    /// What the map holds: a storable value or an aggregation.
    pub value: Type,
    /// Maximum number of entries, when declared with `let @m = hash(N)`.
    pub max_entries: Option<u64>,
}

/// A type and where it was first established.
#[derive(Debug, Clone)]
struct Fixed {
    ty: Type,
    span: Span,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    keys: Option<(Vec<Type>, Span)>,
    value: Option<Fixed>,
    max_entries: Option<u64>,
}

/// Maps by name, in order of first appearance.
#[derive(Debug, Clone, Default)]
pub(super) struct MapTable {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

/// `@name` as printed in messages.
pub(super) fn display(name: &str) -> String {
    format!("@{name}")
}

fn describe_keys(keys: &[Type]) -> String {
    match keys {
        [] => "no key".to_string(),
        [one] => format!("a key of type {one}"),
        many => format!(
            "keys of type ({})",
            many.iter()
                .map(Type::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl MapTable {
    fn entry(&mut self, name: &str) -> &mut Entry {
        let index = *self.by_name.entry(name.to_string()).or_insert_with(|| {
            self.entries.push(Entry {
                name: name.to_string(),
                keys: None,
                value: None,
                max_entries: None,
            });
            self.entries.len() - 1
        });
        &mut self.entries[index]
    }

    /// Records a declaration `let @name = hash(N)`.
    pub(super) fn declare(&mut self, name: &str, max_entries: u64) {
        self.entry(name).max_entries = Some(max_entries);
    }

    /// Records that `@name` is used at `span` with keys of `keys` types.
    pub(super) fn use_keys(
        &mut self,
        name: &str,
        keys: Vec<Type>,
        span: Span,
    ) -> Result<(), Diagnostic> {
        let entry = self.entry(name);
        match &mut entry.keys {
            None => {
                entry.keys = Some((keys, span));
                Ok(())
            }
            Some((known, first)) => {
                let unified = (known.len() == keys.len())
                    .then(|| {
                        known
                            .iter()
                            .zip(&keys)
                            .map(|(a, b)| a.unify(b))
                            .collect::<Option<Vec<_>>>()
                    })
                    .flatten();
                match unified {
                    Some(unified) => {
                        *known = unified;
                        Ok(())
                    }
                    None => Err(Diagnostic::error(
                        span,
                        format!(
                            "{} is used with {} here, but with {} before",
                            display(name),
                            describe_keys(&keys),
                            describe_keys(known)
                        ),
                    )
                    .with_note(*first, "first used here")),
                }
            }
        }
    }

    /// Records that `@name` is given a value of type `ty` at `span`.
    pub(super) fn assign(&mut self, name: &str, ty: Type, span: Span) -> Result<(), Diagnostic> {
        let entry = self.entry(name);
        match &mut entry.value {
            None => {
                entry.value = Some(Fixed { ty, span });
                Ok(())
            }
            Some(fixed) => match fixed.ty.unify(&ty) {
                Some(unified) => {
                    fixed.ty = unified;
                    Ok(())
                }
                None => Err(Diagnostic::error(
                    span,
                    match mismatch(&ty, &fixed.ty) {
                        Some(what) => format!(
                            "type mismatch for {}: this tseries has {what} as before",
                            display(name)
                        ),
                        None => format!(
                            "type mismatch for {}: assigning {ty} to a map that holds {}",
                            display(name),
                            fixed.ty
                        ),
                    },
                )
                .with_note(
                    fixed.span,
                    format!("{} first holds {} here", display(name), fixed.ty),
                )),
            },
        }
    }

    /// The value type of `@name`, once something was assigned to it.
    pub(super) fn value(&self, name: &str) -> Option<&Type> {
        let entry = &self.entries[*self.by_name.get(name)?];
        entry.value.as_ref().map(|f| &f.ty)
    }

    /// The key types of `@name`, once it was used with keys.
    pub(super) fn keys(&self, name: &str) -> Option<&[Type]> {
        let entry = &self.entries[*self.by_name.get(name)?];
        entry.keys.as_ref().map(|(k, _)| k.as_slice())
    }

    /// Every map name, for suggestions.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// A fingerprint of what is known, to detect when inference settles.
    pub(super) fn snapshot(&self) -> Vec<(Option<Vec<Type>>, Option<Type>)> {
        self.entries
            .iter()
            .map(|e| {
                (
                    e.keys.as_ref().map(|(k, _)| k.clone()),
                    e.value.as_ref().map(|f| f.ty.clone()),
                )
            })
            .collect()
    }

    /// The finished table: maps with a value, in order of appearance.
    pub(super) fn finish(&self) -> Vec<MapInfo> {
        self.entries
            .iter()
            .filter_map(|e| {
                Some(MapInfo {
                    name: e.name.clone(),
                    keys: e.keys.as_ref().map(|(k, _)| k.clone()).unwrap_or_default(),
                    value: e.value.as_ref()?.ty.clone(),
                    max_entries: e.max_entries,
                })
            })
            .collect()
    }
}

/// What differs between two time series assigned to one map.
fn mismatch(new: &Type, old: &Type) -> Option<String> {
    match (new, old) {
        (Type::Agg(new), Type::Agg(old)) => tseries_difference(new, old),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sema::types::AggKind;

    #[test]
    fn keys_and_values_unify_or_conflict() {
        let mut t = MapTable::default();
        t.use_keys("x", vec![Type::Str(16)], Span::new(0, 1))
            .unwrap();
        t.use_keys("x", vec![Type::Str(64)], Span::new(2, 3))
            .unwrap();

        let e = t.use_keys("x", vec![], Span::new(4, 5)).unwrap_err();
        assert_eq!(
            e.message,
            "@x is used with no key here, but with a key of type string[64] before"
        );
        assert_eq!(e.notes[0].span, Some(Span::new(0, 1)));

        t.assign("x", Type::Agg(AggKind::Count), Span::new(6, 7))
            .unwrap();
        let e = t.assign("x", Type::I64, Span::new(8, 9)).unwrap_err();
        assert_eq!(
            e.message,
            "type mismatch for @x: assigning int64 to a map that holds count_t"
        );
        assert_eq!(t.finish()[0].keys, [Type::Str(64)]);
        t.use_keys("never_assigned", vec![], Span::new(0, 0))
            .unwrap();
        assert_eq!(t.finish().len(), 1);
        assert_eq!(t.names().collect::<Vec<_>>(), ["x", "never_assigned"]);
    }
}
