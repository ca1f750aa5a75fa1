//! eBPF programs for the cgroup v2 device controller: the instruction encoding, and the
//! bpf(2) commands that load such a program, attach it to a cgroup, list, and detach it.
//!
//! Only what cgroup device filtering needs. Constants and layouts follow
//! `include/uapi/linux/bpf.h`.
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{check, Errno, SysResult};

// Instruction classes.
/// Load into a register from memory (`dst = *(size *)(src + off)`).
pub const BPF_LDX: u8 = 0x01;
/// 32-bit arithmetic (results are zero-extended to 64 bits).
pub const BPF_ALU: u8 = 0x04;
/// 64-bit jumps and exit.
pub const BPF_JMP: u8 = 0x05;
/// Jumps comparing the low 32 bits of the register (Linux 5.1).
pub const BPF_JMP32: u8 = 0x06;
// Load size and mode.
/// A 32-bit word.
pub const BPF_W: u8 = 0x00;
/// Load from memory at a register plus offset.
pub const BPF_MEM: u8 = 0x60;
// Operand source.
/// The operand is the immediate.
pub const BPF_K: u8 = 0x00;
/// The operand is the source register.
pub const BPF_X: u8 = 0x08;
// Operations.
/// `dst |= operand`.
pub const BPF_OR: u8 = 0x40;
/// `dst &= operand`.
pub const BPF_AND: u8 = 0x50;
/// `dst >>= operand` (logical).
pub const BPF_RSH: u8 = 0x70;
/// `dst ^= operand`.
pub const BPF_XOR: u8 = 0xa0;
/// `dst = operand`.
pub const BPF_MOV: u8 = 0xb0;
/// Jump when `dst == operand`.
pub const BPF_JEQ: u8 = 0x10;
/// Jump when `dst & operand != 0`.
pub const BPF_JSET: u8 = 0x40;
/// Jump when `dst != operand`.
pub const BPF_JNE: u8 = 0x50;
/// Return `r0` (with class [`BPF_JMP`]).
pub const BPF_EXIT: u8 = 0x90;

// `struct bpf_cgroup_dev_ctx.access_type`: device type in the low 16 bits, the requested
// access in the high 16 bits.
/// A block device.
pub const BPF_DEVCG_DEV_BLOCK: u32 = 1;
/// A character device.
pub const BPF_DEVCG_DEV_CHAR: u32 = 2;
/// mknod(2) of the device.
pub const BPF_DEVCG_ACC_MKNOD: u32 = 1;
/// Opening the device for reading.
pub const BPF_DEVCG_ACC_READ: u32 = 2;
/// Opening the device for writing.
pub const BPF_DEVCG_ACC_WRITE: u32 = 4;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
const BPF_F_REPLACE: u32 = 1 << 2;

/// Verifier log size when a load is retried to say why it failed.
const LOG_SIZE: usize = 1 << 20;
/// The name the programs get, shown by `bpftool prog`.
const PROG_NAME: &[u8; 15] = b"bulwark_devices";

/// One eBPF instruction, `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    /// An instruction from its parts; `dst` and `src` are register numbers 0..=10.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        // The kernel's `dst_reg:4, src_reg:4` bitfield: dst takes the first bits.
        let regs = if cfg!(target_endian = "little") {
            (dst & 0x0f) | (src << 4)
        } else {
            (dst << 4) | (src & 0x0f)
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// `dst = *(u32 *)(src + off)`.
    pub const fn load_u32(dst: u8, src: u8, off: i16) -> Self {
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }

    /// 32-bit `dst = dst <op> imm` ([`BPF_AND`], [`BPF_OR`], [`BPF_XOR`], [`BPF_RSH`],
    /// [`BPF_MOV`]).
    pub const fn alu32_imm(op: u8, dst: u8, imm: i32) -> Self {
        Insn::new(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
    }

    /// 32-bit `dst = dst <op> src`.
    pub const fn alu32_reg(op: u8, dst: u8, src: u8) -> Self {
        Insn::new(BPF_ALU | op | BPF_X, dst, src, 0, 0)
    }

    /// Skips `off` instructions when the low 32 bits of `dst` compare true with `imm`
    /// ([`BPF_JEQ`], [`BPF_JNE`], [`BPF_JSET`]).
    pub const fn jmp32_imm(op: u8, dst: u8, imm: i32, off: i16) -> Self {
        Insn::new(BPF_JMP32 | op | BPF_K, dst, 0, off, imm)
    }

    /// Returns `r0`.
    pub const fn exit() -> Self {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    /// The opcode: class | operation | source (or size | mode).
    pub const fn code(&self) -> u8 {
        self.code
    }

    /// The destination register.
    pub const fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0x0f
        } else {
            self.regs >> 4
        }
    }

    /// The source register.
    pub const fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0x0f
        }
    }

    /// The offset: of a memory access, or how many instructions a jump skips.
    pub const fn off(&self) -> i16 {
        self.off
    }

    /// The immediate operand.
    pub const fn imm(&self) -> i32 {
        self.imm
    }
}

