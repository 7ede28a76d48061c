//! Progress of a run for a person: a bar on a terminal, and warnings that reach stderr whether or
//! not the bar is shown (batch jobs and `--quiet` must still see skipped scans and bad losses).

use indicatif::{ProgressBar, ProgressStyle};

pub struct Reporter {
    bar: ProgressBar,
    visible: bool,
    /// Warnings are also appended here (the run folder's warnings.log).
    file: Option<std::sync::Mutex<std::fs::File>>,
    /// "[rank r] " in a data-parallel run's other ranks.
    prefix: String,
}

impl Reporter {
    /// A bar over `steps` micro-steps when `visible` (and stderr is a terminal).
    pub fn new(steps: usize, visible: bool) -> Self {
        let bar = if visible {
            ProgressBar::new(steps as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        let visible = visible && !bar.is_hidden();
        Reporter {
            bar,
            visible,
            file: None,
            prefix: String::new(),
        }
    }

    /// Warnings also go to `path` (appended), so batch jobs keep them with the run.
    pub fn with_warnings_file(mut self, path: &std::path::Path) -> Self {
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(std::sync::Mutex::new);
        self
    }

    /// Lines of rank `rank` of a multi-rank run say whose they are.
    pub fn for_rank(mut self, rank: usize, world: usize) -> Self {
        if world > 1 {
            self.prefix = format!("[rank {rank}/{world}] ");
        }
        self
    }

    /// A line that must be seen: above the bar, or on stderr when there is none.
    pub fn line(&self, text: String) {
        if self.visible {
            self.bar.println(format!("{}{text}", self.prefix));
        } else {
            eprintln!("{}{text}", self.prefix);
        }
    }

    pub fn warn(&self, text: String) {
        if let Some(f) = &self.file {
            use std::io::Write;
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{}warning: {text}", self.prefix);
            }
        }
        self.line(format!("warning: {text}"));
    }

    /// One micro-step done, with a status message.
    pub fn step(&self, message: String) {
        self.bar.set_message(message);
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
