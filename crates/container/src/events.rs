//! `events`: what happened to containers, one JSON object per line in
//! `containers/events.log`, appended by the engine (create, start, stop, kill, pause,
//! unpause, rename, destroy) and by the monitors (die, restart, health_status). Each line
//! is one `write` on a file opened with `O_APPEND`, so writers never interleave.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One event, as Docker describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// `create`, `start`, `die` ...
    pub action: String,
    pub id: String,
    /// `name`, `image`, `exitCode` ...
    pub attributes: BTreeMap<String, String>,
}

/// The events file of a containers directory.
pub fn path(containers: &Path) -> PathBuf {
    containers.join("events.log")
}

/// Appends an event (best effort: an event that cannot be written is not an error of
/// the command that caused it).
pub fn record(containers: &Path, action: &str, id: &str, attributes: &[(&str, &str)]) {
    let event = Event {
        time: crate::now(),
        action: action.to_owned(),
        id: id.to_owned(),
        attributes: attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    let mut line = serde_json::to_vec(&event).expect("an event always serializes");
    line.push(b'\n');
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path(containers))
    {
        let _ = file.write_all(&line);
    }
}

/// Appends an event about a container, with its name and image and `extra` attributes;
/// the containers directory is the container's directory's parent.
pub fn record_for(
    dir: &crate::ContainerDir,
    container: &crate::ContainerRecord,
    action: &str,
    extra: &[(&str, &str)],
) {
    let Some(containers) = dir.dir.parent() else {
        return;
    };
    let mut attributes = vec![
        ("name", container.name.as_str()),
        ("image", container.image.as_str()),
    ];
    attributes.extend_from_slice(extra);
    record(containers, action, &dir.id, &attributes);
}
