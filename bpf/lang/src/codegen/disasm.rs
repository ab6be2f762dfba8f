//! A textual disassembly of generated programs, in the style of
//! `bpftool prog dump xlated`: `r1 = *(u32 *)(r6 +16)`, `call map_lookup_elem`,
//! `if r0 == 0x0 goto +3 <12>`. Map references print the map's name.

use std::fmt::Write as _;

use scorch_bpf::insn::Insn;

use super::MapDef;

/// The instructions as text, one per line, numbered.
pub fn disassemble(insns: &[Insn], maps: &[MapDef]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        let text = if insn.code == 0x18 {
            let hi = insns.get(i + 1).map_or(0, |n| n.imm);
            let value = (insn.imm as u32 as u64) | ((hi as u32 as u64) << 32);
            let map_name = |index: i32| {
                maps.get(index as usize)
                    .map_or_else(|| format!("#{index}"), |m| m.name.clone())
            };
            let text = match u32::from(insn.src) {
                libbpf_sys::BPF_PSEUDO_MAP_FD => {
                    format!("r{} = map[{}]", insn.dst, map_name(insn.imm))
                }
                libbpf_sys::BPF_PSEUDO_MAP_VALUE => {
                    format!("r{} = &map[{}] + {hi}", insn.dst, map_name(insn.imm))
                }
                libbpf_sys::BPF_PSEUDO_FUNC => {
                    let target = i as i64 + 1 + i64::from(insn.imm);
                    format!("r{} = subprog <{target}>", insn.dst)
                }
                _ => format!("r{} = {value:#x} ll", insn.dst),
            };
            let _ = writeln!(out, "{i:5}: {text}");
            i += 2;
            continue;
        } else {
            one(insn, i)
        };
        let _ = writeln!(out, "{i:5}: {text}");
        i += 1;
    }
    out
}

fn size_name(code: u8) -> &'static str {
    match code & 0x18 {
        0x10 => "u8",
        0x08 => "u16",
        0x00 => "u32",
        _ => "u64",
    }
}

fn alu_op(op: u8) -> &'static str {
    match op {
        0x00 => "+=",
        0x10 => "-=",
        0x20 => "*=",
        0x30 => "/=",
        0x40 => "|=",
        0x50 => "&=",
        0x60 => "<<=",
        0x70 => ">>=",
        0x90 => "%=",
        0xa0 => "^=",
        0xb0 => "=",
        0xc0 => "s>>=",
        _ => "?=",
    }
}

fn jmp_op(op: u8) -> &'static str {
    match op {
        0x10 => "==",
        0x20 => ">",
        0x30 => ">=",
        0x40 => "&",
        0x50 => "!=",
        0x60 => "s>",
        0x70 => "s>=",
        0xa0 => "<",
        0xb0 => "<=",
        0xc0 => "s<",
        0xd0 => "s<=",
        _ => "?",
    }
}

fn helper_name(id: i32) -> String {
    let name = match u32::try_from(id).unwrap_or(u32::MAX) {
        libbpf_sys::BPF_FUNC_map_lookup_elem => "map_lookup_elem",
        libbpf_sys::BPF_FUNC_map_update_elem => "map_update_elem",
        libbpf_sys::BPF_FUNC_map_delete_elem => "map_delete_elem",
        libbpf_sys::BPF_FUNC_ktime_get_ns => "ktime_get_ns",
        libbpf_sys::BPF_FUNC_get_prandom_u32 => "get_prandom_u32",
        libbpf_sys::BPF_FUNC_get_smp_processor_id => "get_smp_processor_id",
        libbpf_sys::BPF_FUNC_get_current_pid_tgid => "get_current_pid_tgid",
        libbpf_sys::BPF_FUNC_get_current_uid_gid => "get_current_uid_gid",
        libbpf_sys::BPF_FUNC_get_current_comm => "get_current_comm",
        libbpf_sys::BPF_FUNC_get_stackid => "get_stackid",
        libbpf_sys::BPF_FUNC_get_current_task => "get_current_task",
        libbpf_sys::BPF_FUNC_get_numa_node_id => "get_numa_node_id",
        libbpf_sys::BPF_FUNC_probe_read_str => "probe_read_str",
        libbpf_sys::BPF_FUNC_get_current_cgroup_id => "get_current_cgroup_id",
        libbpf_sys::BPF_FUNC_probe_read_kernel => "probe_read_kernel",
        libbpf_sys::BPF_FUNC_probe_read_user => "probe_read_user",
        libbpf_sys::BPF_FUNC_probe_read_user_str => "probe_read_user_str",
        libbpf_sys::BPF_FUNC_probe_read_kernel_str => "probe_read_kernel_str",
        libbpf_sys::BPF_FUNC_jiffies64 => "jiffies64",
        libbpf_sys::BPF_FUNC_ringbuf_output => "ringbuf_output",
        libbpf_sys::BPF_FUNC_send_signal => "send_signal",
        _ => return format!("#{id}"),
    };
    name.to_string()
}

