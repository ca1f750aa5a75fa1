//! What the monitor holds for one reader of the container's output (an attached client),
//! written without blocking, bounded as the log options say.
use std::os::fd::BorrowedFd;

use bulwark_container::{LogMode, LogOptions};

/// What waits to go to one of a client's outputs.
#[derive(Default)]
pub struct Sink {
    pending: Vec<u8>,
    pub dropped: u64,
    pub gone: bool,
}

impl Sink {
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Writes what it can without blocking.
    pub fn flush(&mut self, fd: BorrowedFd<'_>) {
        while !self.gone && !self.pending.is_empty() {
            match nix::unistd::write(fd, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    self.gone = true;
                    self.pending.clear();
                }
            }
        }
    }

    pub fn push(&mut self, bytes: &[u8], options: &LogOptions) {
        if self.gone {
            return;
        }
        self.pending.extend_from_slice(bytes);
        let bound = options.max_buffer_size as usize;
        if options.mode == LogMode::Drop && self.pending.len() > bound {
            let over = self.pending.len() - bound;
            self.pending.drain(..over);
            self.dropped += over as u64;
        }
    }

    pub fn full(&self, options: &LogOptions) -> bool {
        !self.gone && self.pending.len() >= options.max_buffer_size as usize
    }
}
