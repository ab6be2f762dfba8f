//! Kernel types read through our BTF layer, checked against `bpftool btf
//! dump` (Debian package bpftool) on the running kernel's BTF.

use std::collections::HashMap;
use std::process::Command;
use std::sync::OnceLock;

use scorch_bpf::btf_types::{KernelTypes, Type};

/// One type block of `bpftool btf dump … format raw`: its header line and
/// its member/parameter lines.
struct Block {
    header: String,
    lines: Vec<String>,
}

/// bpftool's raw dump of the kernel BTF, by type id.
fn bpftool() -> &'static HashMap<u32, Block> {
    static DUMP: OnceLock<HashMap<u32, Block>> = OnceLock::new();
    DUMP.get_or_init(|| {
        let out = Command::new("bpftool")
            .args([
                "btf",
                "dump",
                "file",
                "/sys/kernel/btf/vmlinux",
                "format",
                "raw",
            ])
            .output()
            .expect("bpftool (Debian package bpftool)");
        assert!(out.status.success(), "bpftool failed");
        let mut blocks = HashMap::new();
        let mut current = None;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(rest) = line.strip_prefix('[') {
                let (id, header) = rest.split_once("] ").expect("`[id] KIND …`");
                let id: u32 = id.parse().expect("type id");
                blocks.insert(
                    id,
                    Block {
                        header: header.to_string(),
                        lines: Vec::new(),
                    },
                );
                current = Some(id);
            } else if let Some(id) = current {
                blocks
                    .get_mut(&id)
                    .unwrap()
                    .lines
                    .push(line.trim().to_string());
            }
        }
        blocks
    })
}

/// `key=value` from a bpftool line.
fn field(line: &str, key: &str) -> Option<u32> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
}

/// The quoted name at the start of a bpftool member line, or after the kind.
fn quoted(line: &str) -> &str {
    line.split('\'').nth(1).unwrap_or("")
}

fn find(kind: &str, name: &str) -> u32 {
    *bpftool()
        .iter()
        .find(|(_, b)| b.header.starts_with(&format!("{kind} '{name}'")))
        .unwrap_or_else(|| panic!("bpftool lists no {kind} {name}"))
        .0
}

/// bpftool's members of struct or union `id` as C code names them:
/// (name, bit offset, type id, bitfield bits), anonymous members' members
/// in their place with offsets from the outer struct.
fn flattened(id: u32, base: u32, out: &mut Vec<(String, u32, u32, u32)>) {
    for line in &bpftool()[&id].lines {
        let (ty, offset) = (
            field(line, "type_id").unwrap(),
            field(line, "bits_offset").unwrap(),
        );
        match quoted(line) {
            "(anon)" => flattened(ty, base + offset, out),
            name => out.push((
                name.to_string(),
                base + offset,
                ty,
                field(line, "bitfield_size").unwrap_or(0),
            )),
        }
    }
}

#[test]
fn struct_members_match_bpftool() {
    let types = KernelTypes::vmlinux().expect("vmlinux BTF");
    // task_struct is large; sk_buff and file nest anonymous unions and structs.
    for name in ["task_struct", "sk_buff", "file", "mm_struct"] {
        let id = types.struct_named(&format!("struct {name}")).expect(name);
        assert_eq!(id, find("STRUCT", name));
        let ours: Vec<(String, u32, u32, u32)> = types
            .members(id)
            .into_iter()
            .map(|m| (m.name, m.offset_bits, m.ty, m.bitfield_bits))
            .collect();
        let mut theirs = Vec::new();
        flattened(id, 0, &mut theirs);
        assert!(theirs.len() > 10, "{name}: {theirs:?}");
        assert_eq!(ours, theirs, "{name}");
        assert_eq!(types.size_of(id), field(&bpftool()[&id].header, "size"));
    }
}

