//! `gfn export`: a checkpoint's estimators (PF, and PB, logF and logZ where the run has them) as
//! one safetensors file, with the architecture, preprocessor, grid and reward in its metadata,
//! so that other tools (`python/gfn_policy.py`) can evaluate the policy without gfn.
//!
//! The layout is documented in `docs/export.md`; [`FORMAT_VERSION`] changes whenever it does.
//! Weights are stored in PyTorch's `nn.Linear` convention (`weight` is `[out, in]`), so the
//! file reads like a state dict; tables keep gfn's layout (one row per state).

use crate::saved::{self, SavedError};
use gfn_common::RunConfig;
use gfn_host::checkpoint::Checkpoint;
use gfn_nn::backend::{cpu_device, Cpu};
use gfn_nn::burn::module::Param;
use gfn_nn::burn::tensor::Tensor;
use gfn_nn::layer::Layer;
use gfn_nn::net::{Estimator, GflowNet, NetConfig, Trunk, LEAKY_RELU_SLOPE};
use gfn_nn::params;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The `format` metadata value: what a reader checks before anything else.
pub const FORMAT: &str = "gfn-policy";
/// The layout's version (`format_version`): readers refuse versions they do not know.
pub const FORMAT_VERSION: &str = "1";

/// Why an export failed. Everything but an encoding failure is the user's input at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Saved(#[from] SavedError),
    /// The output cannot be written (a missing or read-only folder, a full disk, a folder in
    /// the way). The cause is not a `source`, so that `{:#}` prints it once.
    #[error("{}: cannot write the export: {cause}", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("encoding the safetensors file: {0}")]
    Encode(String),
}

impl ExportError {
    /// Whether the user's input is at fault (exit code 2): everything but a failure to encode.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Saved(e) => e.is_bad_input(),
            Self::Encode(_) => false,
            Self::Write { .. } => true,
        }
    }
}

/// One tensor of the file: row-major `f32` values of `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The checkpoint's step: the weights' version.
    pub step: u64,
    pub tensors: Vec<String>,
}

/// Exports the checkpoint in `from` (a `--checkpoint_dir`) to `out`. The file is written beside
/// `out` under a temporary name and renamed, so `out` is either the whole export or untouched.
pub fn export(from: &Path, out: &Path) -> Result<Exported, ExportError> {
    let ck = saved::read(from)?;
    let net = rebuild(&ck, from)?;
    let tensors = tensors(&net);
    let meta = metadata(&ck, &net)?;
    let bytes = encode(&tensors, meta)?;
    saved::write_atomic(out, &bytes).map_err(|cause| ExportError::Write {
        path: out.to_owned(),
        cause,
    })?;
    Ok(Exported {
        step: ck.step,
        tensors: tensors.into_iter().map(|t| t.name).collect(),
    })
}

/// The checkpoint's network with its parameters.
pub fn rebuild(ck: &Checkpoint, dir: &Path) -> Result<GflowNet<Cpu>, SavedError> {
    let grid = ck.config.grid().map_err(|e| SavedError::unusable(dir, e))?;
    let shape = NetConfig::new(&ck.config.model(), &grid);
    // The initial values are overwritten at once: any seed will do.
    let net = GflowNet::new(&shape, &mut SmallRng::seed_from_u64(0), &cpu_device());
    params::load(net, &ck.params).map_err(|e| SavedError::unusable(dir, e))
}

/// Every parameter of `net` under its documented name (`docs/export.md`), in a fixed order.
pub fn tensors(net: &GflowNet<Cpu>) -> Vec<Named> {
    let mut out = Vec::new();
    if let Some(shared) = &net.shared {
        trunk_tensors("shared", shared, &mut out);
    }
    estimator_tensors("pf", &net.pf, net.tabular, &mut out);
    if let Some(pb) = &net.pb {
        estimator_tensors("pb", pb, net.tabular, &mut out);
    }
    if let Some(logf) = &net.logf {
        estimator_tensors("logf", logf, net.tabular, &mut out);
    }
    if let Some(log_z) = &net.log_z {
        out.push(vector("log_z", log_z));
    }
    out
}

/// An estimator's tensors: `PREFIX.trunk.I.*` and `PREFIX.head.*`, or for tables
/// `PREFIX.table` `[states, outputs]` and `PREFIX.table_bias` (gfn adds the bias to the row).
fn estimator_tensors(prefix: &str, e: &Estimator<Cpu>, tabular: bool, out: &mut Vec<Named>) {
    if tabular {
        out.push(matrix(&format!("{prefix}.table"), &e.head.weight, false));
        out.push(vector(&format!("{prefix}.table_bias"), &e.head.bias));
        return;
    }
    if let Some(trunk) = &e.trunk {
        trunk_tensors(&format!("{prefix}.trunk"), trunk, out);
    }
    layer_tensors(&format!("{prefix}.head"), &e.head, out);
}

fn trunk_tensors(prefix: &str, trunk: &Trunk<Cpu>, out: &mut Vec<Named>) {
    for (i, layer) in trunk.layers.iter().enumerate() {
        layer_tensors(&format!("{prefix}.{i}"), layer, out);
    }
}

