//! Pull and push progress: on a terminal, one line per layer redrawn in place (status,
//! bytes so far, rate); otherwise one plain line per change of status, as Docker prints
//! them to a pipe; nothing with `-q`.
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bulwark_engine::{PullEvent, PushEvent};

use crate::format::human_size;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Terminal,
    Lines,
    Quiet,
}

#[derive(Debug, Default)]
struct Display {
    /// Layer ids in the order they were first seen, with their line.
    lines: Vec<(String, String)>,
    drawn: usize,
    started: HashMap<String, Instant>,
    /// Layers announced as already in the store.
    existing: HashSet<String>,
    last_draw: Option<Instant>,
}

/// A progress display, shared by the tasks that report to it.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    display: Mutex<Display>,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            display: Mutex::new(Display::default()),
        }
    }

    /// A line outside the per-layer block (`Digest: ...`).
    pub fn say(&self, text: &str) {
        if self.mode != Mode::Quiet {
            println!("{text}");
        }
    }

    pub fn pull(&self, event: PullEvent) {
        match event {
            PullEvent::Pulling { tag, repository } => {
                self.say(&format!("{tag}: Pulling from {repository}"))
            }
            PullEvent::Layers(layers) => {
                for layer in layers {
                    self.layer(&layer, "Pulling fs layer".into(), true);
                }
            }
            PullEvent::AlreadyExists(l) => {
                self.display
                    .lock()
                    .expect("the display lock is never poisoned")
                    .existing
                    .insert(l.clone());
                self.layer(&l, "Already exists".into(), true)
            }
            PullEvent::Downloading { layer, done, total } => {
                let text = self.transfer("Downloading", &layer, done, total);
                self.layer(&layer, text, false);
            }
            PullEvent::Verifying(l) => self.layer(&l, "Verifying Checksum".into(), true),
            PullEvent::Downloaded(l) => self.layer(&l, "Download complete".into(), true),
            PullEvent::PullComplete(l) => self.complete(&l),
        }
    }

    /// `Pull complete`, unless the layer was announced as already there.
    fn complete(&self, layer: &str) {
        let existed = self
            .display
            .lock()
            .expect("the display lock is never poisoned")
            .existing
            .contains(layer);
        if !existed {
            self.layer(layer, "Pull complete".into(), true);
        }
    }

    pub fn push(&self, event: PushEvent) {
        match event {
            PushEvent::Repository(r) => self.say(&format!("The push refers to repository [{r}]")),
            PushEvent::Preparing(l) => self.layer(&l, "Preparing".into(), true),
            PushEvent::Pushing { layer, total } => {
                let text = format!("Pushing {}", human_size(total, 4));
                self.layer(&layer, text, self.mode == Mode::Terminal);
            }
            PushEvent::Pushed(l) => self.layer(&l, "Pushed".into(), true),
            PushEvent::AlreadyExists(l) => self.layer(&l, "Layer already exists".into(), true),
            PushEvent::Mounted { layer, from } => {
                self.layer(&layer, format!("Mounted from {from}"), true)
            }
            PushEvent::Done { tag, digest, size } => {
                self.say(&format!("{tag}: digest: {digest} size: {size}"))
            }
        }
    }

    /// `Downloading [=====>    ]  1.2MB/3.4MB  5.6MB/s`.
    fn transfer(&self, what: &str, layer: &str, done: u64, total: u64) -> String {
        let mut display = self
            .display
            .lock()
            .expect("the display lock is never poisoned");
        let started = *display
            .started
            .entry(layer.to_owned())
            .or_insert_with(Instant::now);
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        let width = 50usize;
        let filled = if total == 0 {
            0
        } else {
            ((done.min(total) as f64 / total as f64) * width as f64) as usize
        };
        let bar = format!(
            "[{}>{}]",
            "=".repeat(filled.saturating_sub(1)),
            " ".repeat(width - filled.max(1))
        );
        format!(
            "{what} {bar} {}/{}  {}/s",
            human_size(done, 4),
            human_size(total, 4),
            human_size((done as f64 / elapsed) as u64, 3)
        )
    }

    /// Sets a layer's line; `change` marks a new status (always shown) rather than a
    /// byte count (shown on a terminal, at most ten times a second).
    fn layer(&self, layer: &str, text: String, change: bool) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => {
                if change {
                    println!("{layer}: {text}");
                }
            }
            Mode::Terminal => {
                let mut display = self
                    .display
                    .lock()
                    .expect("the display lock is never poisoned");
                match display.lines.iter_mut().find(|(id, _)| id == layer) {
                    Some((_, line)) => *line = text,
                    None => display.lines.push((layer.to_owned(), text)),
                }
                let due = display
                    .last_draw
                    .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
                if change || due {
                    draw(&mut display);
                }
            }
        }
    }

    /// Draws the final state of every line (a terminal's last frame).
    pub fn finish(&self) {
        if self.mode == Mode::Terminal {
            draw(
                &mut self
                    .display
                    .lock()
                    .expect("the display lock is never poisoned"),
            );
        }
    }
}

fn draw(display: &mut Display) {
    let mut out = std::io::stdout().lock();
    let mut frame = String::new();
    if display.drawn > 0 {
        frame.push_str(&format!("\x1b[{}A", display.drawn));
    }
    for (id, line) in &display.lines {
        frame.push_str(&format!("\x1b[2K{id}: {line}\n"));
    }
    let _ = out.write_all(frame.as_bytes());
    let _ = out.flush();
    display.drawn = display.lines.len();
    display.last_draw = Some(Instant::now());
}
