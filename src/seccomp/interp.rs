//! A userspace interpreter for seccomp's classic BPF, for tests, `cordon
//! seccomp explain` and fuzzing. It follows the kernel's checker where it
//! matters: forward jumps only, loads inside `seccomp_data`, a program must
//! end in a return.

use libc::{
    BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_DIV, BPF_IMM, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP,
    BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC, BPF_MOD, BPF_MUL, BPF_NEG, BPF_OR,
    BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB, BPF_TAX, BPF_TXA, BPF_W, BPF_X, BPF_XOR,
};

use super::bpf::Insn;
use super::ir::Data;

// Whole opcodes, from libc's parts (linux/bpf_common.h, linux/filter.h).
const LD_W_ABS: u32 = BPF_LD | BPF_W | BPF_ABS;
const LD_IMM: u32 = BPF_LD | BPF_W | BPF_IMM;
const LD_LEN: u32 = BPF_LD | BPF_W | BPF_LEN;
const LD_MEM: u32 = BPF_LD | BPF_W | BPF_MEM;
const LDX_IMM: u32 = BPF_LDX | BPF_W | BPF_IMM;
const LDX_LEN: u32 = BPF_LDX | BPF_W | BPF_LEN;
const LDX_MEM: u32 = BPF_LDX | BPF_W | BPF_MEM;
const MISC_TAX: u32 = BPF_MISC | BPF_TAX;
const MISC_TXA: u32 = BPF_MISC | BPF_TXA;

/// Why a program could not be run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterpError {
    /// Jumped or fell past the end.
    OutOfBounds(usize),
    /// A load outside the 64 bytes of seccomp_data, or unaligned.
    BadLoad(usize, u32),
    /// An instruction this interpreter (and seccomp) does not accept.
    BadInsn(usize, u16),
    /// Division by zero.
    DivByZero(usize),
    /// More than 4096 instructions.
    TooLong,
}

/// The result of running a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The SECCOMP_RET_* value returned.
    pub ret: u32,
    /// Instructions executed, the return included.
    pub steps: usize,
}

/// Run `prog` on `data`.
pub fn run(prog: &[Insn], data: &Data) -> Result<Run, InterpError> {
    if prog.len() > 4096 {
        return Err(InterpError::TooLong);
    }
    let bytes = data.to_bytes();
    let word = |k: u32| -> Option<u32> {
        let k = k as usize;
        (k % 4 == 0 && k + 4 <= bytes.len())
            .then(|| u32::from_le_bytes([bytes[k], bytes[k + 1], bytes[k + 2], bytes[k + 3]]))
    };
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    let mut steps = 0usize;
    loop {
        let i = *prog.get(pc).ok_or(InterpError::OutOfBounds(pc))?;
        steps += 1;
        let code = u32::from(i.code);
        let operand = if code & BPF_X != 0 { x } else { i.k };
        match code & 0x07 {
            BPF_LD => match code {
                LD_W_ABS => a = word(i.k).ok_or(InterpError::BadLoad(pc, i.k))?,
                LD_IMM => a = i.k,
                LD_LEN => a = 64,
                LD_MEM => a = *mem.get(i.k as usize).ok_or(InterpError::BadInsn(pc, i.code))?,
                _ => return Err(InterpError::BadInsn(pc, i.code)),
            },
            BPF_LDX => match code {
                LDX_IMM => x = i.k,
                LDX_LEN => x = 64,
                LDX_MEM => x = *mem.get(i.k as usize).ok_or(InterpError::BadInsn(pc, i.code))?,
                _ => return Err(InterpError::BadInsn(pc, i.code)),
            },
            BPF_ST => {
                *mem.get_mut(i.k as usize)
                    .ok_or(InterpError::BadInsn(pc, i.code))? = a
            }
            BPF_STX => {
                *mem.get_mut(i.k as usize)
                    .ok_or(InterpError::BadInsn(pc, i.code))? = x
            }
            BPF_ALU => {
                a = match code & 0xf0 {
                    BPF_ADD => a.wrapping_add(operand),
                    BPF_SUB => a.wrapping_sub(operand),
                    BPF_MUL => a.wrapping_mul(operand),
                    BPF_DIV => a.checked_div(operand).ok_or(InterpError::DivByZero(pc))?,
                    BPF_OR => a | operand,
                    BPF_AND => a & operand,
                    BPF_LSH => a.checked_shl(operand).unwrap_or(0),
                    BPF_RSH => a.checked_shr(operand).unwrap_or(0),
                    BPF_NEG => a.wrapping_neg(),
                    BPF_MOD => a.checked_rem(operand).ok_or(InterpError::DivByZero(pc))?,
                    BPF_XOR => a ^ operand,
                    _ => return Err(InterpError::BadInsn(pc, i.code)),
                }
            }
            BPF_JMP => {
                let next = pc + 1;
                pc = match code & 0xf0 {
                    BPF_JA => next + i.k as usize,
                    op => {
                        let taken = match op {
                            BPF_JEQ => a == operand,
                            BPF_JGT => a > operand,
                            BPF_JGE => a >= operand,
                            BPF_JSET => a & operand != 0,
                            _ => return Err(InterpError::BadInsn(pc, i.code)),
                        };
                        next + usize::from(if taken { i.jt } else { i.jf })
                    }
                };
                continue;
            }
            BPF_RET => {
                let ret = match code & 0x18 {
                    BPF_K => i.k,
                    BPF_A => a,
                    _ => return Err(InterpError::BadInsn(pc, i.code)),
                };
                return Ok(Run { ret, steps });
            }
            // BPF_MISC
            _ => match code {
                MISC_TAX => x = a,
                MISC_TXA => a = x,
                _ => return Err(InterpError::BadInsn(pc, i.code)),
            },
        }
        pc += 1;
    }
}
