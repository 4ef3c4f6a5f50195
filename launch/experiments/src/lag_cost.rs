//! [`Claim::LagCost`](crate::claims::Claim::LagCost): what sampling `--policy_lag` versions behind
//! the learner costs in accuracy. Variants named `<loss>-lag<N>` of one environment and R0 are
//! compared with the same loss at lag 0: the final exact L1 over the seeds, whether it leaves
//! lag 0's seed range (lowest to highest seed), and how soon each lag reaches exact L1 0.1 in
//! trajectories and in wall-clock seconds.

use crate::claims::{cell, mean_sd, ConfigRuns};
use gfn_host::metrics::Validation;
use std::fmt::Write as _;

/// The exact-L1 level whose first crossing is timed.
const LEVEL: f64 = 0.1;

/// The loss and the lag of a `<loss>-lag<N>` variant.
fn loss_and_lag(variant: &str) -> Option<(&str, u64)> {
    let (loss, lag) = variant.rsplit_once("-lag")?;
    Some((loss, lag.parse().ok()?))
}

/// The first validation at or below [`LEVEL`].
fn first_at_level(run: &[Validation]) -> Option<&Validation> {
    run.iter().find(|v| v.exact_l1.is_some_and(|l| l <= LEVEL))
}

/// The final exact L1 of each seed.
fn finals(c: &ConfigRuns) -> Vec<f64> {
    c.runs
        .iter()
        .filter_map(|r| r.last()?.exact_l1)
        .filter(|l| l.is_finite())
        .collect()
}

