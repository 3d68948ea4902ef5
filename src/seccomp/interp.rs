//! A userspace interpreter for seccomp's classic BPF, for tests, `cordon
//! seccomp explain` and fuzzing. It follows the kernel's checker where it
//! matters: forward jumps only, loads inside `seccomp_data`, a program must
//! end in a return.

use super::bpf::Insn;
use super::ir::Data;

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
        let class = i.code & 0x07;
        let src_x = i.code & 0x08 != 0;
        let operand = if src_x { x } else { i.k };
        match class {
            // BPF_LD
            0x00 => match i.code {
                0x20 => a = word(i.k).ok_or(InterpError::BadLoad(pc, i.k))?,
                0x00 => a = i.k,
                0x80 => a = 64, // BPF_LEN
                0x60 => a = *mem.get(i.k as usize).ok_or(InterpError::BadInsn(pc, i.code))?,
                _ => return Err(InterpError::BadInsn(pc, i.code)),
            },
            // BPF_LDX
            0x01 => match i.code {
                0x01 => x = i.k,
                0x81 => x = 64,
                0x61 => x = *mem.get(i.k as usize).ok_or(InterpError::BadInsn(pc, i.code))?,
                _ => return Err(InterpError::BadInsn(pc, i.code)),
            },
            // BPF_ST / BPF_STX
            0x02 => {
                *mem.get_mut(i.k as usize)
                    .ok_or(InterpError::BadInsn(pc, i.code))? = a
            }
            0x03 => {
                *mem.get_mut(i.k as usize)
                    .ok_or(InterpError::BadInsn(pc, i.code))? = x
            }
            // BPF_ALU
            0x04 => {
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x20 => a.wrapping_mul(operand),
                    0x30 => a.checked_div(operand).ok_or(InterpError::DivByZero(pc))?,
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 => a.checked_shl(operand).unwrap_or(0),
                    0x70 => a.checked_shr(operand).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => a.checked_rem(operand).ok_or(InterpError::DivByZero(pc))?,
                    0xa0 => a ^ operand,
                    _ => return Err(InterpError::BadInsn(pc, i.code)),
                }
            }
            // BPF_JMP
            0x05 => {
                let next = pc + 1;
                pc = match i.code & 0xf0 {
                    0x00 => next + i.k as usize,
                    op => {
                        let taken = match op {
                            0x10 => a == operand,
                            0x20 => a > operand,
                            0x30 => a >= operand,
                            0x40 => a & operand != 0,
                            _ => return Err(InterpError::BadInsn(pc, i.code)),
                        };
                        next + usize::from(if taken { i.jt } else { i.jf })
                    }
                };
                continue;
            }
            // BPF_RET
            0x06 => {
                let ret = match i.code & 0x18 {
                    0x00 => i.k,
                    0x10 => a,
                    _ => return Err(InterpError::BadInsn(pc, i.code)),
                };
                return Ok(Run { ret, steps });
            }
            // BPF_MISC: TAX, TXA
            _ => match i.code {
                0x07 => x = a,
                0x87 => a = x,
                _ => return Err(InterpError::BadInsn(pc, i.code)),
            },
        }
        pc += 1;
    }
}
