//! `linux.resources.devices` compiled into a cgroup v2 device program (pure).
//!
//! The kernel runs the program for every device access in the cgroup with a
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` in `r1`, where
//! `access_type` is the device type in the low 16 bits and the requested access in the
//! high 16 bits; the program returns 1 to allow and 0 to deny.
//!
//! As on v1, the last rule that matches decides and nothing matching means deny. The
//! rules are emitted last first, each as "skip to the next rule unless it matches"
//! followed by its verdict, so the first match in the program is the last in the list. A
//! rule matches a request only when every requested access is in the rule's access.
//!
//! Each rule ORs together one 32-bit value per condition that is zero exactly when the
//! condition holds (`field ^ wanted`, or the requested access bits the rule lacks) and
//! makes one jump on the result; each condition loads its field from the context afresh.
//! So the verifier sees one branch per rule and the same state at every rule's start,
//! and its work stays linear: with a jump per condition, values learned from passed
//! conditions made it quadratic (1,000 rules were too complex), and the pending
//! branches hit its limit of 8,192 at about 4,000 three-condition rules.
use bulwark_sys::bpf::{
    Insn, BPF_AND, BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR, BPF_JNE, BPF_MOV, BPF_OR, BPF_RSH,
    BPF_XOR,
};
use oci_spec::runtime::LinuxDeviceCgroup;

use crate::device_rules::{self, DeviceKind, DeviceRule, ALL_ACCESS};
use crate::error::Result;

/// Registers: the return value, the context, the ORed mismatches of a rule, and the
/// mismatch of one condition.
const R0: u8 = 0;
const CTX: u8 = 1;
const MISMATCH: u8 = 2;
const CONDITION: u8 = 3;

/// `struct bpf_cgroup_dev_ctx` offsets.
const ACCESS_TYPE: i16 = 0;
const MAJOR: i16 = 4;
const MINOR: i16 = 8;

/// The program enforcing `rules` (checked first; errors name the field).
pub fn device_program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    Ok(compile(&device_rules::parse(rules)?))
}

fn compile(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut program = Vec::new();
    for rule in rules.iter().rev() {
        let conditions = conditions(rule);
        for (i, condition) in conditions.iter().enumerate() {
            if i == 0 {
                program.extend(condition.emit(MISMATCH));
            } else {
                program.extend(condition.emit(CONDITION));
                program.push(Insn::alu32_reg(BPF_OR, MISMATCH, CONDITION));
            }
        }
        if !conditions.is_empty() {
            program.push(Insn::jmp32_imm(BPF_JNE, MISMATCH, 0, 2));
        }
        program.push(verdict(rule.allow));
        program.push(Insn::exit());
        if conditions.is_empty() {
            // Matches every request: the earlier rules could never decide, and the
            // verifier refuses instructions that cannot be reached.
            return program;
        }
    }
    program.push(verdict(false));
    program.push(Insn::exit());
    program
}

fn verdict(allow: bool) -> Insn {
    Insn::alu32_imm(BPF_MOV, R0, i32::from(allow))
}

/// One thing a rule requires of a request.
#[derive(Debug, Clone, Copy)]
enum Condition {
    /// The device type is this `BPF_DEVCG_DEV_*`.
    Kind(u32),
    /// The `u32` at this context offset (major or minor) is this number.
    Number(i16, u32),
    /// None of these access bits is requested.
    Lacks(u8),
}

impl Condition {
    /// Sets register `r` to a value that is zero exactly when the condition holds.
    /// 32-bit operations, so numbers above i32::MAX stay exact.
    fn emit(self, r: u8) -> Vec<Insn> {
        match self {
            Condition::Kind(kind) => vec![
                Insn::load_u32(r, CTX, ACCESS_TYPE),
                Insn::alu32_imm(BPF_AND, r, 0xffff),
                Insn::alu32_imm(BPF_XOR, r, kind as i32),
            ],
            Condition::Number(offset, number) => vec![
                Insn::load_u32(r, CTX, offset),
                Insn::alu32_imm(BPF_XOR, r, number as i32),
            ],
            Condition::Lacks(bits) => vec![
                Insn::load_u32(r, CTX, ACCESS_TYPE),
                Insn::alu32_imm(BPF_RSH, r, 16),
                Insn::alu32_imm(BPF_AND, r, i32::from(bits)),
            ],
        }
    }
}

fn conditions(rule: &DeviceRule) -> Vec<Condition> {
    let kind = rule.kind.map(|kind| {
        Condition::Kind(match kind {
            DeviceKind::Block => BPF_DEVCG_DEV_BLOCK,
            DeviceKind::Char => BPF_DEVCG_DEV_CHAR,
        })
    });
    let major = rule.major.map(|n| Condition::Number(MAJOR, n));
    let minor = rule.minor.map(|n| Condition::Number(MINOR, n));
    let lacking = ALL_ACCESS & !rule.access;
    let access = (lacking != 0).then_some(Condition::Lacks(lacking));
    [kind, major, minor, access].into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_sys::bpf::{
        BPF_ALU, BPF_EXIT, BPF_JEQ, BPF_JMP, BPF_JMP32, BPF_JSET, BPF_K, BPF_LDX, BPF_MEM, BPF_W,
        BPF_X,
    };

    /// Runs `program` over one context the way the kernel would, for the instructions
    /// the compiler emits; panics on anything else, on reading a register never written,
    /// or on leaving the program.
    fn run(program: &[Insn], ctx: [u32; 3]) -> u32 {
        let mut regs: [Option<u64>; 11] = [None; 11];
        regs[CTX as usize] = Some(0); // a stand-in for the context pointer
        let mut pc = 0usize;
        for _ in 0..program.len() {
            let insn = program
                .get(pc)
                .unwrap_or_else(|| panic!("fell off at {pc}"));
            let (dst, src) = (insn.dst() as usize, insn.src() as usize);
            let at = pc;
            pc += 1;
            let reg = |r: usize| regs[r].unwrap_or_else(|| panic!("r{r} unset at {at}"));
            match insn.code() {
                c if c == BPF_LDX | BPF_MEM | BPF_W => {
                    assert_eq!(src, CTX as usize, "loads only from the context");
                    let field = usize::try_from(insn.off()).unwrap() / 4;
                    assert_eq!(insn.off() % 4, 0, "aligned loads");
                    regs[dst] = Some(u64::from(ctx[field]));
                }
                c if c & 0x07 == BPF_ALU => {
                    let operand = if c & BPF_X != 0 {
                        reg(src) as u32
                    } else {
                        insn.imm() as u32
                    };
                    let value = match c & 0xf0 {
                        BPF_MOV => operand,
                        BPF_AND => reg(dst) as u32 & operand,
                        BPF_OR => reg(dst) as u32 | operand,
                        BPF_XOR => reg(dst) as u32 ^ operand,
                        BPF_RSH => reg(dst) as u32 >> operand,
                        op => panic!("alu op {op:#x}"),
                    };
                    regs[dst] = Some(u64::from(value)); // 32-bit results zero-extend
                }
                c if c == BPF_JMP | BPF_EXIT => {
                    let r0 = reg(R0 as usize);
                    assert!(r0 <= 1, "a device program returns 0 or 1");
                    return r0 as u32;
                }
                c if c & 0x07 == BPF_JMP32 || c & 0x07 == BPF_JMP => {
                    assert_eq!(c & BPF_X, BPF_K, "immediate operands only");
                    let (value, operand) = if c & 0x07 == BPF_JMP32 {
                        (u64::from(reg(dst) as u32), u64::from(insn.imm() as u32))
                    } else {
                        (reg(dst), i64::from(insn.imm()) as u64)
                    };
                    let taken = match c & 0xf0 {
                        BPF_JEQ => value == operand,
                        BPF_JNE => value != operand,
                        BPF_JSET => value & operand != 0,
                        op => panic!("jump op {op:#x}"),
                    };
                    if taken {
                        assert!(insn.off() >= 0, "forward jumps only");
                        pc += insn.off() as usize;
                    }
                }
                c => panic!("opcode {c:#x} at {at}"),
            }
        }
        panic!("no exit within {} steps", program.len())
    }

    /// What the kernel's verifier also demands: jumps land inside the program, every
    /// instruction can be reached, and the last one is an exit.
    fn check_shape(program: &[Insn]) {
        let mut reached = vec![false; program.len()];
        reached[0] = true;
        for (pc, insn) in program.iter().enumerate() {
            if !reached[pc] {
                panic!("instruction {pc} cannot be reached");
            }
            if insn.code() == BPF_JMP | BPF_EXIT {
                continue;
            }
            if insn.code() & 0x07 == BPF_JMP32 {
                let target = pc + 1 + insn.off() as usize;
                assert!(target < program.len(), "jump at {pc} leaves the program");
                reached[target] = true;
            }
            if pc + 1 < program.len() {
                reached[pc + 1] = true;
            }
        }
        assert_eq!(program.last(), Some(&Insn::exit()));
    }

    /// The rules read the plain way: the last match decides, none means deny.
    fn reference(rules: &[LinuxDeviceCgroup], kind: u32, major: u32, minor: u32, acc: u32) -> bool {
        use oci_spec::runtime::LinuxDeviceType as T;
        let number_matches =
            |n: Option<i64>, v: u32| matches!(n, None | Some(-1)) || n == Some(v.into());
        let matches = |r: &&LinuxDeviceCgroup| {
            let kind_ok = match r.typ().unwrap_or(T::A) {
                T::A => true,
                T::B => kind == BPF_DEVCG_DEV_BLOCK,
                T::C => kind == BPF_DEVCG_DEV_CHAR,
                _ => unreachable!(),
            };
            let granted = r.access().as_deref().unwrap_or("rwm");
            let access_ok = [(2, 'r'), (4, 'w'), (1, 'm')]
                .iter()
                .all(|&(bit, c)| acc & bit == 0 || granted.contains(c));
            kind_ok
                && number_matches(r.major(), major)
                && number_matches(r.minor(), minor)
                && access_ok
        };
        rules.iter().rev().find(matches).is_some_and(|r| r.allow())
    }

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    const NUMBERS: [u32; 8] = [0, 1, 3, 5, 8, 136, 0x8000_0001, u32::MAX];

    /// Every (type, major, minor, access) request over `NUMBERS` agrees with the reference.
    fn agrees(list: &[LinuxDeviceCgroup]) {
        let program = device_program(list).unwrap();
        check_shape(&program);
        for kind in [BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR] {
            for major in NUMBERS {
                for minor in NUMBERS {
                    for access in 1..=7u32 {
                        let want = reference(list, kind, major, minor, access);
                        let got = run(&program, [access << 16 | kind, major, minor]);
                        assert_eq!(
                            got == 1,
                            want,
                            "type {kind} {major}:{minor} access {access} under {list:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn runtime_defaults_allow_only_the_standard_devices() {
        let mut json = String::from(r#"[{"allow":false,"type":"a","access":"rwm"}"#);
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            json += &format!(
                r#",{{"allow":true,"type":"c","major":{major},"minor":{minor},"access":"rwm"}}"#
            );
        }
        json += r#",{"allow":true,"type":"c","major":136,"access":"rwm"}]"#;
        let list = rules(&json);
        agrees(&list);
        let program = device_program(&list).unwrap();
        let allowed = |kind: u32, major: u32, minor: u32, access: u32| {
            run(&program, [access << 16 | kind, major, minor]) == 1
        };
        assert!(allowed(BPF_DEVCG_DEV_CHAR, 1, 3, 6));
        assert!(allowed(BPF_DEVCG_DEV_CHAR, 136, 4, 1));
        assert!(!allowed(BPF_DEVCG_DEV_BLOCK, 1, 3, 2));
        assert!(!allowed(BPF_DEVCG_DEV_CHAR, 1, 4, 2));
        // The deny-all rule is last in the program and matches everything: no default
        // deny after it.
        assert_eq!(program.len(), 8 * (3 + 3 + 3 + 3) + (3 + 3 + 3) + 2);
    }

    #[test]
    fn empty_list_denies_everything() {
        let program = device_program(&[]).unwrap();
        check_shape(&program);
        assert_eq!(run(&program, [2 << 16 | 2, 1, 3]), 0);
    }

    #[test]
    fn last_match_wins_and_access_must_be_covered() {
        for json in [
            r#"[{"allow":true},{"allow":false,"type":"c","major":1,"minor":5,"access":"w"}]"#,
            r#"[{"allow":true,"type":"c","major":1,"access":"rw"},
                {"allow":false,"type":"c","minor":3,"access":"r"}]"#,
            r#"[{"allow":true,"type":"a","major":8,"access":"m"},
                {"allow":true,"type":"b","minor":-1,"access":"wr"}]"#,
            r#"[{"allow":true,"type":"c","major":4294967295,"minor":2147483649}]"#,
            r#"[{"allow":false}]"#,
        ] {
            agrees(&rules(json));
        }
    }

    /// Random lists from a fixed seed: the domain is small so that rules often overlap.
    #[test]
    fn random_lists_agree_with_the_reference() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..300 {
            let mut list = Vec::new();
            for _ in 0..next(7) {
                let mut rule = serde_json::json!({"allow": next(2) == 1});
                if let Some(kind) = ["a", "b", "c"].get(next(4) as usize) {
                    rule["type"] = (*kind).into();
                }
                for field in ["major", "minor"] {
                    match next(4) {
                        0 => {}
                        1 => rule[field] = (-1).into(),
                        _ => rule[field] = NUMBERS[next(8) as usize].into(),
                    }
                }
                let bits = next(8);
                if bits != 0 {
                    let access: String = [(1, 'w'), (2, 'm'), (4, 'r')]
                        .iter()
                        .filter(|(b, _)| bits & b != 0)
                        .map(|(_, c)| c)
                        .collect();
                    rule["access"] = access.into();
                }
                list.push(serde_json::from_value(rule).unwrap());
            }
            agrees(&list);
        }
    }

    #[test]
    fn bad_rules_name_their_field() {
        let e = device_program(&rules(r#"[{"allow":true},{"type":"c","access":"rwx"}]"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.resources.devices[1].access"), "{e}");
    }
}
