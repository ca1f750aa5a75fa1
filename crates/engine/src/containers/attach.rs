//! `attach`: a connection to the container's monitor, which sends the container's
//! output and (for a container with a terminal) takes input and window sizes. The
//! framing is `bulwark-mon`'s (see its `attach` module).
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use bulwark_container::Status;

use crate::{Engine, EngineError, Stream};

/// An attached connection.
#[derive(Debug)]
pub struct Attachment {
    pub stream: UnixStream,
    /// The container has a terminal: output comes raw, input goes to it.
    pub tty: bool,
    pub id: String,
}

impl Attachment {
    /// Sends what the user typed to the container's terminal.
    pub fn send_input(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.frame(0, bytes)
    }

    /// Sends the user's window size to the container's terminal.
    pub fn send_size(&mut self, rows: u16, cols: u16) -> std::io::Result<()> {
        let mut body = rows.to_be_bytes().to_vec();
        body.extend_from_slice(&cols.to_be_bytes());
        self.frame(1, &body)
    }

    fn frame(&mut self, kind: u8, body: &[u8]) -> std::io::Result<()> {
        let mut frame = vec![kind];
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(body);
        self.stream.write_all(&frame)
    }

    /// The next piece of output and its stream (`None` at the end). Without a terminal
    /// the monitor sends frames; with one, bytes as they come (all stdout).
    pub fn receive(&mut self, buffer: &mut Vec<u8>) -> std::io::Result<Option<Stream>> {
        buffer.clear();
        if self.tty {
            buffer.resize(16 * 1024, 0);
            let n = self.stream.read(buffer)?;
            buffer.truncate(n);
            return Ok((n > 0).then_some(Stream::Stdout));
        }
        let mut header = [0u8; 8];
        match self.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        buffer.resize(len, 0);
        self.stream.read_exact(buffer)?;
        Ok(Some(if header[0] == 2 {
            Stream::Stderr
        } else {
            Stream::Stdout
        }))
    }
}

impl Engine {
    /// `attach`: connects to a running container's monitor.
    pub fn attach(&self, what: &str) -> Result<Attachment, EngineError> {
        let dir = self.container(what)?;
        let state = dir.state()?;
        if !matches!(
            state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            return Err(EngineError::Conflict(
                "You cannot attach to a stopped container, start it first".into(),
            ));
        }
        let record = dir.record()?;
        let handle = std::fs::File::open(&dir.dir)
            .map_err(|e| EngineError::Other(format!("{}: {e}", dir.dir.display())))?;
        let path = format!(
            "/proc/self/fd/{}/attach.sock",
            std::os::fd::AsRawFd::as_raw_fd(&handle)
        );
        let stream = UnixStream::connect(&path).map_err(|e| {
            EngineError::Other(format!("connecting to the container's monitor: {e}"))
        })?;
        Ok(Attachment {
            stream,
            tty: record.run.tty,
            id: dir.id,
        })
    }
}
