//! The progress bar on the terminal while a run goes: shown on stderr only when stderr is a
//! terminal (a run piped to a file or CI log prints nothing but its report).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the bar is redrawn.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
const REDRAWS_PER_S: u8 = 10;

/// Whether to show a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// When stderr is a terminal.
    Auto,
    Never,
}

/// A progress bar that may be absent.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    last_draw: Instant,
}

impl Progress {
    /// A bar counting messages up to `total`, or seconds up to `total` when the run is
    /// bounded by time only (`by_time`).
    pub fn new(mode: ProgressMode, total: u64, by_time: bool) -> Progress {
        let show = mode == ProgressMode::Auto && std::io::stderr().is_terminal();
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total),
                ProgressDrawTarget::stderr_with_hz(REDRAWS_PER_S),
            );
            let template = if by_time {
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} s  {msg}"
            } else {
                "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len}  {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            last_draw: Instant::now(),
        }
    }

    /// A bar that shows nothing (tests, non-terminals).
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            last_draw: Instant::now(),
        }
    }

    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// Updates position and message, at most every [`REDRAW_EVERY`].
    pub fn update(&mut self, position: u64, message: impl FnOnce() -> String) {
        let Some(bar) = &self.bar else {
            return;
        };
        if self.last_draw.elapsed() < REDRAW_EVERY {
            return;
        }
        self.last_draw = Instant::now();
        bar.set_position(position);
        bar.set_message(message());
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_a_bar_and_updates_are_harmless() {
        let mut p = Progress::new(ProgressMode::Never, 100, false);
        assert!(!p.is_shown());
        p.update(5, || unreachable!("no message is built for a hidden bar"));
        p.finish();
        assert!(!Progress::hidden().is_shown());
    }
}
