//! Builtin variables and the dispatch of function calls.

use scorch_bpf::insn::{Alu, Insn, Size, R0, R1, R2, R3};

use super::emit::VReg;
use super::gen::{tag, CgResult, Gen};
use super::layout::EventKind;
use crate::ast::Expr;
use crate::sema::{AddrSpace, Builtin, Const, Function, Type};

impl Gen<'_> {
    /// A builtin variable.
    pub(super) fn builtin(&mut self, e: &Expr) -> CgResult<VReg> {
        let builtin = *self
            .analysis
            .builtins
            .get(&e.id)
            .ok_or_else(|| self.internal("an unresolved builtin"))?;
        let helper = |id: u32| Some(id);
        let call = match builtin {
            Builtin::Pid | Builtin::Tid => helper(libbpf_sys::BPF_FUNC_get_current_pid_tgid),
            Builtin::Uid | Builtin::Gid => helper(libbpf_sys::BPF_FUNC_get_current_uid_gid),
            Builtin::Nsecs | Builtin::Elapsed => helper(libbpf_sys::BPF_FUNC_ktime_get_ns),
            Builtin::Cpu => helper(libbpf_sys::BPF_FUNC_get_smp_processor_id),
            Builtin::NumaId => helper(libbpf_sys::BPF_FUNC_get_numa_node_id),
            Builtin::Cgroup => helper(libbpf_sys::BPF_FUNC_get_current_cgroup_id),
            Builtin::Rand => helper(libbpf_sys::BPF_FUNC_get_prandom_u32),
            Builtin::Curtask => helper(libbpf_sys::BPF_FUNC_get_current_task),
            Builtin::Jiffies => helper(libbpf_sys::BPF_FUNC_jiffies64),
            Builtin::Comm | Builtin::Probe | Builtin::Args => None,
        };
        if let Some(id) = call {
            self.e.call(id);
            match builtin {
                Builtin::Pid | Builtin::Gid => {
                    self.e.asm.emit([Insn::alu64_imm(Alu::Rsh, R0, 32)]);
                }
                Builtin::Tid | Builtin::Uid => self.e.truncate(R0, 4),
                Builtin::Elapsed => {
                    let globals = self.compiled.globals;
                    self.e.map_value(R1, globals, 0);
                    self.e.asm.emit([
                        Insn::load(Size::DW, R1, R1, 0),
                        Insn::alu64_reg(Alu::Sub, R0, R1),
                    ]);
                }
                _ => {}
            }
            let v = self.e.alloc()?;
            self.e.set(v, R0);
            return Ok(v);
        }
        match builtin {
            Builtin::Comm => {
                let slot = self.e.slot(e.id.0, tag::VALUE, 16)?;
                self.e.scratch_ptr(R1, slot);
                self.e.asm.emit([Insn::mov64_imm(R2, 16)]);
                self.e.call(libbpf_sys::BPF_FUNC_get_current_comm);
                let v = self.e.alloc()?;
                self.e.set_scratch_ptr(v, slot);
                Ok(v)
            }
            Builtin::Probe => {
                let size = match self.ty(e) {
                    Type::Str(n) => n,
                    _ => 64,
                };
                let name = self.instance.name.clone().into_bytes();
                self.string_literal(e.id.0, &name, size)
            }
            _ => Err(self.internal("`args` used as a value")),
        }
    }

    /// A function call; returns its value, if it has one.
    pub(super) fn call(&mut self, e: &Expr, args: &[Expr]) -> CgResult<Option<VReg>> {
        let f = *self
            .analysis
            .calls
            .get(&e.id)
            .ok_or_else(|| self.internal("an unresolved call"))?;
        match f {
            Function::Printf => self.printf(e, args)?,
            Function::Print => self.print(e, args)?,
            Function::Exit => self.exit_call(e, args)?,
            Function::Time => self.time(e)?,
            Function::Clear => self.map_event(e, args, EventKind::ClearMap)?,
            Function::Zero => self.map_event(e, args, EventKind::ZeroMap)?,
            Function::Delete => self.delete(e, args)?,
            Function::Str => return self.str_call(e, args).map(Some),
            Function::HasKey => return self.has_key(e, args).map(Some),
            _ => return Err(self.internal("an aggregation outside a map assignment")),
        }
        Ok(None)
    }

    /// `str(p[, len])`: a string read from memory (or cut from another).
    fn str_call(&mut self, e: &Expr, args: &[Expr]) -> CgResult<VReg> {
        if let Some(Const::Str(bytes)) = self.analysis.consts.get(&e.id).cloned() {
            let size = bytes.len() as u32 + 1;
            return self.string_literal(e.id.0, &bytes, size);
        }
        let Type::Str(size) = self.ty(e) else {
            return Err(self.internal("str() without a string type"));
        };
        let source = args
            .first()
            .ok_or_else(|| self.internal("str() without an argument"))?;
        let from = self.ty(source);
        let slot = self.e.slot(e.id.0, tag::VALUE, size)?;
        let v = self.expr(source)?;
        if let Type::Str(_) = from {
            self.e.copy_to(R1, v);
            self.convert(
                R1,
                0,
                &from,
                super::emit::SCRATCH,
                slot as i16,
                &Type::Str(size),
            );
        } else {
            let helper = match from {
                Type::Ptr {
                    space: AddrSpace::User,
                    ..
                } => libbpf_sys::BPF_FUNC_probe_read_user_str,
                Type::Ptr {
                    space: AddrSpace::Kernel,
                    ..
                } => libbpf_sys::BPF_FUNC_probe_read_kernel_str,
                _ => libbpf_sys::BPF_FUNC_probe_read_str,
            };
            self.e.zero_scratch(slot, size);
            self.e.copy_to(R3, v);
            self.e.scratch_ptr(R1, slot);
            self.e.asm.emit([Insn::mov64_imm(R2, size as i32)]);
            self.e.call(helper);
        }
        self.e.set_scratch_ptr(v, slot);
        Ok(v)
    }
}
