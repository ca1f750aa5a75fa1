//! A few instructions put in front of libseccomp's program: on the native architecture, a
//! syscall numbered above every syscall the profile names gets `ENOSYS`. Such a syscall
//! is newer than the profile, so its author cannot have meant to allow or deny it, and
//! `ENOSYS` makes libc fall back to the older call it replaces (clone3 -> clone,
//! faccessat2 -> faccessat, ...) where the default `EPERM` would make it fail.
use bulwark_sys::seccomp::SockFilter;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// x32 syscalls run on the x86_64 audit architecture with this bit set; they are left to
/// libseccomp's program, which knows them.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[cfg(target_arch = "x86_64")]
pub const NATIVE_AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
pub const NATIVE_AUDIT_ARCH: u32 = 0xc000_00b7;

/// `program` with the ENOSYS stub in front for syscalls above `max_named`.
pub fn prepend_enosys(program: Vec<SockFilter>, max_named: u32) -> Vec<SockFilter> {
    let op = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    // Jump offsets count the instructions skipped; 0 falls through to the next one.
    let stub = [
        op(LD_W_ABS, 0, 0, ARCH_OFFSET),
        op(JEQ_K, 0, 4, NATIVE_AUDIT_ARCH), // other architecture: to the program
        op(LD_W_ABS, 0, 0, NR_OFFSET),
        op(JGE_K, 2, 0, X32_SYSCALL_BIT), // x32: to the program
        op(JGT_K, 0, 1, max_named),
        op(RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ];
    stub.into_iter().chain(program).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic BPF program on one `seccomp_data` (only what the stub reads).
    fn run(program: &[SockFilter], arch: u32, nr: u32) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = program[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => acc = if i.k == ARCH_OFFSET { arch } else { nr },
                RET_K => return i.k,
                JEQ_K | JGT_K | JGE_K => {
                    let taken = match i.code {
                        JEQ_K => acc == i.k,
                        JGT_K => acc > i.k,
                        _ => acc >= i.k,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn only_native_syscalls_above_the_profile_get_enosys() {
        const ALLOW: u32 = 0x7fff_0000;
        let rest = vec![SockFilter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: ALLOW,
        }];
        let program = prepend_enosys(rest, 450);
        let enosys = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(run(&program, NATIVE_AUDIT_ARCH, 0), ALLOW);
        assert_eq!(run(&program, NATIVE_AUDIT_ARCH, 450), ALLOW);
        assert_eq!(run(&program, NATIVE_AUDIT_ARCH, 451), enosys);
        assert_eq!(run(&program, NATIVE_AUDIT_ARCH, X32_SYSCALL_BIT + 1), ALLOW);
        assert_eq!(run(&program, 0x4000_0003, 999), ALLOW);
    }
}
