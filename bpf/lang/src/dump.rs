//! A stable text form of the AST, for golden tests and stage dumps.
//!
//! The dump is an S-expression: `(head child child …)`. Leaves are atoms:
//! `$x` (variable), `@m` (map), `$1`, `$#`, `pid` (identifier), `42`,
//! `"text"` (string, escaped), `true`; written types are `<struct task *>`.
//! Operators are their symbols, with the arity telling unary from binary
//! (`(- x)` vs `(- a b)`). A list goes on one line when it fits in 80
//! columns, otherwise its children go one per line, indented by two.
//!
//! Spans are not printed: the dump is about structure, and stays readable
//! when a program is edited above the node.

use std::fmt::Write as _;

use crate::ast::{
    Block, Config, ConfigValue, Directive, Else, Expr, ExprKind, ForIterable, If, Item,
    MacroParamKind, ProbeSpec, Program, Stmt, StmtKind, TypeExpr, TypeKind, TypeOrExpr,
};

/// Width a flat list may take, indentation included.
const WIDTH: usize = 80;

/// The program as an indented S-expression, ending with a newline.
pub fn dump(program: &Program) -> String {
    let tree = list("program", program.items.iter().map(item).collect());
    let mut out = String::new();
    tree.write(&mut out, 0);
    out.push('\n');
    out
}

/// A node of the printed tree.
enum Sexp {
    Atom(String),
    List(Vec<Sexp>),
}

impl Sexp {
    /// Writes the node at `indent`, flat if it fits.
    fn write(&self, out: &mut String, indent: usize) {
        let flat = self.flat();
        let Sexp::List(items) = self else {
            out.push_str(&flat);
            return;
        };
        if indent + flat.len() <= WIDTH {
            out.push_str(&flat);
            return;
        }
        // Leading atoms stay on the first line while it fits: `(call printf` …
        let mut line = indent + 1;
        let mut head = 0;
        for item in items {
            let Sexp::Atom(atom) = item else { break };
            if head > 0 && line + 1 + atom.len() > WIDTH {
                break;
            }
            line += atom.len() + usize::from(head > 0);
            head += 1;
        }
        let head = head.max(1);
        out.push('(');
        for (i, item) in items.iter().enumerate() {
            if i > 0 && i < head {
                out.push(' ');
            } else if i >= head {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent + 2));
            }
            item.write(out, indent + 2);
        }
        out.push(')');
    }

    fn flat(&self) -> String {
        match self {
            Sexp::Atom(atom) => atom.clone(),
            Sexp::List(items) => {
                let inner: Vec<String> = items.iter().map(Sexp::flat).collect();
                format!("({})", inner.join(" "))
            }
        }
    }
}

fn atom(text: impl Into<String>) -> Sexp {
    Sexp::Atom(text.into())
}

fn list(head: &str, mut rest: Vec<Sexp>) -> Sexp {
    rest.insert(0, atom(head));
    Sexp::List(rest)
}

fn item(item: &Item) -> Sexp {
    match item {
        Item::Preproc(p) => match &p.directive {
            Directive::Include { path, system: true } => {
                list("include", vec![atom(format!("<{path}>"))])
            }
            Directive::Include {
                path,
                system: false,
            } => list("include", vec![string(path.as_bytes())]),
            Directive::Define { name, body } => {
                list("define", vec![atom(name), string(body.as_bytes())])
            }
            Directive::Other => list("preproc", vec![string(p.text.as_bytes())]),
        },
        Item::CDecl(c) => {
            let mut parts = vec![atom(c.name.as_ref().map_or("_", |n| n.name.as_str()))];
            parts.extend(c.body.as_ref().map(|b| string(b.as_bytes())));
            list(c.kind.as_str(), parts)
        }
        Item::Config(c) => config(c),
        Item::Import(i) => list("import", vec![string(&i.path)]),
        Item::MapDecl(m) => list(
            "map-decl",
            vec![
                atom(format!("@{}", m.map.name)),
                atom(&m.kind.name),
                atom(m.max_entries.to_string()),
            ],
        ),
        Item::Macro(m) => {
            let params = m
                .params
                .iter()
                .map(|p| match p.kind {
                    MacroParamKind::Var => atom(format!("${}", p.name.name)),
                    MacroParamKind::Map => atom(format!("@{}", p.name.name)),
                    MacroParamKind::Expr => atom(&p.name.name),
                })
                .collect();
            list(
                "macro",
                vec![atom(&m.name.name), list("params", params), block(&m.body)],
            )
        }
        Item::Subprog(s) => {
            let params = s
                .params
                .iter()
                .map(|p| Sexp::List(vec![atom(format!("${}", p.var.name)), ty(&p.ty)]))
                .collect();
            list(
                "fn",
                vec![
                    atom(&s.name.name),
                    list("params", params),
                    list("ret", vec![ty(&s.ret)]),
                    block(&s.body),
                ],
            )
        }
        Item::Probe(p) => {
            let mut parts: Vec<Sexp> = p.specs.iter().map(spec).collect();
            parts.extend(
                p.predicate
                    .as_ref()
                    .map(|e| list("predicate", vec![expr(e)])),
            );
            parts.push(block(&p.body));
            list("probe", parts)
        }
    }
}

