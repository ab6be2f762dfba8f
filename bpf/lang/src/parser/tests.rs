//! Unit tests of parser decisions that golden files would only show in
//! passing: precedence, cast detection, predicate ends, limits.

use crate::ast::{ExprKind, Item, StmtKind};
use crate::dump::{dump, flat};
use crate::span::SourceFile;
use crate::{parse, Diagnostic, MAX_DEPTH};

/// The statements of `BEGIN { body }`, each dumped on one line; a final
/// value is shown as `(value …)`.
fn stmts(body: &str) -> Vec<String> {
    let src = format!("BEGIN {{ {body} }}");
    let program =
        parse(&SourceFile::inline(src.as_str())).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    let Some(Item::Probe(probe)) = program.items.first() else {
        panic!("no probe in {src}");
    };
    let mut out: Vec<String> = probe.body.stmts.iter().map(flat::stmt).collect();
    out.extend(
        probe
            .body
            .value
            .iter()
            .map(|v| format!("(value {})", flat::expr(v))),
    );
    out
}

fn errors(src: &str) -> Vec<Diagnostic> {
    match parse(&SourceFile::inline(src)) {
        Ok(program) => panic!("{src} parsed: {}", dump(&program)),
        Err(errors) => errors,
    }
}

fn messages(src: &str) -> Vec<String> {
    errors(src).into_iter().map(|d| d.message).collect()
}

#[test]
fn c_precedence() {
    // Checked against `bpftrace -d` (0.17) for the same expressions.
    assert_eq!(
        stmts("$a = !$x == 1; $b = 1 < 2 == 3; $c = $x & 1 == 1; $d = 1 << 2 + 3; $e = 1 | 2 ^ 3 & 4;"),
        vec![
            "(= $a (== (! $x) 1))",
            "(= $b (== (< 1 2) 3))",
            "(= $c (& $x (== 1 1)))",
            "(= $d (<< 1 (+ 2 3)))",
            "(= $e (| 1 (^ 2 (& 3 4))))",
        ]
    );
    assert_eq!(
        stmts("$a = 1 - 2 - 3; $b = 1 || 2 && 3; $c = -1 ? 2 : 3 ? 4 : 5; $d = 10 / 2 % 3 * 4;"),
        vec![
            "(= $a (- (- 1 2) 3))",
            "(= $b (|| 1 (&& 2 3)))",
            "(= $c (? (- 1) 2 (? 3 4 5)))",
            "(= $d (* (% (/ 10 2) 3) 4))",
        ]
    );
}

#[test]
fn postfix_binds_tighter_than_prefix() {
    assert_eq!(
        stmts("*$p.a; -$x->y[1]; !@m[1]++; $x->y.z[1]; $t.0.1"),
        vec![
            "(* (. $p a))",
            "(- ([] (-> $x y) 1))",
            "(! (post++ (@m 1)))",
            "([] (. (-> $x y) z) 1)",
            "(value (. (. $t 0) 1))",
        ]
    );
}

#[test]
fn casts_and_parentheses() {
    assert_eq!(
        stmts(
            "$a = (struct task_struct *)curtask; $b = (uint8)$x + 1; $c = (pid) - 1; \
             $d = (foo)$x; $e = (pid_t)-1; $f = (uint8[4])$x; $g = (foo *)arg0; $h = (x)(y); \
             $i = (comm) == \"a\"; $j = (int8[])$x; $k = (union u **)0;"
        ),
        vec![
            "(= $a (cast <struct task_struct *> curtask))",
            "(= $b (+ (cast <uint8> $x) 1))",
            "(= $c (- pid 1))",
            "(= $d (cast <foo> $x))",
            "(= $e (cast <pid_t> (- 1)))",
            "(= $f (cast <uint8[4]> $x))",
            "(= $g (cast <foo *> arg0))",
            "(= $h (cast <x> y))",
            "(= $i (== comm \"a\"))",
            "(= $j (cast <int8[]> $x))",
            "(= $k (cast <union u * *> 0))",
        ]
    );
}

