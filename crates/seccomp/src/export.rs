//! Reading libseccomp's compiled program back as instructions.
use std::io::{Read, Seek};

use bulwark_sys::seccomp::SockFilter;
use libseccomp::ScmpFilterContext;

use crate::SeccompError;

/// The filter's BPF program. libseccomp writes it to an fd; a memfd holds it whatever
/// its size.
pub fn program(ctx: &ScmpFilterContext) -> Result<Vec<SockFilter>, SeccompError> {
    let fd =
        nix::sys::memfd::memfd_create(c"bulwark-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| SeccompError::Export(format!("memfd_create: {e}")))?;
    ctx.export_bpf(&fd)
        .map_err(|e| SeccompError::Export(e.to_string()))?;
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| SeccompError::Export(e.to_string()))?;
    decode(&bytes)
}

/// Native-endian `struct sock_filter` records: u16 code, u8 jt, u8 jf, u32 k.
fn decode(bytes: &[u8]) -> Result<Vec<SockFilter>, SeccompError> {
    if !bytes.len().is_multiple_of(8) {
        return Err(SeccompError::Export(format!(
            "{} bytes is not a whole number of instructions",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|b| SockFilter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_records_and_refuses_partial_ones() {
        let mut bytes = Vec::new();
        bytes.extend(0x20u16.to_ne_bytes());
        bytes.extend([1, 2]);
        bytes.extend(4u32.to_ne_bytes());
        let program = decode(&bytes).unwrap();
        assert_eq!(
            program,
            vec![SockFilter {
                code: 0x20,
                jt: 1,
                jf: 2,
                k: 4
            }]
        );
        assert!(decode(&bytes[..7]).is_err());
    }
}
