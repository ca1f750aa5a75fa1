//! Docker's plugin protocol as a client: JSON over HTTP/1.1 on a unix socket, found as
//! `/run/docker/plugins/NAME.sock` or through a spec file (`/etc/docker/plugins/NAME.spec`
//! or `/usr/lib/docker/plugins/NAME.spec` holding `unix:///path`). Every call has a
//! deadline, so a plugin that hangs makes the command fail, not hang.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::NetworkError;

/// How long one call may take (connect, request, answer).
pub const DEADLINE: Duration = Duration::from_secs(15);
const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";
/// An answer larger than this is refused (a plugin cannot make us buffer without end).
const MAX_ANSWER: u64 = 1 << 20;

/// A plugin reached over its socket.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub name: String,
    pub socket: PathBuf,
}

fn plugin_dirs() -> [&'static str; 3] {
    [
        "/run/docker/plugins",
        "/etc/docker/plugins",
        "/usr/lib/docker/plugins",
    ]
}

impl Plugin {
    /// Finds the plugin called `name` (a socket, or a spec file naming one).
    pub fn find(name: &str) -> Result<Plugin, NetworkError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(NetworkError::Invalid(format!(
                "invalid plugin name {name:?}"
            )));
        }
        for dir in plugin_dirs().map(PathBuf::from) {
            let socket = dir.join(format!("{name}.sock"));
            if socket.exists() {
                return Ok(Plugin {
                    name: name.to_owned(),
                    socket,
                });
            }
            let spec = dir.join(format!("{name}.spec"));
            if let Ok(text) = std::fs::read_to_string(&spec) {
                let url = text.trim();
                let Some(path) = url.strip_prefix("unix://") else {
                    return Err(NetworkError::Invalid(format!(
                        "{}: {url:?}: only unix:// plugin addresses are supported",
                        spec.display()
                    )));
                };
                return Ok(Plugin {
                    name: name.to_owned(),
                    socket: PathBuf::from(path),
                });
            }
        }
        Err(NetworkError::Invalid(format!(
            "plugin \"{name}\" not found (no {name}.sock or {name}.spec in /run/docker/plugins, /etc/docker/plugins or /usr/lib/docker/plugins)"
        )))
    }

    /// `/Plugin.Activate`: the plugin must say it implements `interface`.
    pub fn activate(&self, interface: &str) -> Result<(), NetworkError> {
        let answer = self.call("/Plugin.Activate", &Value::Object(Default::default()))?;
        let implements: Vec<&str> = answer["Implements"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match implements.contains(&interface) {
            true => Ok(()),
            false => Err(NetworkError::Invalid(format!(
                "plugin {} does not implement {interface} (it implements {implements:?})",
                self.name
            ))),
        }
    }

    /// One call: `path` with `body`; the answer's JSON, or the plugin's `Err` as an error.
    pub fn call(&self, path: &str, body: &Value) -> Result<Value, NetworkError> {
        let fail =
            |what: String| NetworkError::Other(format!("plugin {} {path}: {what}", self.name));
        let mut stream = UnixStream::connect(&self.socket)
            .map_err(|e| fail(format!("cannot connect to {}: {e}", self.socket.display())))?;
        stream
            .set_read_timeout(Some(DEADLINE))
            .map_err(|e| fail(e.to_string()))?;
        stream
            .set_write_timeout(Some(DEADLINE))
            .map_err(|e| fail(e.to_string()))?;
        let payload = serde_json::to_vec(body).expect("json");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: plugin\r\nContent-Type: {CONTENT_TYPE}\r\nAccept: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&payload))
            .map_err(|e| fail(format!("cannot send: {e}")))?;
        let started = std::time::Instant::now();
        let mut raw = Vec::new();
        let mut limited = (&mut stream).take(MAX_ANSWER);
        let mut buf = [0u8; 8192];
        loop {
            if started.elapsed() > DEADLINE {
                return Err(fail(format!(
                    "no complete answer within {} s",
                    DEADLINE.as_secs()
                )));
            }
            match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(fail(format!("no answer within {} s", DEADLINE.as_secs())));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(format!("reading the answer: {e}"))),
            }
            if let Some(answer) = complete_answer(&raw) {
                return decode(answer).map_err(fail);
            }
        }
        let answer = complete_answer(&raw)
            .or_else(|| split_head(&raw))
            .ok_or_else(|| fail("the answer is not HTTP".into()))?;
        decode(answer).map_err(fail)
    }
}

/// Status line and headers, and the body, once the head has arrived.
/// An HTTP answer: status, headers (names lowercased), body.
type Answer<'a> = (u16, Vec<(String, String)>, &'a [u8]);

fn split_head(raw: &[u8]) -> Option<Answer<'_>> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((status, headers, &raw[end + 4..]))
}

/// The answer when all of it (by `Content-Length`) has arrived.
fn complete_answer(raw: &[u8]) -> Option<Answer<'_>> {
    let (status, headers, body) = split_head(raw)?;
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")?
        .1
        .parse()
        .ok()?;
    (body.len() >= length).then(|| (status, headers, &body[..length]))
}

fn decode((status, headers, body): Answer<'_>) -> Result<Value, String> {
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        return Err("chunked answers are not supported".into());
    }
    let value: Value = match body.is_empty() {
        true => Value::Object(Default::default()),
        false => serde_json::from_slice(body).map_err(|e| {
            format!(
                "the answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })?,
    };
    if let Some(err) = value["Err"].as_str().filter(|e| !e.is_empty()) {
        return Err(err.to_owned());
    }
    if !(200..300).contains(&status) {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_and_errors_named() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\n{\"Implements\":[\"X\"],\"a\":1}";
        let (status, _, body) = complete_answer(&ok[..ok.len() - 1]).unwrap();
        assert_eq!(status, 200);
        assert_eq!(body.len(), 25);
        assert!(complete_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{}").is_none());
        let err = b"HTTP/1.1 500 x\r\nContent-Length: 13\r\n\r\n{\"Err\":\"bad\"}";
        assert_eq!(decode(complete_answer(err).unwrap()).unwrap_err(), "bad");
        let junk = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        assert!(decode(complete_answer(junk).unwrap())
            .unwrap_err()
            .contains("not JSON"));
        assert!(split_head(b"garbage").is_none());
    }
}
