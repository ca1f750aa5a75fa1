//! The container log in Docker's `json-file` format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-12-06T13:19:30.123456789Z"}`, rotated
//! to `<log>.1`, `<log>.2` ... when it passes `max-size`. The `local` driver keeps the
//! same lines with rotation on by default.
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::{ContainerError, LogDriver, LogOptions};

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

/// Docker's json-file splits a line longer than this into several entries.
const MOST_PER_ENTRY: usize = 16 * 1024;

/// Writes a container's log; what a stream has not ended with a newline waits for the
/// rest of its line.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    options: LogOptions,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path, options: &LogOptions) -> Result<LogWriter, ContainerError> {
        let mut options = options.clone();
        if options.driver == LogDriver::Local && options.max_size.is_none() {
            options.max_size = Some(20 << 20);
            options.max_file = options.max_file.max(5);
        }
        let file = match options.driver {
            LogDriver::None => None,
            _ => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(ContainerError::io("cannot open the log", path))?,
            ),
        };
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            options,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Adds what a stream produced.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), ContainerError> {
        if self.file.is_none() {
            return Ok(());
        }
        let slot = stream as usize;
        let mut pending = std::mem::take(&mut self.partial[slot]);
        pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            let line_end = start + end + 1;
            self.entry(stream, &pending[start..line_end])?;
            start = line_end;
        }
        while pending.len() - start >= MOST_PER_ENTRY {
            self.entry(stream, &pending[start..start + MOST_PER_ENTRY])?;
            start += MOST_PER_ENTRY;
        }
        pending.drain(..start);
        self.partial[slot] = pending;
        Ok(())
    }

    /// Writes out what waits for a newline (the stream ended).
    pub fn flush(&mut self) -> Result<(), ContainerError> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut self.partial[stream as usize]);
            if !pending.is_empty() {
                self.entry(stream, &pending)?;
            }
        }
        Ok(())
    }

    /// A line of the monitor's own, on stderr (dropped output, a restart).
    pub fn note(&mut self, text: &str) -> Result<(), ContainerError> {
        self.entry(Stream::Stderr, format!("bulwark: {text}\n").as_bytes())
    }

    fn entry(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), ContainerError> {
        let entry = Entry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream,
            time: crate::now(),
        };
        let mut line = serde_json::to_vec(&entry).expect("an entry always serializes");
        line.push(b'\n');
        if self
            .options
            .max_size
            .is_some_and(|max| self.size > 0 && self.size + line.len() as u64 > max)
        {
            self.rotate()?;
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.write_all(&line)
            .map_err(ContainerError::io("cannot write the log", &self.path))?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), ContainerError> {
        let keep = self.options.max_file.max(1);
        if keep == 1 {
            let file = self.file.as_mut().expect("rotating an open log");
            file.set_len(0)
                .map_err(ContainerError::io("cannot truncate the log", &self.path))?;
        } else {
            for n in (1..keep).rev() {
                let from = rotated(&self.path, n - 1);
                let _ = std::fs::rename(&from, rotated(&self.path, n));
            }
            self.file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(ContainerError::io("cannot open the log", &self.path))?,
            );
        }
        self.size = 0;
        Ok(())
    }
}

/// The log itself (`n` = 0) or its `n`th rotated file.
fn rotated(path: &Path, n: u32) -> PathBuf {
    match n {
        0 => path.to_path_buf(),
        n => PathBuf::from(format!("{}.{n}", path.display())),
    }
}

/// Which lines `logs` shows.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// The last this many lines.
    pub tail: Option<usize>,
}

impl LogFilter {
    fn admits(&self, entry: &Entry) -> bool {
        let Ok(time) = humantime::parse_rfc3339(&entry.time) else {
            return true;
        };
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }
}

