//! Log lines for `--log`/`--log-format`, in runc's shapes: JSON lines
//! `{"level":"error","msg":"...","time":"..."}` that engines parse, or logfmt-style text.
use std::io::Write;
use std::path::PathBuf;

use crate::args::LogFormat;

#[derive(Debug)]
pub struct Logger {
    pub file: Option<PathBuf>,
    pub format: LogFormat,
    pub debug: bool,
}

impl Logger {
    pub fn error(&self, msg: &str) {
        self.write("error", msg);
        // Engines read the error from the log file; a person at a terminal reads stderr.
        if self.file.is_some() {
            eprintln!("bulwark-runtime: {msg}");
        }
    }

    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    fn line(&self, level: &str, msg: &str) -> String {
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        match self.format {
            LogFormat::Json => {
                serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
            }
            LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}"),
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let line = self.line(level, msg);
        match &self.file {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path);
                if let Ok(mut file) = file {
                    let _ = writeln!(file, "{line}");
                }
            }
            None if self.format == LogFormat::Text => eprintln!("bulwark-runtime: {level}: {msg}"),
            None => eprintln!("{line}"),
        }
    }
}