#[test]
fn tuples() {
    assert_eq!(
        stmts("$a = (); $b = (1,); $c = (1, \"x\", (2, 3)); $d = (1); $e = (1, 2,)[0];"),
        vec![
            "(= $a (tuple))",
            "(= $b (tuple 1))",
            "(= $c (tuple 1 \"x\" (tuple 2 3)))",
            "(= $d 1)",
            "(= $e ([] (tuple 1 2) 0))",
        ]
    );
}

#[test]
fn sizeof_and_offsetof_take_types_or_expressions() {
    assert_eq!(
        stmts(
            "$a = sizeof(struct task_struct); $b = sizeof($x); $c = sizeof(uint32); $d = sizeof(x); \
             $e = offsetof(struct task_struct, se.vruntime); $f = offsetof(*curtask, comm);"
        ),
        vec![
            "(= $a (sizeof <struct task_struct>))",
            "(= $b (sizeof $x))",
            "(= $c (sizeof <uint32>))",
            "(= $d (sizeof x))",
            "(= $e (offsetof <struct task_struct> se vruntime))",
            "(= $f (offsetof (* curtask) comm))",
        ]
    );
}

#[test]
fn keywords_are_field_names() {
    assert_eq!(
        stmts("args.config; $x->if; $s.for"),
        vec!["(. args config)", "(-> $x if)", "(value (. $s for))"]
    );
}

#[test]
fn assignments_and_increments() {
    assert_eq!(
        stmts("@ = 1; @x[1, \"a\"] += 2; $x <<= 3; $y >>= 1; ++$x; --@m[1]; @c--; _ = f();"),
        vec![
            "(= @ 1)",
            "(+= (@x 1 \"a\") 2)",
            "(<<= $x 3)",
            "(>>= $y 1)",
            "(pre++ $x)",
            "(pre-- (@m 1))",
            "(post-- @c)",
            "(discard (call f))",
        ]
    );
}

#[test]
fn division_inside_a_predicate() {
    let program = parse(&SourceFile::inline(
        "kprobe:f /$x / 2 > 1/ { } kprobe:g/arg0/{}",
    ))
    .expect("valid");
    let text = dump(&program)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("(predicate (> (/ $x 2) 1))"), "{text}");
    assert!(
        text.contains("(spec kprobe \"g\") (predicate arg0)"),
        "{text}"
    );
}

#[test]
fn probe_lists_allow_a_trailing_comma_and_newlines() {
    let program = parse(&SourceFile::inline("kprobe:a,\n  kprobe:b,\n{ }")).expect("valid");
    let Some(Item::Probe(probe)) = program.items.first() else {
        panic!("no probe");
    };
    assert_eq!(probe.specs.len(), 2);
    assert_eq!(probe.specs[1].raw, "kprobe:b");
}

#[test]
fn expression_ids_are_dense_and_unique() {
    let program = parse(&SourceFile::inline(
        "BEGIN { $x = 1 + 2 * f(3); @m[$x] = ($x, 4); }",
    ))
    .expect("valid");
    struct Ids(Vec<u32>);
    impl crate::visit::Visitor for Ids {
        fn visit_expr(&mut self, expr: &crate::ast::Expr) {
            self.0.push(expr.id.0);
            crate::visit::walk_expr(self, expr);
        }
    }
    let mut ids = Ids(Vec::new());
    crate::visit::walk_program(&mut ids, &program);
    ids.0.sort_unstable();
    let expected: Vec<u32> = (0..program.expr_count).collect();
    assert_eq!(ids.0, expected);
}

