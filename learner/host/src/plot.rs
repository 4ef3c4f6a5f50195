//! PNG plots of a run: distances and logZ error against trajectories, the loss, and for 2-D
//! grids the learned terminal distribution beside the true one.

use crate::error::{Error, Result};
use crate::metrics::Validation;
use crate::validate::Validator;
use gfn_common::RunConfig;
use gfn_nn::backend::{cpu_device, Cpu};
use gfn_nn::GflowNet;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

/// Line colours that read well on white.
const PALETTE: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(0, 0, 0),
];

/// Makes the bundled DejaVu Sans the plots' font (no system fonts needed).
fn register_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSans.ttf"),
        );
    });
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Plot {
        what: "a chart".into(),
        message: e.to_string(),
    }
}

/// A line of a chart, with an optional band around it (the spread over seeds).
pub struct Series {
    pub name: String,
    pub line: Vec<(f64, f64)>,
    /// `(x, low, high)`.
    pub band: Vec<(f64, f64, f64)>,
}

impl Series {
    /// A line from `[x, mean, low, high]` points, the band from low to high.
    pub fn spread(name: &str, points: &[[f64; 4]]) -> Self {
        Self {
            name: name.to_owned(),
            line: points.iter().map(|p| (p[0], p[1])).collect(),
            band: points.iter().map(|p| (p[0], p[2], p[3])).collect(),
        }
    }
}

/// A line chart with a logarithmic y axis; series with no positive point are skipped.
pub fn log_lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    let series: Vec<Series> = series
        .iter()
        .map(|(name, line)| Series {
            name: name.to_string(),
            line: line.clone(),
            band: vec![],
        })
        .collect();
    log_bands(path, title, x_label, y_label, &series)
}

/// [`log_lines`] with each series' band shaded in its colour.
pub fn log_bands(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    register_font();
    let positive = |y: f64| y > 0.0 && y.is_finite();
    let points = series.iter().flat_map(|s| {
        let band = s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]);
        s.line.iter().copied().chain(band)
    });
    let (mut x_max, mut y_lo, mut y_hi) = (1.0f64, f64::INFINITY, 0.0f64);
    for (x, y) in points.filter(|p| positive(p.1)) {
        x_max = x_max.max(x);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    if !y_lo.is_finite() {
        return Ok(());
    }
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max * 1.02, (y_lo * 0.8..y_hi * 1.25).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| {
            if *v >= 0.01 {
                format!("{v:.2}")
            } else {
                format!("{v:.0e}")
            }
        })
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()].to_rgba();
        // The band's lower edge is clamped into the chart (a log axis has no zero).
        let upper = s.band.iter().map(|&(x, _, hi)| (x, hi.max(y_lo)));
        let lower = s.band.iter().rev().map(|&(x, lo, _)| (x, lo.max(y_lo)));
        let outline: Vec<(f64, f64)> = upper.chain(lower).filter(|p| p.1.is_finite()).collect();
        if outline.len() > 2 {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.18).filled(),
                )))
                .map_err(err)?;
        }
        let pts: Vec<_> = s.line.iter().copied().filter(|p| positive(p.1)).collect();
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Two heatmaps of a 2-D grid side by side (same colour scale).
pub fn heatmaps(
    path: &Path,
    height: usize,
    left: (&str, &[f64]),
    right: (&str, &[f64]),
) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (1140, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (maps, scale) = root.split_horizontally(1000);
    let max = left
        .1
        .iter()
        .chain(right.1)
        .cloned()
        .fold(0.0, f64::max)
        .max(1e-12);
    let panels = maps.split_evenly((1, 2));
    for (area, (name, probs)) in panels.iter().zip([left, right]) {
        let mut chart = ChartBuilder::on(area)
            .caption(name, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(40)
            .build_cartesian_2d(0..height as i32, 0..height as i32)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x1 (cell)")
            .y_desc("x0 (cell)")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(
                (0..height)
                    .flat_map(|i| (0..height).map(move |j| (i, j)))
                    .map(|(i, j)| {
                        let c = colour(probs[i * height + j] / max);
                        Rectangle::new(
                            [(j as i32, i as i32), (j as i32 + 1, i as i32 + 1)],
                            c.filled(),
                        )
                    }),
            )
            .map_err(err)?;
    }
    colour_bar(&scale, max)?;
    root.present().map_err(err)
}

/// The heatmaps' colour of a probability, as a fraction of the largest: dark blue (0) to
/// yellow (1).
fn colour(v: f64) -> HSLColor {
    HSLColor(0.67 - 0.5 * v, 0.85, 0.15 + 0.45 * v)
}

/// The colour scale beside the heatmaps, from 0 to `max` (a probability).
fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    max: f64,
) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(46)
        .margin_left(4)
        .margin_right(30)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..1f64, 0f64..max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        // Trailing spaces keep the last digit clear of the bar (the font's measured width
        // falls a little short).
        .y_label_formatter(&|v| match max >= 0.01 {
            true => format!("{v:.3}  "),
            false => format!("{v:.1e}  "),
        })
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    let steps = 64;
    chart
        .draw_series((0..steps).map(|k| {
            let (a, b) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
            Rectangle::new([(0.0, a * max), (1.0, b * max)], colour(a).filled())
        }))
        .map_err(err)?;
    Ok(())
}

/// Writes `curves.png`, `loss.png` and, for 2-D grids, `heatmap.png` into the run folder.
pub fn write_run_plots(
    cfg: &RunConfig,
    validations: &[Validation],
    losses: &[f32],
    net: &GflowNet<Cpu>,
    validator: &Validator,
) -> Result<()> {
    let dir = &cfg.run_dir;
    let by_traj = |f: fn(&Validation) -> Option<f64>| -> Vec<(f64, f64)> {
        validations
            .iter()
            .filter_map(|v| f(v).map(|y| (v.trajectories as f64, y)))
            .collect()
    };
    let title = format!(
        "{} on {}-D H={} R0={}",
        cfg.loss,
        cfg.ndim,
        cfg.height,
        cfg.env().r0
    );
    log_lines(
        &dir.join("curves.png"),
        &title,
        "trajectories sampled",
        "distance / error",
        &[
            ("exact L1 (sum)", by_traj(|v| v.exact_l1)),
            ("sampled L1 (sum)", by_traj(|v| v.sampled_l1)),
            ("paper L1 (mean over states)", by_traj(|v| v.paper_l1)),
            ("|logZ - logZ*|", by_traj(|v| v.log_z_error)),
        ],
    )?;
    let stride = (losses.len() / 2000).max(1);
    let loss_pts: Vec<(f64, f64)> = losses
        .chunks(stride)
        .enumerate()
        .map(|(i, c)| {
            (
                (i * stride) as f64,
                c.iter().map(|&l| l as f64).sum::<f64>() / c.len() as f64,
            )
        })
        .collect();
    log_lines(
        &dir.join("loss.png"),
        &format!("{title}: loss"),
        "learner step",
        "loss",
        &[("loss", loss_pts)],
    )?;
    if cfg.ndim == 2 {
        if let (Some(target), Some(p_t)) = (
            validator.target(),
            validator.exact_distribution(net, &cpu_device()),
        ) {
            heatmaps(
                &dir.join("heatmap.png"),
                cfg.height,
                ("true distribution R(x)/Z", &target.probs),
                ("learned terminal distribution (exact)", &p_t),
            )?;
        }
    }
    Ok(())
}
