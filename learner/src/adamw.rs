//! AdamW over one flat parameter vector (PyTorch's `torch.optim.AdamW` update), with parameter
//! groups as ranges. Flat state makes the update one fused pass, and makes gradient all-reduce,
//! weight publication and checkpoints plain vector operations.

use gfn_common::Damaged;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A range of the flat vector with its own learning rate and weight decay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamGroup {
    pub range: Range<usize>,
    pub lr: f64,
    pub weight_decay: f64,
}

/// AdamW state: first and second moments and the step count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlatAdamW {
    pub groups: Vec<ParamGroup>,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub t: u64,
}

impl FlatAdamW {
    /// Zero moments for `n` parameters; betas (0.9, 0.999), ε 1e-8 as in PyTorch.
    pub fn new(n: usize, groups: Vec<ParamGroup>) -> Self {
        Self {
            groups,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// Checks a restored state against `n` parameters: moment lengths and group ranges.
    pub fn check(&self, n: usize) -> Result<(), Damaged> {
        if self.m.len() != n || self.v.len() != n {
            return Err(Damaged(format!(
                "optimizer moments of {} and {} values for {n} parameters",
                self.m.len(),
                self.v.len()
            )));
        }
        match self
            .groups
            .iter()
            .find(|g| g.range.start > g.range.end || g.range.end > n)
        {
            Some(g) => Err(Damaged(format!(
                "optimizer group {:?} outside {n} parameters",
                g.range
            ))),
            None => Ok(()),
        }
    }

    /// One step: `θ ← θ(1 − lr·wd) − lr·m̂/(√v̂ + ε)`, with every group's lr times `lr_scale`
    /// (the schedule's multiplier, 1 for a constant rate).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr_scale: f64) {
        self.t += 1;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let bc1 = 1.0 - self.beta1.powi(self.t as i32);
        let bc2 = 1.0 - self.beta2.powi(self.t as i32);
        for g in &self.groups {
            let lr = g.lr * lr_scale;
            let step = (lr / bc1) as f32;
            let decay = (1.0 - lr * g.weight_decay) as f32;
            let inv_bc2 = (1.0 / bc2) as f32;
            let eps = self.eps as f32;
            let r = g.range.clone();
            let (p, m, v) = (
                &mut params[r.clone()],
                &mut self.m[r.clone()],
                &mut self.v[r.clone()],
            );
            for (((p, m), v), &g) in p
                .iter_mut()
                .zip(m.iter_mut())
                .zip(v.iter_mut())
                .zip(&grads[r])
            {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p = *p * decay - step * *m / ((*v * inv_bc2).sqrt() + eps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_adamw_step() {
        let mut opt = FlatAdamW::new(
            2,
            vec![
                ParamGroup {
                    range: 0..1,
                    lr: 0.1,
                    weight_decay: 0.5,
                },
                ParamGroup {
                    range: 1..2,
                    lr: 0.01,
                    weight_decay: 0.0,
                },
            ],
        );
        let mut p = vec![1.0f32, -2.0];
        opt.step(&mut p, &[0.5, 3.0], 1.0);
        // First step: m̂ = g, v̂ = g², so the update is lr·sign(g) (up to ε), after decay.
        assert!((p[0] - (1.0 * (1.0 - 0.05) - 0.1)).abs() < 1e-6, "{}", p[0]);
        assert!((p[1] - (-2.0 - 0.01)).abs() < 1e-6, "{}", p[1]);
        opt.step(&mut p, &[0.5, 3.0], 1.0);
        assert_eq!(opt.t, 2);
        // A constant gradient keeps m̂/√v̂ = 1.
        assert!((p[1] - (-2.0 - 0.02)).abs() < 1e-5, "{}", p[1]);
        // A scaled step moves by the scaled rate, decay included.
        let before = p[0];
        opt.step(&mut p, &[0.5, 3.0], 0.5);
        assert!(
            (p[0] - (before * (1.0 - 0.025) - 0.05)).abs() < 1e-5,
            "{}",
            p[0]
        );
        assert!(opt.check(2).is_ok());
        assert!(opt.check(3).unwrap_err().0.contains("moments"));
        opt.groups[1].range = 1..5;
        assert!(opt.check(2).unwrap_err().0.contains("outside"));
    }
}