/// Loading a program failed: the errno and, when the verifier refused it, its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub errno: Errno,
    /// The verifier's explanation; empty when the failure was not the verifier's.
    pub log: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.errno)?;
        if !self.log.is_empty() {
            write!(f, "; verifier log:\n{}", self.log.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

// The parts of `union bpf_attr` used here, laid out without implicit padding so that
// every byte handed to the kernel is initialised.
#[repr(C)]
#[derive(Clone, Copy)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct GetIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `union bpf_attr`, zeroed to its full size (144 bytes as of Linux 6.x): the kernel
/// requires every byte past the fields a command uses to be zero.
#[repr(C)]
union Attr {
    load: LoadAttr,
    attach: AttachAttr,
    query: QueryAttr,
    get_id: GetIdAttr,
    zeroed: [u64; 18],
}

impl Attr {
    fn zeroed() -> Self {
        Attr { zeroed: [0; 18] }
    }
}

fn bpf(cmd: libc::c_int, attr: &mut Attr) -> SysResult<libc::c_long> {
    // SAFETY: `attr` is a fully initialised bpf_attr of the size passed, valid for reads
    // and writes for the duration of the call; any pointers in it were set by the caller
    // to buffers that outlive this call.
    check(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    })
}

/// Takes ownership of the fd a bpf(2) command returned.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just installed `fd` (close-on-exec, as every bpf fd) for us and
    // nothing else refers to it.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

/// Loads a `BPF_PROG_TYPE_CGROUP_DEVICE` program. When the verifier may have refused it
/// (`EINVAL`, `EACCES`; `E2BIG` and `EFAULT` for programs too complex to check), the
/// load is retried with a log to say why.
pub fn load_cgroup_device_program(insns: &[Insn], license: &CStr) -> Result<OwnedFd, LoadError> {
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| LoadError {
        errno: Errno::E2BIG,
        log: String::new(),
    })?;
    let mut prog_name = [0u8; 16];
    prog_name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let mut load = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
    };
    let mut attr = Attr::zeroed();
    attr.load = load;
    let errno = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return Ok(owned(fd)),
        Err(e @ (Errno::EINVAL | Errno::EACCES | Errno::E2BIG | Errno::EFAULT)) => e,
        Err(errno) => {
            return Err(LoadError {
                errno,
                log: String::new(),
            })
        }
    };
    let mut log = vec![0u8; LOG_SIZE];
    load.log_level = 1;
    load.log_size = LOG_SIZE as u32;
    load.log_buf = log.as_mut_ptr() as u64;
    let mut attr = Attr::zeroed();
    attr.load = load;
    let retried = bpf(BPF_PROG_LOAD, &mut attr);
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let mut text = String::from_utf8_lossy(&log[..end]).into_owned();
    match retried {
        Ok(fd) => Ok(owned(fd)),
        Err(Errno::ENOSPC) => {
            text.push_str("\n(log truncated)");
            Err(LoadError { errno, log: text })
        }
        Err(errno) => Err(LoadError { errno, log: text }),
    }
}

/// Attaches device program `prog` to the cgroup v2 directory `cgroup` (opened for
/// reading), alongside any others (`BPF_F_ALLOW_MULTI`: every program must allow an
/// access). With `replace`, that attached program is swapped for `prog` in one step.
pub fn attach_cgroup_device(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    replace: Option<BorrowedFd<'_>>,
) -> SysResult<()> {
    let mut attr = Attr::zeroed();
    attr.attach = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI | replace.map_or(0, |_| BPF_F_REPLACE),
        replace_bpf_fd: replace.map_or(0, |fd| fd.as_raw_fd() as u32),
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches device program `prog` from `cgroup`.
pub fn detach_cgroup_device(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> SysResult<()> {
    let mut attr = Attr::zeroed();
    attr.attach = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the device programs attached to `cgroup` itself (not those inherited from
/// its ancestors), in the order they run.
pub fn query_cgroup_device(cgroup: BorrowedFd<'_>) -> SysResult<Vec<u32>> {
    let mut ids: Vec<u32> = Vec::new();
    loop {
        let mut attr = Attr::zeroed();
        attr.query = QueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            query_flags: 0,
            attach_flags: 0,
            prog_ids: if ids.is_empty() {
                0
            } else {
                ids.as_mut_ptr() as u64
            },
            prog_cnt: ids.len() as u32,
            _pad: 0,
        };
        let result = bpf(BPF_PROG_QUERY, &mut attr);
        // SAFETY: `query` is the member just written and the kernel only writes integers
        // into it; every bit pattern is a valid `QueryAttr`.
        let count = unsafe { attr.query.prog_cnt } as usize;
        match result {
            // More programs than room (or the first, sizing call with no room): retry.
            Err(Errno::ENOSPC) => {}
            Ok(_) if ids.is_empty() && count > 0 => {}
            Ok(_) => {
                ids.truncate(count);
                return Ok(ids);
            }
            Err(e) => return Err(e),
        }
        ids = vec![0; count.max(ids.len() + 1)];
    }
}

/// An fd for the loaded program with id `id` (needs `CAP_SYS_ADMIN`).
pub fn prog_fd_by_id(id: u32) -> SysResult<OwnedFd> {
    let mut attr = Attr::zeroed();
    attr.get_id = GetIdAttr {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        assert_eq!(std::mem::size_of::<Attr>(), 144);
        assert_eq!(std::mem::offset_of!(LoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(LoadAttr, log_buf), 32);
        assert_eq!(std::mem::offset_of!(AttachAttr, replace_bpf_fd), 16);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_cnt), 24);
    }

    #[test]
    fn registers_share_one_byte() {
        let insn = Insn::load_u32(2, 1, 4);
        assert_eq!((insn.dst(), insn.src(), insn.off()), (2, 1, 4));
        assert_eq!(insn.code(), 0x61);
        #[cfg(target_endian = "little")]
        assert_eq!(insn.regs, 0x12);
        assert_eq!(Insn::exit().code(), 0x95);
        assert_eq!(Insn::jmp32_imm(BPF_JNE, 3, 7, 2).code(), 0x56);
    }
}
