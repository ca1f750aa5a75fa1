//! `events`: the containers' events log, past (from `since`) and as it grows (until
//! `until`, or for as long as the caller wants more).
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::time::{Duration, SystemTime};

use bulwark_container::events::Event;

use crate::{Engine, EngineError};

/// Which events `events` shows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// `(key, value)`: `container` (name or id), `event`, `image`, `label` is not kept.
    pub filters: Vec<(String, String)>,
}

impl EventFilter {
    fn admits(&self, event: &Event) -> bool {
        let time = humantime::parse_rfc3339(&event.time).ok();
        if let (Some(since), Some(time)) = (self.since, time) {
            if time < since {
                return false;
            }
        }
        self.filters.iter().all(|(k, v)| match k.as_str() {
            "container" => {
                event.id.starts_with(v.as_str()) || event.attributes.get("name") == Some(v)
            }
            "event" => event.action == *v || event.action.split(':').next() == Some(v.as_str()),
            "image" => event.attributes.get("image") == Some(v),
            "type" => v == "container",
            _ => false,
        })
    }
}

impl Engine {
    /// Gives each event the filter admits to `show` (false: stop): those since `since`,
    /// then new ones as they come until `until` (or forever without it).
    pub fn events(
        &self,
        filter: &EventFilter,
        mut show: impl FnMut(&Event) -> bool,
    ) -> Result<(), EngineError> {
        let containers = self.containers();
        containers.ensure()?;
        let path = bulwark_container::events::path(&containers.root);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|e| EngineError::Other(format!("{}: {e}", path.display())))?;
        let mut reader = BufReader::new(file);
        if filter.since.is_none() {
            reader
                .seek(SeekFrom::End(0))
                .map_err(|e| EngineError::Other(format!("{}: {e}", path.display())))?;
        }
        let mut line = String::new();
        loop {
            let past_until = filter.until.is_some_and(|until| SystemTime::now() >= until);
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if !line.ends_with('\n') => {
                        // A line being written: read it again whole.
                        let back = line.len() as i64;
                        let _ = reader.seek_relative(-back);
                        break;
                    }
                    Ok(_) => {}
                }
                let Ok(event) = serde_json::from_str::<Event>(&line) else {
                    continue;
                };
                let time = humantime::parse_rfc3339(&event.time).ok();
                if filter
                    .until
                    .is_some_and(|until| time.is_some_and(|t| t >= until))
                {
                    return Ok(());
                }
                if filter.admits(&event) && !show(&event) {
                    return Ok(());
                }
            }
            if past_until {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
