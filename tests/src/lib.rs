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
