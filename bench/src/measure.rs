// SPDX-License-Identifier: GPL-2.0

//! Timing harness, statistics and a small deterministic random-number generator.
//!
//! A benchmark is a closure that performs `n` exchanges, made by its case's setup.
//! [`Timer::run_fresh`] calibrates `n` for each case so that one repetition lasts about
//! [`Timer::rep`] (the calibration doubles as warm-up), then times [`Timer::reps`]
//! repetitions of every case, each on a fresh setup, taking turns, and reports nanoseconds
//! per exchange.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long and how often every case is measured.
#[derive(Clone, Copy, Debug)]
pub struct Timer {
    /// Target duration of one repetition.
    pub rep: Duration,
    /// Number of timed repetitions.
    pub reps: usize,
}

/// The result of timing one case.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Exchanges per repetition.
    pub iters: u64,
    /// Nanoseconds per exchange of each repetition, in run order.
    pub ns: Vec<f64>,
}

impl Sample {
    /// Median nanoseconds per exchange.
    pub fn median(&self) -> f64 {
        median(&self.ns)
    }

    /// Smallest nanoseconds per exchange over the repetitions.
    pub fn min(&self) -> f64 {
        self.ns.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// Largest nanoseconds per exchange over the repetitions.
    pub fn max(&self) -> f64 {
        self.ns.iter().copied().fold(0.0, f64::max)
    }

    /// JSON fields shared by every timed case.
    pub fn json(&self) -> Value {
        json!({
            "ns_median": round(self.median()),
            "ns_min": round(self.min()),
            "ns_max": round(self.max()),
            "ns_reps": self.ns.iter().map(|&v| round(v)).collect::<Vec<_>>(),
            "iters_per_rep": self.iters,
        })
    }
}

/// A benchmark body: performs `n` exchanges.
pub type Body<'a> = Box<dyn FnMut(u64) -> Result<(), String> + 'a>;

/// A case's setup: opens what the case needs (descriptors, buffers) and returns its body.
pub type Setup<'a> = Box<dyn Fn() -> Result<Body<'a>, String> + 'a>;

impl Timer {
    /// Times `cases`, given as `(name, setup)`, as described in the module docs. Repetitions
    /// take turns (all first repetitions, then all second ones, ...) so that a change in the
    /// host's load affects the cases alike and their ratios stay meaningful (see
    /// [`paired_ratio`]). Every repetition runs on a fresh setup, after a short untimed
    /// warm-up.
    ///
    /// Under TCG a case's speed depends on where its kernel objects and user buffers happen
    /// to lie: QEMU's software TLB is direct-mapped, so two pages of an exchange that share
    /// an index evict each other on every exchange, and an unlucky setup runs far slower than
    /// the others (docs/results.md, 2026-11-27); with a single setup per run, whole runs came
    /// out biased by one case's placement. Every setup is kept until the
    /// end, so that each repetition gets new objects and buffers rather than the freed ones
    /// back, and the median is taken over placements.
    pub fn run_fresh<'a>(&self, cases: &[(&str, Setup<'a>)]) -> Result<Vec<Sample>, String> {
        let mut kept = Vec::with_capacity(cases.len() * (self.reps + 1));
        let mut samples = Vec::with_capacity(cases.len());
        for (name, setup) in cases {
            let mut body = setup().map_err(|e| format!("{name}: {e}"))?;
            samples.push(Sample {
                iters: self.calibrate(&mut body)?,
                ns: Vec::with_capacity(self.reps),
            });
            kept.push(body);
        }
        for _ in 0..self.reps {
            for ((name, setup), sample) in cases.iter().zip(&mut samples) {
                let mut body = setup().map_err(|e| format!("{name}: {e}"))?;
                body((sample.iters / 16).max(1))?;
                let t = Instant::now();
                body(sample.iters)?;
                sample
                    .ns
                    .push(t.elapsed().as_nanos() as f64 / sample.iters as f64);
                kept.push(body);
            }
        }
        Ok(samples)
    }

    /// Exchanges per repetition for `body` (doubling runs until one lasts an eighth of a
    /// repetition; they double as warm-up).
    fn calibrate(&self, body: &mut Body) -> Result<u64, String> {
        let mut n = 1u64;
        let calibrate = self.rep / 8;
        loop {
            let t = Instant::now();
            body(n)?;
            let took = t.elapsed();
            if took >= calibrate || n >= 1 << 40 {
                let per = took.as_secs_f64() / n as f64;
                return Ok(((self.rep.as_secs_f64() / per.max(1e-12)) as u64).max(1));
            }
            n *= 2;
        }
    }
}

/// Median of `values` (mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Median over the repetitions of `a`'s time divided by `b`'s time in the same turn, rounded
/// to three decimals: for samples from one [`Timer::run_fresh`] call, whose repetitions
/// ran side by side, this ratio is far steadier than the ratio of the medians when the
/// host's load drifts.
pub fn paired_ratio(a: &Sample, b: &Sample) -> f64 {
    let ratios: Vec<f64> = a.ns.iter().zip(&b.ns).map(|(x, y)| x / y).collect();
    (median(&ratios) * 1000.0).round() / 1000.0
}

/// Median over the repetitions of `a`'s time minus `b`'s time in the same turn (nanoseconds
/// per exchange), for samples from one [`Timer::run_fresh`] call.
pub fn paired_difference(a: &Sample, b: &Sample) -> f64 {
    let differences: Vec<f64> = a.ns.iter().zip(&b.ns).map(|(x, y)| x - y).collect();
    median(&differences)
}

/// `value` rounded to one decimal, for JSON.
pub fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// `a / b` rounded to three decimals, for ratios.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        return 0.0;
    }
    ((a / b) * 1000.0).round() / 1000.0
}
