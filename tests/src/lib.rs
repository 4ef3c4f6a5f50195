//! Cross-role and cross-process integration tests of gfn (see `tests/`), and their helpers.

use std::path::{Path, PathBuf};

/// The `gfn` binary cargo built next to the running test (`cargo test --workspace` builds it).
pub fn gfn_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("gfn"))
        .unwrap_or_default();
    assert!(
        bin.exists(),
        "build the gfn binary first (cargo test --workspace builds it): {}",
        bin.display()
    );
    bin
}

/// The validations of a run's `metrics.jsonl` in `dir`, and its summary once written. Lines that
/// do not parse (one being written) are skipped.
pub fn read_metrics(dir: &Path) -> (Vec<serde_json::Value>, Option<serde_json::Value>) {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let validations = lines
        .iter()
        .filter_map(|l| l.get("validation").cloned())
        .collect();
    let summary = lines.iter().find_map(|l| l.get("summary").cloned());
    (validations, summary)
}
