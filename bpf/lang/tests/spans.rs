//! Span and id invariants over every valid corpus program: each node's span
//! lies inside its parent's, starts and ends on character boundaries, and
//! expression ids are dense and unique — what later passes rely on when
//! they point at source or keep per-expression tables.

use std::fs;
use std::path::Path;

use scorch_lang::ast::{Block, Expr, Item, Stmt, TypeExpr};
use scorch_lang::visit::{self, Visitor};
use scorch_lang::{parse, SourceFile, Span};

struct Check<'f> {
    file: &'f SourceFile,
    parents: Vec<(Span, &'static str)>,
    ids: Vec<u32>,
    problems: Vec<String>,
}

impl Check<'_> {
    /// Checks `span` against its parent, then runs `walk` with it as parent.
    fn node(&mut self, span: Span, what: &'static str, walk: impl FnOnce(&mut Self)) {
        let text = self.file.text();
        if span.end as usize > text.len()
            || !text.is_char_boundary(span.start as usize)
            || !text.is_char_boundary(span.end as usize)
        {
            self.problems
                .push(format!("{what} {span:?} is not a valid range"));
        }
        if let Some(&(parent, parent_what)) = self.parents.last() {
            if !parent.contains(span) {
                self.problems.push(format!(
                    "{what} `{}` {span:?} is outside its parent {parent_what} `{}` {parent:?}",
                    self.file.snippet(span),
                    self.file.snippet(parent)
                ));
            }
        }
        self.parents.push((span, what));
        walk(self);
        self.parents.pop();
    }
}

impl Visitor for Check<'_> {
    fn visit_item(&mut self, item: &Item) {
        if let Item::Probe(probe) = item {
            for spec in &probe.specs {
                if !probe.span.contains(spec.span) {
                    self.problems
                        .push(format!("spec {:?} outside its probe", spec.span));
                }
                for part in &spec.parts {
                    if !spec.span.contains(part.span) || self.file.snippet(part.span) != part.text {
                        self.problems
                            .push(format!("spec part {part:?} does not match the source"));
                    }
                }
            }
        }
        self.node(item.span(), "item", |c| visit::walk_item(c, item));
    }

    fn visit_block(&mut self, block: &Block) {
        let text = self.file.snippet(block.span);
        if !(text.starts_with('{') && text.ends_with('}')) {
            self.problems
                .push(format!("block span `{text}` is not braced"));
        }
        self.node(block.span, "block", |c| visit::walk_block(c, block));
    }

    fn visit_stmt(&mut self, stmt: &Stmt) {
        self.node(stmt.span, "statement", |c| visit::walk_stmt(c, stmt));
    }

    fn visit_expr(&mut self, expr: &Expr) {
        self.ids.push(expr.id.0);
        if expr.span.is_empty() {
            self.problems
                .push(format!("expression {:?} has an empty span", expr.kind));
        }
        self.node(expr.span, "expression", |c| visit::walk_expr(c, expr));
    }

    fn visit_type(&mut self, ty: &TypeExpr) {
        self.node(ty.span, "type", |c| visit::walk_type(c, ty));
    }
}

#[test]
fn spans_nest_and_ids_are_dense() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/valid");
    let mut checked = 0;
    for entry in fs::read_dir(dir).expect("corpus directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|e| e != "bt") {
            continue;
        }
        let file = SourceFile::from_bytes(
            path.display().to_string(),
            &fs::read(&path).expect("corpus file"),
        );
        let program = parse(&file).expect("valid program");
        let mut check = Check {
            file: &file,
            parents: vec![(program.span, "program")],
            ids: Vec::new(),
            problems: Vec::new(),
        };
        visit::walk_program(&mut check, &program);
        check.ids.sort_unstable();
        let expected: Vec<u32> = (0..program.expr_count).collect();
        if check.ids != expected {
            check.problems.push(format!(
                "expression ids are not 0..{}: {:?}",
                program.expr_count, check.ids
            ));
        }
        assert!(
            check.problems.is_empty(),
            "{}:\n{}",
            path.display(),
            check.problems.join("\n")
        );
        checked += 1;
    }
    assert!(checked >= 30);
}
