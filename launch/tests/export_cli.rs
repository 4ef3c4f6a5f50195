//! `gfn export` on bad input: a missing folder or checkpoint, a truncated or foreign checkpoint,
//! an output it cannot write. Each gets one line naming the path and exit code 2, and nothing
//! half-written is left under the output's name (an earlier file there stays as it was). The
//! loader's agreement with gfn is tested in `tests/tests/export.rs` (`--features python`).

use gfn_host::checkpoint;
use std::path::Path;
use std::process::Command;

fn gfn(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gfn"))
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

/// Exports `from` to `out`: it must fail with exit code 2 and one line containing `needle`.
fn refused(from: &Path, out: &Path, needle: &str) {
    let args = [
        "export",
        "--from",
        from.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, err) = gfn(&args);
    assert_eq!(code, 2, "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: {err}");
    assert!(lines[0].contains(needle), "{args:?}: {err}");
}

/// The names in `dir`, sorted: what a failed export must not add to.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn bad_checkpoints_and_unwritable_outputs_are_refused_with_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("gfn-cli-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (ck, out_dir) = (dir.join("ck"), dir.join("out"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let (code, err) = gfn(&[
        "train",
        "--quiet",
        "--n_trajectories",
        "320",
        "--hidden_dim",
        "16",
        "--checkpoint_every",
        "10",
        "--checkpoint_dir",
        ck.to_str().unwrap(),
        "--run_dir",
        dir.join("run").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let out = out_dir.join("policy.safetensors");
    // An earlier export under the name stays whole whenever a new one fails.
    std::fs::write(&out, b"earlier").unwrap();
    refused(&dir.join("missing"), &out, "missing: no such folder");
    refused(&out_dir, &out, "no checkpoint in this folder");
    let good = std::fs::read(checkpoint::path(&ck)).unwrap();
    std::fs::write(checkpoint::path(&ck), &good[..good.len() / 2]).unwrap();
    refused(&ck, &out, "checkpoint.gfnc: the checkpoint is damaged");
    std::fs::write(checkpoint::path(&ck), b"PK\x03\x04 a zip, say").unwrap();
    refused(&ck, &out, "checkpoint.gfnc: not a gfn checkpoint");
    std::fs::write(checkpoint::path(&ck), &good).unwrap();
    // Outputs it cannot write: a missing folder, a file for a folder, a folder in the way.
    refused(
        &ck,
        &dir.join("nowhere/policy.safetensors"),
        "nowhere/policy.safetensors",
    );
    refused(
        &ck,
        &out.join("policy.safetensors"),
        "policy.safetensors/policy.safetensors",
    );
    refused(&ck, &dir.join("run"), "run: cannot write the export");
    assert_eq!(std::fs::read(&out).unwrap(), b"earlier");
    assert_eq!(
        listing(&out_dir),
        ["policy.safetensors"],
        "no temporary file is left"
    );
    assert!(
        !listing(&dir).iter().any(|n| n.contains("tmp")),
        "{:?}",
        listing(&dir)
    );
    // The intact checkpoint exports, replacing the earlier file.
    let args = [
        "export",
        "--from",
        ck.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, err) = gfn(&args);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&out).unwrap().len() > 1000);
    assert_eq!(listing(&out_dir), ["policy.safetensors"]);
    let _ = std::fs::remove_dir_all(&dir);
}