/// Lowest and highest of `xs`.
fn range(xs: &[f64]) -> Option<(f64, f64)> {
    let lo = xs.iter().copied().reduce(f64::min)?;
    let hi = xs.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

/// Mean over seeds of a quantity taken at the first crossing of [`LEVEL`], or how many seeds
/// never crossed it.
fn at_level(c: &ConfigRuns, pick: fn(&Validation) -> f64, digits: usize) -> String {
    let xs: Vec<f64> = c
        .runs
        .iter()
        .filter_map(|r| first_at_level(r).map(pick))
        .collect();
    match c.runs.len() - xs.len() {
        0 if !xs.is_empty() => format!("{:.digits$}", mean_sd(&xs).0),
        0 => "–".into(),
        never => format!("{never} of {} never", c.runs.len()),
    }
}

/// Where the final exact L1 leaves lag 0's seed range upwards (the lags in `above`), and
/// whether larger lags come back into it (a cost that is noise at this seed count).
fn verdict(lags: &[(u64, &ConfigRuns)], above: &[u64], (lo, hi): (f64, f64)) -> String {
    let largest = lags.last().map_or(0, |(lag, _)| *lag);
    let Some(&first) = above.first() else {
        return format!(
            "The mean final exact L1 stays at or below lag 0's seed range ({lo:.4}–{hi:.4}) at every lag up to {largest}."
        );
    };
    let list: Vec<String> = above.iter().map(u64::to_string).collect();
    let back: Vec<String> = lags
        .iter()
        .filter(|(lag, _)| *lag > first && !above.contains(lag))
        .map(|(lag, _)| lag.to_string())
        .collect();
    let mut v = format!(
        "The mean final exact L1 first rises above lag 0's seed range ({lo:.4}–{hi:.4}) at lag {first} (above at lag {}).",
        list.join(", ")
    );
    if !back.is_empty() {
        v += &format!(
            " Larger lags ({}) are back within or below it: the cost does not grow with the lag at this seed count.",
            back.join(", ")
        );
    }
    v
}

/// The Markdown section: one table per environment, R0 and loss that has a lag-0 baseline.
pub fn report(configs: &[ConfigRuns]) -> String {
    let mut md = String::new();
    for base in configs.iter().filter(|c| !c.runs.is_empty()) {
        let Some((loss, 0)) = loss_and_lag(&base.variant) else {
            continue;
        };
        let Some((lo, hi)) = range(&finals(base)) else {
            continue;
        };
        let mut lags: Vec<(u64, &ConfigRuns)> = configs
            .iter()
            .filter(|c| c.env == base.env && c.r0 == base.r0 && !c.runs.is_empty())
            .filter_map(|c| match loss_and_lag(&c.variant) {
                Some((l, lag)) if l == loss => Some((lag, c)),
                _ => None,
            })
            .collect();
        lags.sort_by_key(|(lag, _)| *lag);
        let _ = writeln!(
            md,
            "\n### {loss}, {}-D H={}, R0 {}\n\n| lag | seeds | final exact L1 | seed range | mean against lag 0's range | trajectories to exact L1 ≤ {LEVEL} | wall s to exact L1 ≤ {LEVEL} | wall s |\n|---|---|---|---|---|---|---|---|",
            base.env.0, base.env.1, base.r0
        );
        let mut above = vec![];
        for &(lag, c) in &lags {
            let l1 = finals(c);
            let (mean, _) = mean_sd(&l1);
            let seeds = range(&l1);
            let against = if mean > hi {
                above.push(lag);
                match seeds {
                    Some((lowest, _)) if lowest > hi => "above (every seed)",
                    _ => "above",
                }
            } else if mean < lo {
                "below"
            } else {
                "within"
            };
            let wall: Vec<f64> = c
                .runs
                .iter()
                .filter_map(|r| Some(r.last()?.wall_s))
                .collect();
            let _ = writeln!(
                md,
                "| {lag} | {} | {} | {} | {against} | {} | {} | {:.0} |",
                c.runs.len(),
                cell(&l1),
                seeds.map_or("–".into(), |(a, b)| format!("{a:.4}–{b:.4}")),
                at_level(c, |v| v.trajectories as f64, 0),
                at_level(c, |v| v.wall_s, 1),
                mean_sd(&wall).0,
            );
        }
        let verdict = verdict(&lags, &above, (lo, hi));
        let _ = writeln!(md, "\n{verdict}");
    }
    if md.is_empty() {
        return md;
    }
    format!("\n## What policy lag costs\n\nEach batch is sampled with the weights exactly `--policy_lag` versions behind the learner step that trains on it. Final exact L1 as mean ± sd over seeds; a lag is within lag 0's range when its mean lies between lag 0's lowest and highest seed. Wall-clock times depend on what else ran on the machine.\n{md}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run whose exact L1 falls by `1 / (1 + step)` from `start`, validated at steps
    /// 0..=`steps`, 1,000 trajectories and one second apart.
    fn run(start: f64, steps: u64) -> Vec<Validation> {
        (0..=steps)
            .map(|s| Validation {
                step: s,
                trajectories: 1000 * s,
                wall_s: s as f64,
                exact_l1: Some(start / (1.0 + s as f64)),
                ..Validation::default()
            })
            .collect()
    }

    fn config(variant: &str, starts: &[f64]) -> ConfigRuns {
        ConfigRuns {
            env: (4, 8),
            r0: 0.01,
            variant: variant.into(),
            runs: starts.iter().map(|&s| run(s, 9)).collect(),
        }
    }

    #[test]
    fn a_lag_above_the_baseline_range_is_named() {
        // Lag 0 ends at 0.10–0.12 (starts 1.0–1.2 over 10), lag 1 within, lag 2 below, lag 4
        // above with every seed, lag 8 back within.
        let md = report(&[
            config("TB-lag0", &[1.0, 1.1, 1.2]),
            config("TB-lag1", &[1.05, 1.15]),
            config("TB-lag2", &[0.5]),
            config("TB-lag4", &[2.0, 2.2]),
            config("TB-lag8", &[1.1]),
            config("DB-lag2", &[1.0]),
        ]);
        assert!(md.contains("### TB, 4-D H=8"), "{md}");
        assert!(
            md.contains(
                "first rises above lag 0's seed range (0.1000–0.1200) at lag 4 (above at lag 4)"
            ),
            "{md}"
        );
        assert!(md.contains("Larger lags (8) are back within"), "{md}");
        assert!(
            md.contains("| 0.2000–0.2200 | above (every seed) |"),
            "{md}"
        );
        assert!(md.contains("| 0.0500 | 0.0500–0.0500 | below |"), "{md}");
        // DB has no lag-0 baseline: no table.
        assert!(!md.contains("### DB"), "{md}");
        // Lag 0 crosses 0.1 at step 9 (1.0/10) for one seed only: two never do.
        assert!(md.contains("| 0 | 3 |"), "{md}");
        assert!(md.contains("2 of 3 never"), "{md}");
    }

    #[test]
    fn lags_within_the_range_say_so() {
        let md = report(&[config("DB-lag0", &[0.5, 0.7]), config("DB-lag8", &[0.6])]);
        assert!(
            md.contains(
                "stays at or below lag 0's seed range (0.0500–0.0700) at every lag up to 8"
            ),
            "{md}"
        );
        // Both baseline seeds reach 0.1: at steps 4 and 6, so 5,000 trajectories and 5.0 s on average.
        assert!(md.contains("| 0 | 2 | "), "{md}");
        assert!(md.contains("| 5000 | 5.0 |"), "{md}");
    }

    #[test]
    fn variant_names_parse() {
        assert_eq!(loss_and_lag("TB-lag16"), Some(("TB", 16)));
        assert_eq!(
            loss_and_lag("SubTB-uniform_pb-lag2"),
            Some(("SubTB-uniform_pb", 2))
        );
        assert_eq!(loss_and_lag("TB"), None);
        assert_eq!(loss_and_lag("TB-lagx"), None);
    }
}