#[test]
fn member_types_resolve_as_c_declares_them() {
    let types = KernelTypes::vmlinux().expect("vmlinux BTF");
    let task = types.struct_named("task_struct").unwrap();
    let parent = types.member(task, "real_parent").expect("real_parent");
    assert_eq!(types.resolve(parent.ty), Type::Pointer(task));
    assert_eq!(types.name_of(parent.ty), "struct task_struct *");
    let comm = types.member(task, "comm").expect("comm");
    let Type::Array { element, len: 16 } = types.resolve(comm.ty) else {
        panic!("comm is {:?}", types.resolve(comm.ty));
    };
    assert!(matches!(
        types.resolve(element),
        Type::Int {
            size: 1,
            char: true,
            ..
        }
    ));
    assert_eq!(types.name_of(comm.ty), "char[16]");
    let pid = types.member(task, "pid").expect("pid");
    assert_eq!(types.name_of(pid.ty), "pid_t");
    assert!(matches!(
        types.resolve(pid.ty),
        Type::Int {
            size: 4,
            signed: true,
            ..
        }
    ));
    assert!(types.member(task, "no_such_member").is_none());
    assert!(types.struct_named("no_such_struct_xyz").is_none());
}

#[test]
fn function_parameters_match_bpftool() {
    let types = KernelTypes::vmlinux().expect("vmlinux BTF");
    for function in ["do_nanosleep", "vfs_read", "tcp_sendmsg"] {
        let Some((params, ret)) = types.function(function) else {
            assert!(
                !bpftool()
                    .values()
                    .any(|b| b.header.starts_with(&format!("FUNC '{function}'"))),
                "bpftool knows {function}, we do not"
            );
            continue;
        };
        let func = find("FUNC", function);
        let proto = &bpftool()[&field(&bpftool()[&func].header, "type_id").unwrap()];
        assert_eq!(Some(ret), field(&proto.header, "ret_type_id"), "{function}");
        let theirs: Vec<(&str, u32)> = proto
            .lines
            .iter()
            .map(|l| (quoted(l), field(l, "type_id").unwrap()))
            .collect();
        let ours: Vec<(&str, u32)> = params.iter().map(|p| (p.name.as_str(), p.ty)).collect();
        assert_eq!(ours, theirs, "{function}");
    }
}

#[test]
fn function_names_are_bpftools_funcs() {
    let types = KernelTypes::vmlinux().expect("vmlinux BTF");
    let ours = types.function_names();
    let mut theirs: Vec<&str> = bpftool()
        .values()
        .filter(|b| b.header.starts_with("FUNC '"))
        .map(|b| quoted(&b.header))
        .collect();
    theirs.sort_unstable();
    theirs.dedup();
    assert_eq!(ours, theirs);
}

#[test]
fn enumerators_match_bpftool() {
    let types = KernelTypes::vmlinux().expect("vmlinux BTF");
    let ours: HashMap<String, i64> = types.enumerators().into_iter().collect();
    // bpftool's values of each name (a few names are in several enums).
    let mut theirs: HashMap<&str, Vec<i64>> = HashMap::new();
    for block in bpftool().values() {
        if !(block.header.starts_with("ENUM ") || block.header.starts_with("ENUM64 ")) {
            continue;
        }
        let signed = block.header.contains("encoding=SIGNED");
        for line in &block.lines {
            let text = line.split("val=").nth(1).expect("val=");
            let text = text.trim_end_matches(['U', 'L']);
            let value = match signed {
                true => text.parse::<i64>().unwrap(),
                false => text.parse::<u64>().unwrap() as i64,
            };
            theirs.entry(quoted(line)).or_default().push(value);
        }
    }
    assert_eq!(ours.len(), theirs.len());
    for (name, values) in &theirs {
        let v = ours.get(*name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(values.contains(v), "{name}: ours {v}, bpftool {values:?}");
    }
    assert_eq!(ours.get("TCP_ESTABLISHED"), Some(&1));
}

#[test]
fn raw_tracepoint_argument_types_and_names() {
    let types = KernelTypes::vmlinux().expect("vmlinux BTF");
    let args = types
        .raw_tracepoint_args("sched_switch")
        .expect("sched_switch");
    let spelled: Vec<String> = args.iter().map(|&a| types.name_of(a)).collect();
    assert_eq!(
        spelled,
        [
            "bool",
            "struct task_struct *",
            "struct task_struct *",
            "unsigned int"
        ]
    );
    assert_eq!(types.raw_tracepoint_args("no_such_tracepoint"), None);
    let pid_t = types.type_named("pid_t").expect("pid_t");
    assert_eq!(pid_t, find("TYPEDEF", "pid_t"));
    assert!(types.struct_names().iter().any(|n| n == "task_struct"));
}
