//! How many refusal lines [`super::DiditWebhookLayer`] may write: at most a set number per
//! second of its clock, the rest counted and reported in one summary line. A flood of junk
//! requests must not become a flood of log lines (900k refusals once wrote 392 MB); metrics
//! still count every refusal. Pure: the time is an argument.

/// A per-second budget of log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogBudget {
    per_second: u32,
    /// The second (Unix time) the lines in `used` were written in.
    second: i64,
    used: u32,
    /// Refusals not logged since the last summary.
    suppressed: u64,
}

/// What to write for one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Write the refusal's own line.
    pub(crate) log: bool,
    /// Write a summary line first: this many refusals went unlogged before this one.
    pub(crate) suppressed_before: u64,
}

impl LogBudget {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            second: i64::MIN,
            used: 0,
            suppressed: 0,
        }
    }

    pub(crate) fn per_second(&self) -> u32 {
        self.per_second
    }

    /// One refusal at `now` (Unix seconds).
    pub(crate) fn admit(&mut self, now: i64) -> Verdict {
        let mut suppressed_before = 0;
        // A new second, or the clock went back: a fresh budget, and the summary of what the
        // previous ones left out.
        if now != self.second {
            self.second = now;
            self.used = 0;
            suppressed_before = std::mem::take(&mut self.suppressed);
        }
        let log = self.used < self.per_second;
        if log {
            self.used += 1;
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
        }
        Verdict {
            log,
            suppressed_before,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(budget: &mut LogBudget, now: i64, n: u32) -> (u32, u64) {
        let (mut logged, mut summarised) = (0, 0);
        for _ in 0..n {
            let v = budget.admit(now);
            logged += u32::from(v.log);
            summarised += v.suppressed_before;
        }
        (logged, summarised)
    }

    #[test]
    fn at_most_the_budget_is_logged_per_second_and_the_rest_is_summarised_once() {
        let mut budget = LogBudget::new(3);
        assert_eq!(run(&mut budget, 100, 1000), (3, 0));
        // The next second's first refusal carries the 997 left out, once.
        assert_eq!(
            budget.admit(101),
            Verdict {
                log: true,
                suppressed_before: 997
            }
        );
        assert_eq!(run(&mut budget, 101, 2), (2, 0));
        assert_eq!(run(&mut budget, 101, 5), (0, 0));
        // A quiet gap: the summary waits for the next refusal, whenever it comes.
        assert_eq!(run(&mut budget, 500, 1), (1, 5));
    }

    #[test]
    fn under_the_budget_every_refusal_is_logged() {
        let mut budget = LogBudget::new(10);
        for second in 0..50 {
            assert_eq!(run(&mut budget, second, 10), (10, 0));
        }
    }

    #[test]
    fn a_clock_going_back_starts_a_fresh_second() {
        let mut budget = LogBudget::new(1);
        assert_eq!(run(&mut budget, 10, 4), (1, 0));
        assert_eq!(run(&mut budget, 9, 1), (1, 3));
    }

    #[test]
    fn a_zero_budget_writes_only_summaries() {
        let mut budget = LogBudget::new(0);
        assert_eq!(run(&mut budget, 1, 7), (0, 0));
        assert_eq!(
            budget.admit(2),
            Verdict {
                log: false,
                suppressed_before: 7
            }
        );
    }
}
