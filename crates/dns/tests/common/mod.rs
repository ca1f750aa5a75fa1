//! Helpers for the resolver integration tests: scratch dirs readable by `nobody`, a
//! running resolver process, DNS queries over UDP and TCP, and a fake upstream.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// How long any wait in these tests may take before it counts as a failure.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A directory under /tmp, mode 0755, that the resolver can still read as `nobody`.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!(
            "/tmp/bulwark-dns-it-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        Self(dir)
    }

    pub fn records(&self) -> PathBuf {
        self.0.join("dns.json")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the records file the way the engine does: temp file, mode 0644, rename.
pub fn write_records(path: &Path, json: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, json).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// A 127.0.0.1 port that was free a moment ago.
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A resolver process, killed when dropped.
pub struct Resolver {
    pub child: Child,
    pub stderr: PathBuf,
}

impl Resolver {
    pub fn spawn(scratch: &Scratch) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let stderr = scratch.0.join(format!("stderr-{n}"));
        let child = Command::new(env!("CARGO_BIN_EXE_bulwark-dns"))
            .arg("--records")
            .arg(scratch.records())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Self { child, stderr }
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Polls with a known name until the resolver answers it, failing fast if it exits.
    pub fn wait_serving(&mut self, addr: SocketAddr, name: &str) {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("resolver exited early ({status}): {}", self.stderr());
            }
            if udp_query(addr, name, RecordType::A).is_some() {
                return;
            }
        }
        panic!(
            "resolver did not answer within {DEADLINE:?}: {}",
            self.stderr()
        );
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "resolver still running after {DEADLINE:?}: {}",
            self.stderr()
        );
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn query(name: &str, rtype: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    message
}

/// One UDP query; `None` when no matching reply came within a second.
pub fn udp_query(addr: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
    let message = query(name, rtype);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    socket.send_to(&message.to_vec().unwrap(), addr).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    let reply = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(reply.metadata.id, message.metadata.id);
    Some(reply)
}

/// One query over a fresh TCP connection (length-prefixed).
pub fn tcp_query(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let message = query(name, rtype);
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let bytes = message.to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).unwrap();
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).unwrap();
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut reply).unwrap();
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.id, message.metadata.id);
    reply
}

/// The IPv4 addresses in a reply's answer section.
pub fn a_records(reply: &Message) -> Vec<Ipv4Addr> {
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    reply
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// A fake upstream on 127.0.0.1 answering every A question with `answer`; counts
/// the questions it received.
pub fn fake_upstream(answer: Ipv4Addr) -> (SocketAddr, Arc<AtomicUsize>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
            reply.metadata.recursion_desired = query.metadata.recursion_desired;
            reply.metadata.recursion_available = true;
            for q in &query.queries {
                reply.add_query(q.clone());
                let record = Record::from_rdata(q.name().clone(), 42, RData::A(A(answer)));
                reply.add_answer(record);
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), peer);
        }
    });
    (addr, asked)
}
