//! `tseries(x, interval, intervals[, agg])`: a value over time.
//!
//! Each map entry keeps one slot per interval (`epoch % intervals`, the
//! epoch being the TAI clock divided by the interval); a slot holding an
//! older epoch is reset when written. User space prints the last
//! `intervals` intervals as a chart, as current bpftrace does.

use super::check::Checker;
use super::types::{AggKind, TseriesAgg, Type};
use crate::ast::{Expr, ExprKind, Name};
use crate::diag::Diagnostic;

/// Most intervals one series may keep (each is a map entry).
const MAX_INTERVALS: i64 = 1_000_000;

impl Checker<'_> {
    pub(super) fn tseries(&mut self, e: &Expr, func: &Name, args: &[Expr]) -> Option<Type> {
        if !self.arity(e, func, args, 3, 4) {
            return None;
        }
        let value = self.int_arg(&args[0], "value")?;
        let interval_ns = match self.const_int(&args[1]) {
            Some(n) if n > 0 => n as u64,
            _ => {
                self.error(
                    Diagnostic::error(
                        args[1].span,
                        "tseries() interval must be a positive integer constant (nanoseconds)",
                    )
                    .with_help("durations read well here: `tseries(x, 100ms, 20)`"),
                );
                return None;
            }
        };
        let intervals = match self.const_int(&args[2]) {
            Some(n) if (1..=MAX_INTERVALS).contains(&n) => n as u64,
            _ => {
                self.error(Diagnostic::error(
                    args[2].span,
                    format!(
                        "tseries() number of intervals must be an integer constant from 1 to {MAX_INTERVALS}"
                    ),
                ));
                return None;
            }
        };
        let agg = match args.get(3) {
            None => TseriesAgg::Last,
            Some(arg) => {
                let name = match &arg.kind {
                    ExprKind::Str(bytes) => {
                        self.set_type(arg, &Type::Str(bytes.len() as u32 + 1));
                        String::from_utf8_lossy(bytes).into_owned()
                    }
                    _ => String::new(),
                };
                match name.as_str() {
                    "avg" => TseriesAgg::Avg,
                    "max" => TseriesAgg::Max,
                    "min" => TseriesAgg::Min,
                    "sum" => TseriesAgg::Sum,
                    _ => {
                        self.error(
                            Diagnostic::error(
                                arg.span,
                                "tseries() aggregation must be \"avg\", \"max\", \"min\" or \"sum\"",
                            )
                            .with_help("leave it out to keep the last value of each interval"),
                        );
                        return None;
                    }
                }
            }
        };
        let signed = value.as_int().is_some_and(|i| i.signed);
        Some(Type::Agg(AggKind::Tseries {
            interval_ns,
            intervals,
            agg,
            signed,
        }))
    }
}
