//! `gfn reproduce tb-paper --budget 0.02`: the reduced TB-paper grid runs end to end and writes
//! the table and every plot; the table's numbers parse, and every run learned.

use std::process::Command;

#[test]
fn the_reduced_tb_paper_grid_writes_its_table_and_plots() {
    let out = std::env::temp_dir().join(format!("gfn-reproduce-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reproduce = |extra: &[&str]| {
        Command::new(gfn_tests::gfn_binary())
            .current_dir(&root)
            .args([
                "reproduce",
                "tb-paper",
                "--budget",
                "0.02",
                "--seeds",
                "1",
                "--out",
            ])
            .arg(&out)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    };
    let status = reproduce(&["--jobs", "2"]);
    assert!(status.success());
    let table = std::fs::read_to_string(out.join("results.md")).unwrap();
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| 4d-") || l.starts_with("| 2d-"))
        .collect();
    assert_eq!(rows.len(), 30, "2 environments × 3 R0 × 5 variants");
    for row in &rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2], "1", "one seed: {row}");
        let exact_l1: f64 = cells[3]
            .parse()
            .unwrap_or_else(|_| panic!("exact L1 of {row}"));
        learned(&out, cells[1], exact_l1);
        let wall: f64 = cells[cells.len() - 2].parse().unwrap();
        assert!(wall.is_finite() && wall > 0.0);
    }
    // The TB paper's ordering gets a verdict for each environment, R0 and backward policy.
    let verdicts = table
        .lines()
        .filter(|l| l.starts_with("- ") && (l.ends_with("holds") || l.contains("does not hold")))
        .count();
    assert_eq!(
        verdicts, 36,
        "2 environments × 3 R0 × learned and uniform PB × 3 budget points"
    );
    // Learned against uniform PB gets a verdict for each environment, R0 and loss (TB, DB).
    let pb_rows = table
        .lines()
        .filter(|l| l.starts_with("| 4-D H=8 |") || l.starts_with("| 2-D H=64 |"))
        .filter(|l| l.ends_with("| holds |") || l.ends_with("| does not hold |"))
        .count();
    assert_eq!(pb_rows, 12, "2 environments × 3 R0 × TB and DB");
    for env in ["4d-h8", "2d-h64"] {
        for r0 in ["0.1", "0.01", "0.001"] {
            for kind in ["l1", "modes"] {
                let png = std::fs::read(out.join(format!("{kind}-{env}-r0_{r0}.png"))).unwrap();
                assert!(
                    png.starts_with(b"\x89PNG") && png.len() > 5_000,
                    "{kind}-{env}-r0_{r0}.png"
                );
            }
        }
    }
    let heatmap = out
        .join("2d-h64-r0_0.1-TB")
        .join("seed0")
        .join("heatmap.png");
    assert!(std::fs::read(heatmap).unwrap().starts_with(b"\x89PNG"));
    // Finished runs are not rerun: a second call only rewrites the results.
    let again = std::time::Instant::now();
    let status = reproduce(&[]);
    assert!(status.success() && again.elapsed().as_secs() < 20);
}

/// A campaign stopped mid-run (SIGTERM, as at a Slurm time limit) resumes that run from its
/// checkpoint when the same command runs again, and `--only` limits it to the runs named.
#[test]
fn an_interrupted_campaign_resumes_its_run_from_a_checkpoint() {
    let out = std::env::temp_dir().join(format!("gfn-campaign-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let campaign = || {
        let mut c = Command::new(gfn_tests::gfn_binary());
        c.current_dir(&root)
            .args(["reproduce", "tb-paper", "--budget", "0.05", "--seeds", "1"])
            .args(["--only", "4d-h8-r0_0.1-TB/", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let run = out.join("4d-h8-r0_0.1-TB").join("seed0");
    let child = campaign().spawn().unwrap();
    let saved = run.join("checkpoint").join("checkpoint.gfnc");
    gfn_tests::wait_until("a checkpoint", || saved.exists());
    gfn_tests::terminate(&child);
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(143));
    let saved = gfn_host::checkpoint::load(&run.join("checkpoint"))
        .unwrap()
        .unwrap();
    assert!(saved.step < 3125, "stopped before the end: {}", saved.step);

    assert!(campaign().status().unwrap().success());
    let (validations, summary) = gfn_tests::read_metrics(&run);
    let summary = summary.expect("the run finished");
    assert_eq!(summary["steps"], 3125);
    assert!(summary.get("stopped").is_none());
    let steps: Vec<u64> = validations
        .iter()
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "each validation once: {steps:?}"
    );
    assert!(
        !run.join("checkpoint").exists(),
        "a finished run keeps no checkpoint"
    );
    let others = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(others, 1, "--only ran one configuration");
}

/// The run `name` learned: its final exact L1 is well below its first validation's (about 1.6
/// on 4-D H=8 and 1.9 on 2-D H=64 for an untrained net; the weakest run here, 2-D H=64 at R0
/// 0.001 with TB, ends at 0.79 of it), and where the short budget reaches the target's
/// neighbourhood it is within about twice what the runs reach (2026-12-04: at most 0.31 on
/// 4-D H=8 with all 16 modes, at most 0.66 on 2-D H=64 at R0 0.1).
fn learned(out: &std::path::Path, name: &str, final_l1: f64) {
    let metrics = out.join(name).join("seed0");
    let (validations, _) = gfn_tests::read_metrics(&metrics);
    let first = validations
        .first()
        .and_then(|v| v["exact_l1"].as_f64())
        .unwrap_or_else(|| panic!("{name}: no first validation"));
    assert!(
        final_l1.is_finite() && final_l1 <= 0.9 * first,
        "{name}: exact L1 {final_l1}, {first} at the first validation"
    );
    if name.starts_with("4d-") {
        assert!(final_l1 <= 0.6, "{name}: exact L1 {final_l1}");
    }
    if name.starts_with("2d-h64-r0_0.1-") {
        assert!(final_l1 <= 1.3, "{name}: exact L1 {final_l1}");
    }
}