/// Every line in the log's files, oldest first.
pub fn read(path: &Path, filter: &LogFilter) -> Result<Vec<Entry>, ContainerError> {
    let mut entries = Vec::new();
    for n in (0..100).rev() {
        let file = rotated(path, n);
        let Ok(opened) = File::open(&file) else {
            continue;
        };
        read_lines(BufReader::new(opened), filter, &mut entries);
    }
    if let Some(tail) = filter.tail {
        let skip = entries.len().saturating_sub(tail);
        entries.drain(..skip);
    }
    Ok(entries)
}

fn read_lines(reader: impl BufRead, filter: &LogFilter, into: &mut Vec<Entry>) {
    for line in reader.lines().map_while(Result::ok) {
        if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
            if filter.admits(&entry) {
                into.push(entry);
            }
        }
    }
}

/// Follows the log from its end as it grows (and across rotations), giving each new line
/// to `show`, until `done` says the writer is gone and nothing more came.
pub fn follow(
    path: &Path,
    filter: &LogFilter,
    mut show: impl FnMut(&Entry) -> bool,
    mut done: impl FnMut() -> bool,
) -> Result<(), ContainerError> {
    use std::os::unix::fs::MetadataExt;
    let open = |at_end: bool| -> Option<(File, u64)> {
        let mut file = File::open(path).ok()?;
        let ino = file.metadata().ok()?.ino();
        if at_end {
            file.seek(SeekFrom::End(0)).ok()?;
        }
        Some((file, ino))
    };
    let mut current = open(true);
    let mut pending = String::new();
    loop {
        let finished = done();
        if let Some((file, _)) = current.as_mut() {
            let mut reader = BufReader::new(&*file);
            let mut chunk = String::new();
            while reader.read_line(&mut chunk).unwrap_or(0) > 0 {
                pending.push_str(&chunk);
                chunk.clear();
                if pending.ends_with('\n') {
                    let line = std::mem::take(&mut pending);
                    if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
                        if filter.admits(&entry) && !show(&entry) {
                            return Ok(());
                        }
                    }
                }
            }
            // The reader is buffered; put the file where it stopped.
            let position = reader.stream_position().unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(position));
        }
        let rotated_away = match (&current, std::fs::metadata(path)) {
            (Some((_, ino)), Ok(meta)) => meta.ino() != *ino,
            (None, Ok(_)) => true,
            _ => false,
        };
        if rotated_away {
            current = open(false);
            continue;
        }
        if finished {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bulwark-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("c-json.log")
    }

    #[test]
    fn lines_become_entries_and_partial_lines_wait() {
        let path = temp("lines");
        let mut w = LogWriter::open(&path, &LogOptions::default()).unwrap();
        w.write(Stream::Stdout, b"one\ntw").unwrap();
        w.write(Stream::Stderr, b"err\n").unwrap();
        w.write(Stream::Stdout, b"o\nthree").unwrap();
        w.flush().unwrap();
        let all = read(&path, &LogFilter::default()).unwrap();
        let logs: Vec<(&str, Stream)> = all.iter().map(|e| (e.log.as_str(), e.stream)).collect();
        assert_eq!(
            logs,
            [
                ("one\n", Stream::Stdout),
                ("err\n", Stream::Stderr),
                ("two\n", Stream::Stdout),
                ("three", Stream::Stdout)
            ]
        );
        let tail = read(
            &path,
            &LogFilter {
                tail: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].log, "three");
    }

    #[test]
    fn rotation_keeps_max_file_files_of_about_max_size() {
        let path = temp("rotate");
        let options = LogOptions {
            max_size: Some(1000),
            max_file: 3,
            ..Default::default()
        };
        let mut w = LogWriter::open(&path, &options).unwrap();
        for i in 0..200 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        for n in 0..3 {
            let size = std::fs::metadata(rotated(&path, n)).unwrap().len();
            assert!(size <= 1000 && size > 0, "file {n}: {size}");
        }
        assert!(!rotated(&path, 3).exists());
        let all = read(&path, &LogFilter::default()).unwrap();
        assert_eq!(all.last().unwrap().log, "line 199\n");
        let numbers: Vec<u32> = all
            .iter()
            .map(|e| e.log.trim().trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "in order");
    }
}
