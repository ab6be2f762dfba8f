//! Translating one row of gimli's CFI table into our compact rules.
//!
//! The general case is `CFA = RSP|RBP + offset`, `RA at CFA - 8`, `RBP`
//! unchanged or saved at `CFA + offset`. Two DWARF expressions are common
//! enough on x86_64 to be recognised by their exact bytes:
//! - the lazy-binding `.plt` entry: `DW_OP_breg7 N; DW_OP_breg16 0;
//!   DW_OP_lit15; DW_OP_and; DW_OP_litT; DW_OP_ge; DW_OP_lit3; DW_OP_shl;
//!   DW_OP_plus` — CFA is `RSP + N`, 8 more once past the entry's push;
//! - glibc's signal trampoline `__restore_rt` (an FDE with the `S`
//!   augmentation): `CFA = *(RSP + 160)`, RBP and RIP saved at `RSP + 120`
//!   and `RSP + 168`, the `ucontext_t` layout of the x86_64 kernel.
//!
//! Any other expression becomes [`Cfa::Unsupported`].

use gimli::{CfaRule, Reader, Register, RegisterRule, UnwindSection, UnwindTableRow};

use crate::row::{Cfa, Rbp, SIGNAL_RBP, SIGNAL_RIP, SIGNAL_RSP};

const RBP: Register = gimli::X86_64::RBP;
const RSP: Register = gimli::X86_64::RSP;
const RA: Register = gimli::X86_64::RA;

/// The rules of `row` of an FDE in `section`; `signal` for signal trampolines.
pub(crate) fn rules<R, S>(row: &UnwindTableRow<R::Offset>, section: &S, signal: bool) -> (Cfa, Rbp)
where
    R: Reader,
    S: UnwindSection<R>,
{
    let expression = |rule: &gimli::UnwindExpression<R::Offset>| -> Option<Vec<u8>> {
        let expr = rule.get(section).ok()?;
        Some(expr.0.to_slice().ok()?.into_owned())
    };
    let ra = row.register(RA);
    if signal {
        let matches = match (row.cfa(), &ra, row.register(RBP)) {
            (
                CfaRule::Expression(cfa),
                Some(RegisterRule::Expression(rip)),
                Some(RegisterRule::Expression(rbp)),
            ) => {
                expression(cfa).as_deref() == Some(&deref_rsp(SIGNAL_RSP)[..])
                    && expression(rip).as_deref() == Some(&rsp_plus(SIGNAL_RIP)[..])
                    && expression(&rbp).as_deref() == Some(&rsp_plus(SIGNAL_RBP)[..])
            }
            _ => false,
        };
        let cfa = if matches {
            Cfa::Signal
        } else {
            Cfa::Unsupported
        };
        return (cfa, Rbp::Same);
    }
    match ra {
        None | Some(RegisterRule::Undefined) => return (Cfa::End, Rbp::Same),
        Some(RegisterRule::Offset(-8)) => {}
        Some(_) => return (Cfa::Unsupported, Rbp::Same),
    }
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => match i32::try_from(*offset) {
            Ok(offset) if *register == RSP => Cfa::Rsp(offset),
            Ok(offset) if *register == RBP => Cfa::Rbp(offset),
            _ => Cfa::Unsupported,
        },
        CfaRule::Expression(expr) => expression(expr)
            .and_then(|bytes| plt(&bytes))
            .unwrap_or(Cfa::Unsupported),
    };
    let rbp = match row.register(RBP) {
        None | Some(RegisterRule::SameValue) => Rbp::Same,
        // The caller's RBP is gone: a caller that needs it cannot be unwound.
        Some(RegisterRule::Offset(offset)) => {
            i32::try_from(offset).map_or(Rbp::Unsupported, Rbp::AtCfa)
        }
        Some(_) => Rbp::Unsupported,
    };
    (cfa, rbp)
}

/// The bytes of `DW_OP_bregN offset`.
fn breg(register: u8, offset: i64) -> Vec<u8> {
    let mut out = vec![gimli::constants::DW_OP_breg0.0 + register];
    sleb128(&mut out, offset);
    out
}

/// `DW_OP_breg7 offset` (the address `RSP + offset`).
fn rsp_plus(offset: u64) -> Vec<u8> {
    breg(RSP.0 as u8, offset as i64)
}

/// `DW_OP_breg7 offset; DW_OP_deref` (the value at `RSP + offset`).
fn deref_rsp(offset: u64) -> Vec<u8> {
    let mut out = rsp_plus(offset);
    out.push(gimli::constants::DW_OP_deref.0);
    out
}

fn sleb128(out: &mut Vec<u8>, mut value: i64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// The PLT rule, when `bytes` is the standard PLT CFA expression.
fn plt(bytes: &[u8]) -> Option<Cfa> {
    use gimli::constants::*;
    let (&first, rest) = bytes.split_first()?;
    if first != DW_OP_breg7.0 {
        return None;
    }
    let mut reader = gimli::EndianSlice::new(rest, gimli::LittleEndian);
    let offset = i32::try_from(reader.read_sleb128().ok()?).ok()?;
    let tail = reader.slice();
    let [rip, 0, lit15, and, threshold, ge, lit3, shl, plus] = *tail else {
        return None;
    };
    let threshold = threshold.checked_sub(DW_OP_lit0.0).filter(|&t| t <= 31)?;
    let expected = [
        DW_OP_breg16.0,
        DW_OP_lit15.0,
        DW_OP_and.0,
        DW_OP_ge.0,
        DW_OP_lit3.0,
        DW_OP_shl.0,
        DW_OP_plus.0,
    ];
    ([rip, lit15, and, ge, lit3, shl, plus] == expected).then_some(Cfa::Plt { offset, threshold })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_plt_expression_and_nothing_like_it() {
        // As `readelf --debug-dump=frames` prints for libc's .plt.
        let standard = [
            0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22,
        ];
        assert_eq!(
            plt(&standard),
            Some(Cfa::Plt {
                offset: 8,
                threshold: 11
            })
        );
        let mut wrong_op = standard;
        wrong_op[9] = 0x25; // shr
        assert_eq!(plt(&wrong_op), None);
        assert_eq!(plt(&standard[..10]), None);
        assert_eq!(plt(&[]), None);
        assert_eq!(plt(&[0x77]), None);
    }

    #[test]
    fn encodes_signal_frame_expressions() {
        // glibc's __restore_rt: DW_OP_breg7 (rsp): 160; DW_OP_deref.
        assert_eq!(deref_rsp(160), vec![0x77, 0xa0, 0x01, 0x06]);
        assert_eq!(rsp_plus(40), vec![0x77, 0x28]);
        let mut out = Vec::new();
        sleb128(&mut out, -8);
        assert_eq!(out, vec![0x78]);
    }
}
