//! A pull's progress: a bar per layer (bytes and ETA) on a terminal; without one, a line every
//! few seconds (layers done, bytes so far), so a long pull in a log is never silent.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stockade_engine::PullProgress;

use crate::inventory::human_size;
use crate::ui::Ui;

/// How often the line without a terminal is printed.
const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Clone, Copy)]
struct Layer {
    current: u64,
    total: u64,
    done: bool,
}

pub struct PullView {
    reference: String,
    /// On a terminal: the bars, one per layer.
    bars: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
    /// Without one: whether lines are printed at all (not with `-q` or `--json`).
    lines: bool,
    layers: BTreeMap<String, Layer>,
    last_line: Instant,
}

impl PullView {
    pub fn new(ui: &Ui, reference: &str) -> Self {
        let bars = ui.progress_bars().then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                HashMap::new(),
            )
        });
        let lines = bars.is_none() && ui.shows_progress_lines();
        if lines {
            eprintln!("Pulling {reference}…");
        }
        Self {
            reference: reference.to_owned(),
            bars,
            lines,
            layers: BTreeMap::new(),
            last_line: Instant::now(),
        }
    }

    pub fn update(&mut self, progress: PullProgress) {
        let Some(id) = progress.layer.clone() else {
            return;
        };
        // The engine also reports the reference itself ("Pulling from …", the digest).
        if progress.status.starts_with("Pulling from") || id.contains(':') {
            return;
        }
        let layer = self.layers.entry(id.clone()).or_default();
        let done = matches!(progress.status.as_str(), "Pull complete" | "Already exists");
        if progress.status == "Downloading" {
            layer.current = progress.current.unwrap_or(layer.current);
            layer.total = progress.total.unwrap_or(layer.total);
        }
        if progress.status == "Download complete" {
            layer.current = layer.total;
        }
        layer.done |= done;
        let layer = *layer;
        if let Some((multi, bars)) = &mut self.bars {
            let bar = bars.entry(id.clone()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} {msg:16} [{bar:30}] {bytes}/{total_bytes} {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(id.clone());
                bar
            });
            bar.set_message(progress.status.clone());
            if layer.total > 0 {
                bar.set_length(layer.total);
                bar.set_position(layer.current.min(layer.total));
            }
            if layer.done {
                bar.finish_with_message(progress.status);
            }
        } else if self.lines && self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            eprintln!("  {}", self.summary());
        }
    }

    /// `3/7 layers, 120.0 MB of 300.0 MB`.
    fn summary(&self) -> String {
        let done = self.layers.values().filter(|l| l.done).count();
        let current: u64 = self.layers.values().map(|l| l.current).sum();
        let total: u64 = self.layers.values().map(|l| l.total).sum();
        format!(
            "{}: {done}/{} layers, {} of {}",
            self.reference,
            self.layers.len(),
            human_size(i64::try_from(current).unwrap_or(i64::MAX)),
            human_size(i64::try_from(total).unwrap_or(i64::MAX)),
        )
    }

    pub fn finish(self) {
        if let Some((multi, _)) = self.bars {
            let _ = multi.clear();
        }
    }
}