/// `weight` `[out, in]` and `bias`, and a noisy layer's `sigma_weight` and `sigma_bias` (the
/// scale of its noise; gfn's exact metrics, and the loader, use the mean weights).
fn layer_tensors(prefix: &str, layer: &Layer<Cpu>, out: &mut Vec<Named>) {
    out.push(matrix(&format!("{prefix}.weight"), &layer.weight, true));
    out.push(vector(&format!("{prefix}.bias"), &layer.bias));
    if let (Some(sw), Some(sb)) = (&layer.sigma_weight, &layer.sigma_bias) {
        out.push(matrix(&format!("{prefix}.sigma_weight"), sw, true));
        out.push(vector(&format!("{prefix}.sigma_bias"), sb));
    }
}

/// A `[rows, cols]` parameter, transposed to `[cols, rows]` when `transpose` (gfn's layers hold
/// `[in, out]`; PyTorch's `nn.Linear` holds `[out, in]`).
fn matrix(name: &str, p: &Param<Tensor<Cpu, 2>>, transpose: bool) -> Named {
    let t = if transpose {
        p.val().transpose()
    } else {
        p.val()
    };
    Named {
        name: name.to_string(),
        shape: t.dims().to_vec(),
        values: host_values(t.into_data()),
    }
}

fn vector(name: &str, p: &Param<Tensor<Cpu, 1>>) -> Named {
    let t = p.val();
    Named {
        name: name.to_string(),
        shape: t.dims().to_vec(),
        values: host_values(t.into_data()),
    }
}

/// The values of a tensor, row-major (a transposed view is laid out anew by the conversion).
fn host_values(data: gfn_nn::burn::tensor::TensorData) -> Vec<f32> {
    data.convert::<f32>().to_vec::<f32>().unwrap_or_default()
}

/// The metadata (string to string, as safetensors requires): what a reader needs to rebuild
/// the networks and encode states, the checkpoint's step, and the whole config as TOML.
pub fn metadata(
    ck: &Checkpoint,
    net: &GflowNet<Cpu>,
) -> Result<HashMap<String, String>, ExportError> {
    let cfg: &RunConfig = &ck.config;
    let model = cfg.model();
    let env = cfg.env();
    let slope = match model.activation {
        gfn_common::Activation::Relu => 0.0,
        gfn_common::Activation::LeakyRelu => LEAKY_RELU_SLOPE,
    };
    let toml = cfg
        .to_toml()
        .map_err(|e| ExportError::Encode(e.to_string()))?;
    let pairs: Vec<(&str, String)> = vec![
        ("format", FORMAT.into()),
        ("format_version", FORMAT_VERSION.into()),
        ("gfn_version", env!("CARGO_PKG_VERSION").into()),
        ("weight_layout", "out_in".into()),
        ("ndim", cfg.ndim.to_string()),
        ("height", cfg.height.to_string()),
        ("reward", cfg.reward.to_string()),
        ("R0", env.r0.to_string()),
        ("R1", env.r1.to_string()),
        ("R2", env.r2.to_string()),
        ("preprocessor", model.preprocessor.to_string()),
        ("loss", model.loss.to_string()),
        ("hidden_dim", model.hidden_dim.to_string()),
        ("n_hidden", model.n_hidden.to_string()),
        ("activation", model.activation.to_string()),
        ("leaky_relu_slope", slope.to_string()),
        ("tied", model.tied.to_string()),
        ("uniform_pb", model.uniform_pb.to_string()),
        ("tabular", model.tabular.to_string()),
        ("n_noisy_layers", model.n_noisy_layers.to_string()),
        ("noisy_std_init", model.noisy_std_init.to_string()),
        ("has_pb", net.pb.is_some().to_string()),
        ("has_logf", net.logf.is_some().to_string()),
        ("has_log_z", net.log_z.is_some().to_string()),
        ("masked_logit", gfn_nn::policy::MASKED_LOGIT.to_string()),
        ("step", ck.step.to_string()),
        ("config", toml),
    ];
    Ok(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The whole file in memory: the networks are small (MBs), and a buffer lets the write be one
/// atomic rename.
fn encode(tensors: &[Named], meta: HashMap<String, String>) -> Result<Vec<u8>, ExportError> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| ExportError::Encode(format!("{}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, Some(meta)).map_err(|e| ExportError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_weights_are_stored_out_by_in() {
        let cfg = RunConfig {
            n_hidden: 1,
            hidden_dim: 3,
            ..RunConfig::default()
        };
        let grid = cfg.grid().unwrap();
        let shape = NetConfig::new(&cfg.model(), &grid);
        let net = GflowNet::new(&shape, &mut SmallRng::seed_from_u64(1), &cpu_device());
        let named = tensors(&net);
        let find = |n: &str| named.iter().find(|t| t.name == n).unwrap();
        let w = find("pf.trunk.0.weight");
        assert_eq!(w.shape, [3, 16]);
        let gfn_w = host_values(
            net.pf.trunk.as_ref().unwrap().layers[0]
                .weight
                .val()
                .into_data(),
        );
        // gfn's [in, out] element (i, o) is the export's (o, i).
        assert_eq!(w.values[2 * 16 + 5], gfn_w[5 * 3 + 2]);
        assert_eq!(find("pf.head.weight").shape, [3, 3]);
        assert_eq!(find("pb.head.weight").shape, [2, 3]);
        assert_eq!(find("log_z").shape, [1]);
        let total: usize = named.iter().map(|t| t.values.len()).sum();
        assert_eq!(
            total,
            params::flatten(&net).len(),
            "every parameter is exported"
        );
    }
}
