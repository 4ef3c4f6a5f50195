//! The `gfn` binary: bad input gets one line naming the problem and exit code 2; a tiny run
//! writes its metrics, config and plots.

use std::process::Command;

fn gfn(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gfn"))
        .args(args)
        .output()
        .unwrap();
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        s(&out.stdout),
        s(&out.stderr),
    )
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("gfn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_toml = dir.join("bad.toml");
    std::fs::write(&bad_toml, "batch_size = \"many\"\n").unwrap();
    let unknown_key = dir.join("unknown.toml");
    std::fs::write(&unknown_key, "no_such_setting = 1\n").unwrap();
    // A token file other users can read is refused: the token is the run's secret.
    let shared_token = dir.join("token");
    std::fs::write(&shared_token, "secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    let readable = std::fs::Permissions::from_mode(0o644);
    std::fs::set_permissions(&shared_token, readable).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "--ndim", "0"], "--ndim"),
        (vec!["train", "--height", "1"], "--height"),
        (vec!["train", "--R0", "0"], "--R0"),
        (vec!["train", "--R0", "-1"], "--R0"),
        (vec!["train", "--loss", "XX"], "XX"),
        (vec!["train", "--subTB_weighting", "nope"], "nope"),
        (vec!["train", "--loss_fn", "cubic"], "cubic"),
        (vec!["buffer", "--samplers", "3"], "--samplers"),
        (vec!["learner", "--samplers", "2"], "--samplers"),
        (vec!["sampler", "--samplers", "0"], "--samplers"),
        (
            vec!["train", "--loss_fn", "linex", "--linex_alpha", "0"],
            "--linex_alpha",
        ),
        (vec!["train", "--linex_alpha", "0.5"], "--linex_alpha"),
        (vec!["train", "--batch_size", "0"], "--batch_size"),
        (vec!["train", "--batch_size", "-3"], "-3"),
        (
            vec!["train", "--tabular", "--preprocessor", "khot"],
            "--tabular",
        ),
        (
            vec!["train", "--config", "/nonexistent/gfn.toml"],
            "/nonexistent/gfn.toml",
        ),
        (
            vec!["train", "--config", bad_toml.to_str().unwrap()],
            "bad.toml",
        ),
        (
            vec!["train", "--config", unknown_key.to_str().unwrap()],
            "no_such_setting",
        ),
        (vec!["train", "--epsilon", "2"], "--epsilon"),
        (vec!["train", "--seed", "18446744073709551615"], "--seed"),
        (
            vec!["train", "--replay_buffer_size", "4"],
            "--replay_buffer_size",
        ),
        (vec!["train", "--activation", "gelu"], "gelu"),
        // torchgfn's presets set R0 = 0: refused until --R0 is given, naming it.
        (
            vec![
                "train",
                "--reward",
                "bitwise_xor",
                "--reward_preset",
                "easy",
            ],
            "--R0 1e-3",
        ),
        (vec!["train", "--reward_preset", "impossible"], "--R0"),
        (vec!["train", "--reward_preset", "hardest"], "hardest"),
        // Reward kwargs are checked, and refused where the reward does not read them.
        (vec!["train", "--primes", "2,3"], "--primes"),
        (
            vec!["train", "--reward", "multiplicative_coprime", "--R2", "1"],
            "--R2",
        ),
        (
            vec![
                "train",
                "--reward",
                "conditional_multiscale",
                "--height",
                "8",
            ],
            "--height 8",
        ),
        (
            vec!["train", "--reward", "bitwise_xor", "--bits_per_tier", "0-5"],
            "0-5",
        ),
        (vec!["reproduce", "tb-paper", "--jobs", "0"], "--jobs"),
        (vec!["reproduce", "tb-paper", "--budget", "0"], "--budget"),
        (vec!["train", "--device", "tpu"], "tpu"),
        // A CPU build has no GPU support; a CUDA build here has no GPU 7.
        (vec!["train", "--device", "cuda:7"], "--device cuda:7"),
        (vec!["sampler", "--device", "cuda:7"], "--device cuda:7"),
        (vec!["learner", "--device", "cuda:7"], "--device cuda:7"),
        (vec!["train", "--device", "wgpu:7"], "--device wgpu:7"),
        // Flags that the command cannot honour.
        (vec!["train", "--sync"], "--sync"),
        (
            vec!["replay", "--from", "x", "--epsilon", "0.1"],
            "--epsilon",
        ),
        (vec!["sampler", "--load", "x"], "--load"),
        (
            vec![
                "bench-pipeline",
                "--learner_device",
                "wgpu",
                "--learner_threads",
                "4",
            ],
            "--learner_threads",
        ),
        (vec!["bench-pipeline", "--learner_threads", "0"], "0"),
        (vec!["bench-buffer", "--batch_size", "16,0"], "0"),
        (vec!["bench-buffer", "--batches", "0"], "0"),
        (
            vec!["bench-pipeline", "--sampler_device", "cuda:7"],
            "cuda:7",
        ),
        // The token never goes on a command line; a shared token file is refused.
        (vec!["sampler", "--run_token", "x"], "--run_token"),
        (
            vec!["buffer", "--run_token_file", shared_token.to_str().unwrap()],
            "0600",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, err) = gfn(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A tiered reward with a preset trains once R0 is set, and its config file keeps the preset
/// and the override (kwargs left to the preset are not written out).
#[test]
fn a_preset_reward_trains_with_r0_set() {
    let dir = std::env::temp_dir().join(format!("gfn-preset-{}", std::process::id()));
    let run_dir = dir.join("out");
    let args = [
        "train",
        "--quiet",
        "--reward",
        "conditional_multiscale",
        "--reward_preset",
        "medium",
        "--R0",
        "0.001",
        "--ndim",
        "3",
        "--height",
        "64",
        "--n_trajectories",
        "64",
        "--validation_interval",
        "4",
        "--validation_samples",
        "200",
        "--tensorboard",
        "false",
        "--run_dir",
        run_dir.to_str().unwrap(),
    ];
    let (code, out, err) = gfn(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("params_checksum"), "{out}");
    let saved = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(saved.contains("reward_preset = \"medium\""), "{saved}");
    assert!(saved.contains("r0 = 0.001"), "{saved}");
    assert!(!saved.contains("tier_weights"), "{saved}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tiny_run_writes_metrics_config_and_plots() {
    let dir = std::env::temp_dir().join(format!("gfn-run-{}", std::process::id()));
    let cfg = dir.join("run.toml");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        &cfg,
        "n_trajectories = 640\nvalidation_interval = 10\nseed = 3\n",
    )
    .unwrap();
    let (run_dir, record) = (dir.join("out"), dir.join("recording"));
    let _ = std::fs::remove_dir_all(&record);
    let args = [
        "train",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--seed",
        "4",
        "--run_dir",
        run_dir.to_str().unwrap(),
        "--record",
        record.to_str().unwrap(),
    ];
    let (code, out, err) = gfn(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"exact_l1\""), "{out}");
    let saved = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(
        saved.contains("seed = 4") && saved.contains("n_trajectories = 640"),
        "flags override the file: {saved}"
    );
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("{\"validation\""))
            .count(),
        5
    );
    assert!(metrics.lines().last().unwrap().starts_with("{\"summary\""));
    for png in ["curves.png", "loss.png", "heatmap.png"] {
        let bytes = std::fs::read(run_dir.join(png)).unwrap();
        assert!(bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"), "{png}");
    }
    // TensorBoard events by default (tests/tests/tensorboard.rs reads them back), none with
    // `--tensorboard false`.
    assert_eq!(event_files(&run_dir), 1);
    let quiet_dir = dir.join("no-events");
    let off = [
        "train",
        "--quiet",
        "--n_trajectories",
        "64",
        "--tensorboard",
        "false",
    ];
    let (code, _, err) = gfn(&[&off[..], &["--run_dir", quiet_dir.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(quiet_dir.join("metrics.jsonl").exists());
    assert_eq!(event_files(&quiet_dir), 0);
    // The same command again: the recording is not overwritten, and the run is refused
    // before it touches its folder.
    let (code, _, err) = gfn(&args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already holds a recording"), "{err}");
    assert_eq!(
        std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap(),
        metrics
    );
}

/// The rows a benchmark wrote with `--json`.
fn json_rows(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    rows.as_array().unwrap().clone()
}

#[test]
fn the_benchmark_runs_and_reports_every_configuration() {
    let json = std::env::temp_dir().join(format!("gfn-bench-{}.json", std::process::id()));
    let (code, _, err) = gfn(&[
        "bench",
        "--steps_small",
        "3",
        "--steps_large",
        "1",
        "--steps_huge",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = json_rows(&json);
    assert_eq!(rows.len(), 6);
    for row in rows {
        let its = row["steps_per_s"].as_f64().unwrap();
        assert!(its.is_finite() && its > 0.0, "{row}");
    }
}

#[test]
fn the_buffer_benchmark_reports_each_batch_size() {
    let json = std::env::temp_dir().join(format!("gfn-bench-buffer-{}.json", std::process::id()));
    let (code, _, err) = gfn(&[
        "bench-buffer",
        "--batch_size",
        "4,32",
        "--batches",
        "300",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = json_rows(&json);
    assert_eq!(rows.len(), 2);
    for (row, b) in rows.iter().zip([4, 32]) {
        assert_eq!(row["batch_size"], b);
        assert_eq!(row["batches"], 300);
        let rate = row["batches_per_s"].as_f64().unwrap();
        assert!(rate.is_finite() && rate > 0.0, "{row}");
    }
    // Larger batches carry more bytes.
    assert!(rows[1]["bytes_per_batch"].as_f64() > rows[0]["bytes_per_batch"].as_f64());
}

#[test]
fn damaged_foreign_and_other_runs_checkpoints_are_refused_with_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("gfn-cli-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (ck, run) = (dir.join("ck"), dir.join("run"));
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--quiet",
            "--n_trajectories",
            "640",
            "--batch_size",
            "16",
            "--checkpoint_every",
            "10",
            "--checkpoint_dir",
            ck.to_str().unwrap(),
            "--run_dir",
            run.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        gfn(&args)
    };
    assert_eq!(train(&[]).0, 0, "the first run");
    let file = ck.join("checkpoint.gfnc");
    let good = std::fs::read(&file).unwrap();
    let refused = |why: &str| {
        let (code, _, err) = train(&["--resume"]);
        assert_eq!(code, 2, "{why}: {err}");
        err
    };
    let (code, _, err) = train(&["--resume", "--loss", "db"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("loss") && err.contains("refusing"), "{err}");
    let mut damaged = good.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    std::fs::write(&file, &damaged).unwrap();
    assert!(refused("damaged").contains("damaged"));
    std::fs::write(&file, b"not a checkpoint at all").unwrap();
    assert!(refused("foreign").contains("not a gfn checkpoint"));
    std::fs::write(&file, &good).unwrap();
    let (code, _, err) = train(&["--resume"]);
    assert_eq!(code, 0, "the intact checkpoint resumes: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// TensorBoard event files in a run folder.
fn event_files(run_dir: &std::path::Path) -> usize {
    std::fs::read_dir(run_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tfevents."))
        .count()
}
