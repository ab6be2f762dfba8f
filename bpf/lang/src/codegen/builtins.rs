//! Builtin variables and the dispatch of function calls.

use scorch_bpf::insn::{Alu, Cond, Insn, Size, R0, R1, R10, R2, R3, R4};

use super::emit::{VReg, FP_CTX, SCRATCH};
use super::gen::{tag, CgResult, Gen};
use super::layout::EventKind;
use crate::ast::{Expr, ExprKind};
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
            Builtin::Arg(n) => return self.function_arg(n),
            Builtin::Retval => return self.retval(e),
            Builtin::Func => return self.func(e),
            Builtin::Kstack | Builtin::Ustack => return self.stack(e),
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
                    self.e.map_value(R1, globals, super::GLOBAL_START);
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
            Function::Printf => self.printf(e, args, EventKind::Printf)?,
            Function::System => self.printf(e, args, EventKind::System)?,
            Function::Cat => self.printf(e, args, EventKind::Cat)?,
            Function::Print => self.print(e, args)?,
            Function::Exit => self.exit_call(e, args)?,
            Function::Time => self.time(e)?,
            Function::Join => self.join(e, args)?,
            Function::Clear => self.map_event(e, args, EventKind::ClearMap)?,
            Function::Zero => self.map_event(e, args, EventKind::ZeroMap)?,
            Function::Delete => self.delete(e, args)?,
            Function::Str => return self.str_call(e, args).map(Some),
            Function::HasKey => return self.has_key(e, args).map(Some),
            Function::Kstack | Function::Ustack => return self.stack(e).map(Some),
            Function::Kptr | Function::Uptr => {
                let arg = args
                    .first()
                    .ok_or_else(|| self.internal("kptr()/uptr() without an argument"))?;
                return self.expr(arg).map(Some);
            }
            Function::Strncmp => return self.strncmp(args).map(Some),
            Function::Strcontains => return self.strcontains(args).map(Some),
            Function::Ksym | Function::Kaddr | Function::Uaddr | Function::Cgroupid => {
                let arg = args
                    .first()
                    .ok_or_else(|| self.internal("ksym() without an argument"))?;
                if f != Function::Ksym {
                    return Err(self.internal("kaddr()/uaddr()/cgroupid() without its value"));
                }
                return self.expr(arg).map(Some);
            }
            Function::Usym => return self.usym(e, args).map(Some),
            Function::Signal => self.signal(args)?,
            Function::Buf => return self.buf(e, args).map(Some),
            Function::Ntop => return self.ntop(e, args).map(Some),
            Function::Macaddr => return self.macaddr(e, args).map(Some),
            Function::Path => return self.path(e, args).map(Some),
            Function::Len => return self.len(args).map(Some),
            Function::Bswap => return self.bswap(e, args).map(Some),
            Function::Strftime => {
                // The timestamp itself; user space formats it.
                let nsecs = args
                    .get(1)
                    .ok_or_else(|| self.internal("strftime() without a timestamp"))?;
                return self.expr(nsecs).map(Some);
            }
            _ => return Err(self.internal("an aggregation outside a map assignment")),
        }
        Ok(None)
    }

    /// `kstack`/`ustack`: `get_stackid` into the map for its limit; user
    /// stacks carry the pid in the high 32 bits, as in bpftrace.
    fn stack(&mut self, e: &Expr) -> CgResult<VReg> {
        let Type::Stack(st) = self.ty(e) else {
            return Err(self.internal("a stack without a stack type"));
        };
        let map = self
            .compiled
            .stack_map(st.limit)
            .ok_or_else(|| self.internal("a stack without its map"))?;
        let flags = if st.user {
            libbpf_sys::BPF_F_USER_STACK as i32
        } else {
            0
        };
        self.e.asm.emit([Insn::load(Size::DW, R1, R10, FP_CTX)]);
        self.e.map(R2, map);
        self.e.asm.emit([Insn::mov64_imm(R3, flags)]);
        self.e.call(libbpf_sys::BPF_FUNC_get_stackid);
        // The id as an unsigned 32-bit number (errors included).
        self.e.truncate(R0, 4);
        let v = self.e.alloc()?;
        self.e.set(v, R0);
        if st.user {
            self.e.call(libbpf_sys::BPF_FUNC_get_current_pid_tgid);
            self.e.asm.emit([
                Insn::alu64_imm(Alu::Rsh, R0, 32),
                Insn::alu64_imm(Alu::Lsh, R0, 32),
            ]);
            let r = self.e.get(v, R1);
            self.e.asm.emit([Insn::alu64_reg(Alu::Or, R0, r)]);
            self.e.set(v, R0);
        }
        Ok(v)
    }

    /// `usym(addr)`: the address and the current pid, 16 bytes in scratch.
    fn usym(&mut self, e: &Expr, args: &[Expr]) -> CgResult<VReg> {
        let arg = args
            .first()
            .ok_or_else(|| self.internal("usym() without an argument"))?;
        let slot = self.e.slot(e.id.0, tag::VALUE, 16)?;
        let v = self.expr(arg)?;
        let r = self.e.get(v, R1);
        self.e
            .asm
            .emit([Insn::store_reg(Size::DW, SCRATCH, slot as i16, r)]);
        self.e.call(libbpf_sys::BPF_FUNC_get_current_pid_tgid);
        self.e.asm.emit([
            Insn::alu64_imm(Alu::Rsh, R0, 32),
            Insn::store_reg(Size::DW, SCRATCH, slot as i16 + 8, R0),
        ]);
        self.e.set_scratch_ptr(v, slot);
        Ok(v)
    }

    /// `signal(SIG)`: `send_signal` to the current process.
    fn signal(&mut self, args: &[Expr]) -> CgResult<()> {
        let arg = args
            .first()
            .ok_or_else(|| self.internal("signal() without an argument"))?;
        let v = self.expr(arg)?;
        self.e.copy_to(R1, v);
        self.e.free(v);
        self.e.call(libbpf_sys::BPF_FUNC_send_signal);
        Ok(())
    }

    /// `buf(p[, len])`: the count of bytes read, then the bytes, in a
    /// zeroed scratch slot (so equal buffers make equal map keys).
    fn buf(&mut self, e: &Expr, args: &[Expr]) -> CgResult<VReg> {
        let Type::Buf(cap) = self.ty(e) else {
            return Err(self.internal("buf() without a buffer type"));
        };
        let source = args
            .first()
            .ok_or_else(|| self.internal("buf() without an argument"))?;
        let read = match self.ty(source) {
            Type::Ptr {
                space: AddrSpace::User,
                ..
            } => libbpf_sys::BPF_FUNC_probe_read_user,
            _ => libbpf_sys::BPF_FUNC_probe_read_kernel,
        };
        let slot = self.e.slot(e.id.0, tag::VALUE, 8 + cap)?;
        self.e.zero_scratch(slot, 8 + cap);
        let v = self.expr(source)?;
        // The length, at most `cap`: the verifier needs the bound.
        match args.get(1) {
            Some(len) => {
                let n = self.expr(len)?;
                self.e.copy_to(R2, n);
                self.e.free(n);
                let fits = self.e.asm.label();
                self.e
                    .asm
                    .jump(Insn::jmp_imm(Cond::Le, R2, cap as i32, 0), fits);
                self.e.asm.emit([Insn::mov64_imm(R2, cap as i32)]);
                self.e.asm.place(fits);
            }
            None => {
                self.e.asm.emit([Insn::mov64_imm(R2, cap as i32)]);
            }
        }
        self.e
            .asm
            .emit([Insn::store_reg(Size::DW, SCRATCH, slot as i16, R2)]);
        self.e.copy_to(R3, v);
        self.e.scratch_ptr(R1, slot + 8);
        self.e.call(read);
        self.e.set_scratch_ptr(v, slot);
        Ok(v)
    }

    /// `ntop([af, ]addr)`: the family, then the address bytes, in a
    /// zeroed scratch slot.
    fn ntop(&mut self, e: &Expr, args: &[Expr]) -> CgResult<VReg> {
        let addr = args
            .last()
            .ok_or_else(|| self.internal("ntop() without an argument"))?;
        let addr_ty = self.ty(addr);
        let slot = self.e.slot(e.id.0, tag::VALUE, 24)?;
        self.e.zero_scratch(slot, 24);
        if args.len() == 2 {
            let af = self.expr(&args[0])?;
            let r = self.e.get(af, R1);
            self.e
                .asm
                .emit([Insn::store_reg(Size::DW, SCRATCH, slot as i16, r)]);
            self.e.free(af);
        } else {
            let af = match addr_ty {
                Type::Buf(16) | Type::Mem { size: 16, .. } => libc::AF_INET6,
                _ => libc::AF_INET,
            };
            self.e
                .asm
                .emit([Insn::store_imm(Size::DW, SCRATCH, slot as i16, af)]);
        }
        let v = self.expr(addr)?;
        let r = self.e.get(v, R1);
        match addr_ty {
            Type::Buf(n) => self.e.copy_mem(SCRATCH, slot as i16 + 8, r, 8, n),
            Type::Mem { size, space, .. } => {
                // An array in memory (`in6_u.u6_addr8`): read its bytes.
                self.e.asm.emit([Insn::mov64_reg(R3, r)]);
                self.e.scratch_ptr(R1, slot + 8);
                self.e.asm.emit([Insn::mov64_imm(R2, size as i32)]);
                self.e.call(match space {
                    AddrSpace::Kernel => libbpf_sys::BPF_FUNC_probe_read_kernel,
                    AddrSpace::User => libbpf_sys::BPF_FUNC_probe_read_user,
                });
            }
            _ => {
                self.e
                    .asm
                    .emit([Insn::store_reg(Size::W, SCRATCH, slot as i16 + 8, r)]);
            }
        }
        self.e.set_scratch_ptr(v, slot);
        Ok(v)
    }

    /// `macaddr(addr)`: six bytes read from the address into a zeroed
    /// 8-byte scratch slot; a failed read leaves zeros, as in bpftrace.
    fn macaddr(&mut self, e: &Expr, args: &[Expr]) -> CgResult<VReg> {
        let addr = args
            .first()
            .ok_or_else(|| self.internal("macaddr() without an argument"))?;
        let space = match self.ty(addr) {
            Type::Ptr { space, .. } | Type::Mem { space, .. } => space,
            _ => AddrSpace::Kernel,
        };
        let slot = self.e.slot(e.id.0, tag::VALUE, 8)?;
        self.e.zero_scratch(slot, 8);
        let v = self.expr(addr)?;
        if let Type::Str(_) = self.ty(addr) {
            // A `char[6]` array, already read.
            let r = self.e.get(v, R1);
            self.e.copy_mem(SCRATCH, slot as i16, r, 0, 6);
            self.e.set_scratch_ptr(v, slot);
            return Ok(v);
        }
        self.e.copy_to(R3, v);
        self.e.scratch_ptr(R1, slot);
        self.e.asm.emit([Insn::mov64_imm(R2, 6)]);
        self.e.call(match space {
            AddrSpace::Kernel => libbpf_sys::BPF_FUNC_probe_read_kernel,
            AddrSpace::User => libbpf_sys::BPF_FUNC_probe_read_user,
        });
        self.e.set_scratch_ptr(v, slot);
        Ok(v)
    }

    /// `len(@map)`: the number of elements `for_each_map_elem` walks with
    /// a callback that only goes on.
    fn len(&mut self, args: &[Expr]) -> CgResult<VReg> {
        let Some(ExprKind::Map(name)) = args.first().map(|a| &a.kind) else {
            return Err(self.internal("len() without a map"));
        };
        let (map, _) = self.map_info(name)?;
        let id = self.subprogs.len();
        self.subprogs.push(Some(super::loops::Subprog {
            insns: vec![Insn::mov64_imm(R0, 0), Insn::exit()],
            func_refs: Vec::new(),
            arity: 4,
        }));
        self.e.map(R1, map);
        self.e.func_addr(R2, id);
        self.e
            .asm
            .emit([Insn::mov64_imm(R3, 0), Insn::mov64_imm(R4, 0)]);
        self.e.call(libbpf_sys::BPF_FUNC_for_each_map_elem);
        let v = self.e.alloc()?;
        self.e.set(v, R0);
        Ok(v)
    }

    /// `bswap(n)`: the bytes of `n` reversed, by the size of its type
    /// (the result's); a single byte stays as it is.
    fn bswap(&mut self, e: &Expr, args: &[Expr]) -> CgResult<VReg> {
        let arg = args
            .first()
            .ok_or_else(|| self.internal("bswap() without an argument"))?;
        let Type::Int(int) = self.ty(e) else {
            return Err(self.internal("bswap() without an integer type"));
        };
        let v = self.expr(arg)?;
        let r = self.e.get(v, R1);
        match int.size {
            1 => self.e.truncate(r, 1),
            size => {
                self.e.asm.emit([Insn::to_be(r, i32::from(size) * 8)]);
            }
        }
        self.e.set(v, r);
        Ok(v)
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

    /// `path(p[, size])`: `bpf_d_path` into a zeroed scratch slot (so
    /// equal paths make equal map keys); a path that fails (longer than
    /// the buffer) reads as the empty string.
    fn path(&mut self, e: &Expr, args: &[Expr]) -> CgResult<VReg> {
        let Type::Str(size) = self.ty(e) else {
            return Err(self.internal("path() without a string type"));
        };
        let source = args
            .first()
            .ok_or_else(|| self.internal("path() without an argument"))?;
        let slot = self.e.slot(e.id.0, tag::VALUE, size)?;
        self.e.zero_scratch(slot, size);
        let v = self.expr(source)?;
        // The verifier checks that r1 is the kernel's own `struct path`
        // pointer: it must come straight from the context.
        self.e.copy_to(R1, v);
        self.e.scratch_ptr(R2, slot);
        self.e.asm.emit([Insn::mov64_imm(R3, size as i32)]);
        self.e.call(libbpf_sys::BPF_FUNC_d_path);
        let done = self.e.asm.label();
        self.e.asm.jump(Insn::jmp_imm(Cond::Sgt, R0, 0, 0), done);
        // Since Linux 5.12 a failed d_path leaves the tail of the path in
        // the buffer: clear all of it, so every failure is the same key.
        self.e.zero_scratch(slot, size);
        self.e.asm.place(done);
        self.e.set_scratch_ptr(v, slot);
        Ok(v)
    }
}