fn config(config: &Config) -> Sexp {
    let entries = config
        .entries
        .iter()
        .map(|e| {
            let value = match &e.value {
                ConfigValue::Int(n) => atom(n.to_string()),
                ConfigValue::Bool(b) => atom(b.to_string()),
                ConfigValue::Str(s) => string(s),
                ConfigValue::Ident(name) => atom(name),
            };
            Sexp::List(vec![atom(&e.key.name), value])
        })
        .collect();
    list("config", entries)
}

fn spec(spec: &ProbeSpec) -> Sexp {
    let mut parts = vec![atom(spec.kind.name())];
    if spec.provider.name != spec.kind.name() {
        parts.push(list("as", vec![atom(&spec.provider.name)]));
    }
    parts.extend(spec.parts.iter().map(|p| string(p.text.as_bytes())));
    list("spec", parts)
}

fn block(block: &Block) -> Sexp {
    let mut parts: Vec<Sexp> = block.stmts.iter().map(stmt).collect();
    parts.extend(block.value.as_ref().map(|v| list("value", vec![expr(v)])));
    list("block", parts)
}

fn stmt(stmt: &Stmt) -> Sexp {
    match &stmt.kind {
        StmtKind::Expr(e) => expr(e),
        StmtKind::Assign { target, op, value } => {
            let head = op.map_or_else(|| "=".to_string(), |op| format!("{}=", op.as_str()));
            list(&head, vec![expr(target), expr(value)])
        }
        StmtKind::Let { var, ty: t, init } => {
            let mut parts = vec![atom(format!("${}", var.name))];
            parts.extend(t.as_ref().map(ty));
            parts.extend(init.as_ref().map(expr));
            list("let", parts)
        }
        StmtKind::Discard(e) => list("discard", vec![expr(e)]),
        StmtKind::If(i) => if_stmt(i),
        StmtKind::Unroll { count, body } => list("unroll", vec![expr(count), block(body)]),
        StmtKind::While { cond, body } => list("while", vec![expr(cond), block(body)]),
        StmtKind::For {
            var,
            iterable,
            body,
        } => {
            let iterable = match iterable {
                ForIterable::Map(e) => expr(e),
                ForIterable::Range { start, end } => list("range", vec![expr(start), expr(end)]),
            };
            list(
                "for",
                vec![atom(format!("${}", var.name)), iterable, block(body)],
            )
        }
        StmtKind::Return(e) => list("return", e.iter().map(expr).collect()),
        StmtKind::Break => list("break", vec![]),
        StmtKind::Continue => list("continue", vec![]),
        StmtKind::Block(b) => block(b),
    }
}

fn if_stmt(i: &If) -> Sexp {
    let mut parts = vec![expr(&i.cond), block(&i.then)];
    parts.extend(i.otherwise.as_ref().map(|e| {
        list(
            "else",
            vec![match e {
                Else::Block(b) => block(b),
                Else::If(i) => if_stmt(i),
            }],
        )
    }));
    list("if", parts)
}