#[test]
fn spans_cover_what_was_written() {
    let src = "BEGIN { @x[pid] = (uint64)(nsecs - 1) / 2; }";
    let file = SourceFile::inline(src);
    let program = parse(&file).expect("valid");
    let Some(Item::Probe(probe)) = program.items.first() else {
        panic!("no probe");
    };
    assert_eq!(file.snippet(probe.specs[0].span), "BEGIN");
    assert_eq!(
        file.snippet(probe.body.span),
        "{ @x[pid] = (uint64)(nsecs - 1) / 2; }"
    );
    let stmt = &probe.body.stmts[0];
    assert_eq!(file.snippet(stmt.span), "@x[pid] = (uint64)(nsecs - 1) / 2");
    let StmtKind::Assign { target, value, .. } = &stmt.kind else {
        panic!("not an assignment");
    };
    assert_eq!(file.snippet(target.span), "@x[pid]");
    assert_eq!(file.snippet(value.span), "(uint64)(nsecs - 1) / 2");
    let ExprKind::Binary { lhs, op_span, .. } = &value.kind else {
        panic!("not a division");
    };
    assert_eq!(file.snippet(*op_span), "/");
    assert_eq!(file.snippet(lhs.span), "(uint64)(nsecs - 1)");
    let ExprKind::Cast { ty, expr } = &lhs.kind else {
        panic!("not a cast");
    };
    assert_eq!(file.snippet(ty.span), "uint64");
    assert_eq!(file.snippet(expr.span), "(nsecs - 1)");
}

#[test]
fn statements_need_semicolons_except_the_last() {
    assert_eq!(
        messages("BEGIN { $x = 1 $y = 2 }"),
        vec!["expected `;` after the statement, found variable `$y`"]
    );
    assert_eq!(
        stmts("if (1) { } $x = 1; { } ;; $y = 2"),
        vec!["(if 1 (block))", "(= $x 1)", "(block)", "(= $y 2)",]
    );
}

#[test]
fn recovery_reports_errors_in_later_statements_and_probes() {
    assert_eq!(
        messages("BEGIN { $x = ; $y = 1 +; } END { @x[ = 1; } kprobe:f { $z = ) }"),
        vec![
            "expected an expression, found `;`",
            "expected an expression, found `;`",
            "expected an expression, found `=`",
            "expected an expression, found `)`",
        ]
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for (open, close) in [
        ("(", ")"),
        ("{", "}"),
        ("!", ""),
        ("-", ""),
        ("f(", ")"),
        ("@m[", "]"),
    ] {
        let depth = MAX_DEPTH as usize * 4;
        let src = format!(
            "BEGIN {{ $x = {}1{}; }}",
            open.repeat(depth),
            close.repeat(depth)
        );
        let messages = messages(&src);
        assert_eq!(
            messages,
            vec!["the program is nested too deeply here"],
            "{open}"
        );
    }
    let chain = format!("BEGIN {{ $x = 1{}; }}", "+1".repeat(MAX_DEPTH as usize * 4));
    assert_eq!(
        messages(&chain),
        vec!["the program is nested too deeply here"]
    );
    let fields = format!(
        "BEGIN {{ $x = $y{}; }}",
        ".a".repeat(MAX_DEPTH as usize * 4)
    );
    assert_eq!(
        messages(&fields),
        vec!["the program is nested too deeply here"]
    );
    let stars = format!(
        "BEGIN {{ $x = (uint8 {})0; }}",
        "*".repeat(MAX_DEPTH as usize * 4)
    );
    assert_eq!(messages(&stars), vec!["too many `*` in a pointer type"]);
}

#[test]
fn nesting_below_the_limit_is_fine() {
    let src = format!("BEGIN {{ $x = {}1{}; }}", "(".repeat(60), ")".repeat(60));
    assert!(parse(&SourceFile::inline(src.as_str())).is_ok());
    let chain = format!("BEGIN {{ $x = 1{}; }}", "+1".repeat(200));
    assert!(parse(&SourceFile::inline(chain.as_str())).is_ok());
}

#[test]
fn diagnostics_stop_at_a_limit() {
    let errors = errors(&"}\n".repeat(200));
    assert_eq!(errors.len(), 50);
    let last = errors.last().map(|d| d.notes.clone()).unwrap_or_default();
    assert_eq!(last[0].message, "stopped after 50 errors");
}
