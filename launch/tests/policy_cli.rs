//! `gfn export` and `gfn sample` on bad input: a missing folder or checkpoint, a truncated or
//! foreign checkpoint, an output they cannot write, and for `gfn sample` values out of range and
//! an unknown output format. Each gets one line naming the problem and exit code 2, and nothing
//! half-written is left under the output's name (an earlier file there stays as it was). What
//! the files hold is tested in `tests/tests/sample.rs` and `tests/tests/export.rs`.

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

/// `gfn export --from from --out out.safetensors`.
fn export_args(from: &Path, out: &Path) -> Vec<String> {
    let out = out.with_extension("safetensors");
    ["export", "--from", path(from), "--out", path(&out)]
        .map(String::from)
        .to_vec()
}

/// `gfn sample --from from --n 100 --out out.csv`, then `extra`.
fn sample_args(from: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let out = out.with_extension("csv");
    let mut args = [
        "sample",
        "--from",
        path(from),
        "--n",
        "100",
        "--out",
        path(&out),
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `args`: it must fail with exit code 2 and one line containing `needle`.
fn refused(args: &[String], needle: &str) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, err) = gfn(&args);
    assert_eq!(code, 2, "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: {err}");
    assert!(lines[0].contains(needle), "{args:?}: {err}");
}

/// Both commands on the same checkpoint and output (each with its own extension).
fn both_refused(from: &Path, out: &Path, needle: &str) {
    refused(&export_args(from, out), needle);
    refused(&sample_args(from, out, &[]), needle);
}

/// The names in `dir`, sorted: what a failed command must not add to.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn bad_checkpoints_values_and_unwritable_outputs_are_refused_with_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("gfn-cli-policy-{}", std::process::id()));
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
        path(&ck),
        "--run_dir",
        path(&dir.join("run")),
    ]);
    assert_eq!(code, 0, "{err}");
    let out = out_dir.join("policy");
    let earlier = ["policy.csv", "policy.safetensors"];
    // Earlier files under the names stay whole whenever a new one fails.
    for name in earlier {
        std::fs::write(out_dir.join(name), b"earlier").unwrap();
    }
    both_refused(&dir.join("missing"), &out, "missing: no such folder");
    both_refused(&out_dir, &out, "no checkpoint in this folder");
    let good = std::fs::read(checkpoint::path(&ck)).unwrap();
    std::fs::write(checkpoint::path(&ck), &good[..good.len() / 2]).unwrap();
    both_refused(&ck, &out, "checkpoint.gfnc: the checkpoint is damaged");
    std::fs::write(checkpoint::path(&ck), b"PK\x03\x04 a zip, say").unwrap();
    both_refused(&ck, &out, "checkpoint.gfnc: not a gfn checkpoint");
    std::fs::write(checkpoint::path(&ck), &good).unwrap();
    // Outputs they cannot write: a missing folder, a file for a folder, a folder in the way.
    both_refused(&ck, &dir.join("nowhere/policy"), "nowhere/policy.");
    both_refused(
        &ck,
        &out_dir.join("policy.csv/policy"),
        "policy.csv/policy.",
    );
    for ext in ["csv", "safetensors"] {
        std::fs::create_dir_all(dir.join("blocked").with_extension(ext)).unwrap();
    }
    refused(
        &export_args(&ck, &dir.join("blocked")),
        "cannot write the export",
    );
    let blocked = sample_args(&ck, &dir.join("blocked"), &[]);
    refused(&blocked, "cannot write the sample");
    // Values `gfn sample` refuses before it reads anything.
    let sample_refused = |n: &str, out: &Path, extra: &[&str], needle: &str| {
        let mut args = ["sample", "--from", path(&ck), "--n", n, "--out", path(out)].to_vec();
        args.extend(extra);
        refused(
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            needle,
        );
    };
    let csv = out_dir.join("policy.csv");
    sample_refused("0", &csv, &[], "--n must be at least 1");
    sample_refused("9", &csv, &["--temperature", "0"], "--temperature must be");
    sample_refused("9", &csv, &["--epsilon", "1.5"], "--epsilon must be");
    sample_refused("9", &csv, &["--device", "cuda"], "without CUDA support");
    let txt = out_dir.join("policy.txt");
    sample_refused("9", &txt, &[], "extension must be .csv or .npy");
    for name in earlier {
        assert_eq!(std::fs::read(out_dir.join(name)).unwrap(), b"earlier");
    }
    assert_eq!(listing(&out_dir), earlier, "no temporary file is left");
    assert!(
        !listing(&dir).iter().any(|n| n.contains("tmp")),
        "{:?}",
        listing(&dir)
    );
    // The intact checkpoint exports and samples, replacing the earlier files.
    for args in [export_args(&ck, &out), sample_args(&ck, &out, &[])] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = gfn(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    assert!(
        std::fs::read(out_dir.join("policy.safetensors"))
            .unwrap()
            .len()
            > 1000
    );
    let csv = std::fs::read_to_string(out_dir.join("policy.csv")).unwrap();
    assert_eq!(csv.lines().count(), 101, "a header and 100 rows");
    assert_eq!(listing(&out_dir), earlier);
    let _ = std::fs::remove_dir_all(&dir);
}