fn expr(e: &Expr) -> Sexp {
    match &e.kind {
        ExprKind::Int(n) => atom(n.to_string()),
        ExprKind::Bool(b) => atom(b.to_string()),
        ExprKind::Str(s) => string(s),
        ExprKind::Ident(name) => atom(name),
        ExprKind::Var(name) => atom(format!("${name}")),
        ExprKind::Param(n) => atom(format!("${n}")),
        ExprKind::ParamCount => atom("$#"),
        ExprKind::Map(name) => atom(format!("@{name}")),
        ExprKind::MapAccess { map, keys } => {
            list(&format!("@{}", map.name), keys.iter().map(expr).collect())
        }
        ExprKind::Call { func, args } => {
            let mut parts = vec![atom(&func.name)];
            parts.extend(args.iter().map(expr));
            list("call", parts)
        }
        ExprKind::Field { base, field, arrow } => list(
            if *arrow { "->" } else { "." },
            vec![expr(base), atom(&field.name)],
        ),
        ExprKind::TupleIndex { base, index } => {
            list(".", vec![expr(base), atom(index.to_string())])
        }
        ExprKind::Index { base, index } => list("[]", vec![expr(base), expr(index)]),
        ExprKind::Tuple(items) => list("tuple", items.iter().map(expr).collect()),
        ExprKind::Unary { op, operand } => list(op.as_str(), vec![expr(operand)]),
        ExprKind::IncDec { op, prefix, target } => {
            let head = format!("{}{}", if *prefix { "pre" } else { "post" }, op.as_str());
            list(&head, vec![expr(target)])
        }
        ExprKind::Binary { op, lhs, rhs, .. } => list(op.as_str(), vec![expr(lhs), expr(rhs)]),
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => list("?", vec![expr(cond), expr(then), expr(otherwise)]),
        ExprKind::Cast { ty: t, expr: e } => list("cast", vec![ty(t), expr(e)]),
        ExprKind::Sizeof(of) => list("sizeof", vec![type_or_expr(of)]),
        ExprKind::Offsetof { of, fields } => {
            let mut parts = vec![type_or_expr(of)];
            parts.extend(fields.iter().map(|f| atom(&f.name)));
            list("offsetof", parts)
        }
        ExprKind::Block(b) => block(b),
    }
}

fn type_or_expr(of: &TypeOrExpr) -> Sexp {
    match of {
        TypeOrExpr::Type(t) => ty(t),
        TypeOrExpr::Expr(e) => expr(e),
    }
}

/// A type as one atom in C-like syntax between angle brackets.
fn ty(t: &TypeExpr) -> Sexp {
    fn c_syntax(t: &TypeExpr) -> String {
        match &t.kind {
            TypeKind::Named(name) => name.clone(),
            TypeKind::Record { kind, name } => format!("{} {name}", kind.as_str()),
            TypeKind::Pointer(inner) => format!("{} *", c_syntax(inner)),
            TypeKind::Array { elem, len } => {
                let len = len.map(|n| n.to_string()).unwrap_or_default();
                format!("{}[{len}]", c_syntax(elem))
            }
        }
    }
    atom(format!("<{}>", c_syntax(t)))
}

/// A string atom: printable ASCII as is, other bytes escaped.
fn string(bytes: &[u8]) -> Sexp {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    atom(out)
}

/// One-line dumps of single nodes, for tests.
#[cfg(test)]
pub(crate) mod flat {
    /// `stmt` as a flat S-expression.
    pub fn stmt(stmt: &crate::ast::Stmt) -> String {
        super::stmt(stmt).flat()
    }

    /// `expr` as a flat S-expression.
    pub fn expr(expr: &crate::ast::Expr) -> String {
        super::expr(expr).flat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse, SourceFile};

    fn dumped(src: &str) -> String {
        match parse(&SourceFile::inline(src)) {
            Ok(program) => dump(&program),
            Err(errors) => panic!("{errors:?}"),
        }
    }

    #[test]
    fn short_lists_stay_on_one_line() {
        assert_eq!(
            dumped("begin { printf(\"%d\", 1 + 2 * 3); }"),
            "(program (probe (spec begin) (block (call printf \"%d\" (+ 1 (* 2 3))))))\n"
        );
    }

    #[test]
    fn long_lists_break_after_leading_atoms() {
        let out = dumped(
            "tracepoint:syscalls:sys_enter_openat /comm == \"bash\"/ { printf(\"%s %s\\n\", comm, str(args.filename)); }",
        );
        assert_eq!(
            out,
            "(program\n  (probe\n    (spec tracepoint \"syscalls\" \"sys_enter_openat\")\n    \
             (predicate (== comm \"bash\"))\n    \
             (block (call printf \"%s %s\\n\" comm (call str (. args filename))))))\n"
        );
    }

    #[test]
    fn strings_escape_non_printable_bytes() {
        assert_eq!(string(b"a\"\\\x01\xff").flat(), "\"a\\\"\\\\\\x01\\xff\"");
    }
}