fn one(insn: Insn, at: usize) -> String {
    let (dst, src, off, imm) = (insn.dst, insn.src, insn.off, insn.imm);
    let class = insn.code & 0x07;
    let op = insn.code & 0xf0;
    let reg_src = insn.code & 0x08 != 0;
    let target = at as i64 + 1 + i64::from(off);
    match class {
        // LDX
        0x01 => format!("r{dst} = *({} *)(r{src} {off:+})", size_name(insn.code)),
        // ST
        0x02 => format!("*({} *)(r{dst} {off:+}) = {imm}", size_name(insn.code)),
        // STX
        0x03 if insn.code & 0xe0 == 0xc0 => {
            format!(
                "lock *({} *)(r{dst} {off:+}) += r{src}",
                size_name(insn.code)
            )
        }
        0x03 => format!("*({} *)(r{dst} {off:+}) = r{src}", size_name(insn.code)),
        // Byte order: `r1 = be16 r1`
        0x04 if op == 0xd0 => {
            let order = if reg_src { "be" } else { "le" };
            format!("r{dst} = {order}{imm} r{dst}")
        }
        // ALU (32-bit) and ALU64
        0x04 | 0x07 => {
            let w = if class == 0x04 { "w" } else { "r" };
            let rhs = if reg_src {
                format!("{w}{src}")
            } else {
                imm.to_string()
            };
            format!("{w}{dst} {} {rhs}", alu_op(op))
        }
        // JMP
        0x05 => match op {
            0x00 => format!("goto {off:+} <{target}>"),
            0x80 => format!("call {}", helper_name(imm)),
            0x90 => "exit".to_string(),
            _ => condition('r', insn, target),
        },
        // JMP32: compares the low 32 bits
        0x06 => condition('w', insn, target),
        _ => format!("(unknown opcode {:#04x})", insn.code),
    }
}

/// A conditional jump: `if r1 != 0x0 goto +3 <12>` (`w1` for JMP32).
fn condition(width: char, insn: Insn, target: i64) -> String {
    let rhs = if insn.code & 0x08 != 0 {
        format!("{width}{}", insn.src)
    } else {
        format!("{:#x}", insn.imm)
    };
    let op = jmp_op(insn.code & 0xf0);
    format!(
        "if {width}{} {op} {rhs} goto {:+} <{target}>",
        insn.dst, insn.off
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use scorch_bpf::insn::{Alu, Cond, Size, R0, R1, R10, R6};

    #[test]
    fn reads_like_bpftool() {
        let maps = [MapDef {
            name: "@x".into(),
            role: super::super::MapRole::User(0),
            kind: super::super::MapKind::Hash,
            key_size: 8,
            value_size: 8,
            max_entries: 1,
        }];
        let mut insns = vec![
            Insn::mov64_reg(R6, R1),
            Insn::load(Size::W, R0, R6, 16),
            Insn::store_imm(Size::DW, R10, -8, 0),
            Insn::alu64_imm(Alu::Add, R0, -3),
            Insn::jmp_imm(Cond::Eq, R0, 0, 1),
            Insn::call(libbpf_sys::BPF_FUNC_ringbuf_output),
        ];
        insns.extend(Insn::ld_map_fd(R1, 0));
        insns.push(Insn::to_be(R0, 16));
        insns.push(Insn::exit());
        assert_eq!(
            disassemble(&insns, &maps),
            "    0: r6 = r1\n    1: r0 = *(u32 *)(r6 +16)\n    2: *(u64 *)(r10 -8) = 0\n    3: r0 += -3\n    4: if r0 == 0x0 goto +1 <6>\n    5: call ringbuf_output\n    6: r1 = map[@x]\n    8: r0 = be16 r0\n    9: exit\n"
        );
    }

    #[test]
    fn jmp32_compares_the_low_words() {
        let insns = [Insn::jmp32_imm(Cond::Ne, R0, -7, 2)];
        assert_eq!(
            disassemble(&insns, &[]),
            "    0: if w0 != 0xfffffff9 goto +2 <3>\n"
        );
    }
}
