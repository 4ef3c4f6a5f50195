//! The launch scripts: `launch/slurm.sh --dry-run` prints a correct plan for a 2-node allocation.

use std::path::PathBuf;
use std::process::Command;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("launch")
        .join(name)
}

#[test]
fn slurm_dry_run_plans_a_two_node_allocation() {
    let out = Command::new("bash")
        .arg(script("slurm.sh"))
        .args([
            "--dry-run",
            "--nodes",
            "gpu-a,gpu-b",
            "--samplers-per-node",
            "3",
            "--buffers",
            "2",
            "--learners",
            "2",
            "--port",
            "6000",
        ])
        .args(["--", "--loss", "DB"])
        .env("GFN_RUN_TOKEN", "tok")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = String::from_utf8(out.stdout).unwrap();
    let steps: Vec<&str> = plan.lines().filter(|l| l.starts_with("srun")).collect();
    assert_eq!(steps.len(), 3, "{plan}");
    let endpoints = "--ingest tcp://gpu-a:6000,tcp://gpu-a:6002 --serve tcp://gpu-a:6001,tcp://gpu-a:6003 --weights tcp://gpu-a:6004";
    for s in &steps {
        assert!(s.contains(endpoints), "{s}");
        assert!(s.contains("--loss DB"), "{s}");
        // The token travels in the environment, never on a command line.
        assert!(!s.contains("tok ") && !s.contains("--run_token"), "{s}");
    }
    let buffers = steps.iter().find(|s| s.contains(" buffer ")).unwrap();
    assert!(
        buffers.contains("--overlap --nodes=1 --ntasks=2 --nodelist=gpu-a")
            && buffers.contains("--bind_host")
    );
    let samplers = steps.iter().find(|s| s.contains(" sampler ")).unwrap();
    // On CPU nodes, one process per node holds its 3 samplers (one weight subscription each).
    assert!(
        samplers.contains("--overlap --nodes=2 --ntasks-per-node=1 --nodelist=gpu-a,gpu-b"),
        "{samplers}"
    );
    assert!(
        samplers.contains("--id $((SLURM_PROCID * 3)) --samplers 3"),
        "{samplers}"
    );
    let learners = steps.iter().find(|s| s.contains(" learner ")).unwrap();
    // Two learners spread over both nodes, rank 0 on the first.
    assert!(
        learners.contains("--nodes=2 --ntasks=2 --nodelist=gpu-a,gpu-b --distribution=block")
            && learners.contains("--mpi=pmix"),
        "{learners}"
    );
    assert!(!learners.contains("--gpus-per-task"));
    assert!(plan.contains("6 sampler(s)"));
}

#[test]
fn slurm_binds_one_gpu_per_task_and_packs_learners_on_request() {
    let out = Command::new("bash")
        .arg(script("slurm.sh"))
        .args(["--dry-run", "--nodes", "a,b,c", "--learners", "4"])
        .args(["--learners-per-node", "2", "--", "--device", "cuda"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan = String::from_utf8(out.stdout).unwrap();
    let step = |role: &str| {
        plan.lines()
            .find(|l| l.starts_with("srun") && l.contains(role))
            .unwrap()
            .to_string()
    };
    assert!(step(" learner ").contains("--gpus-per-task=1 --nodes=2 --ntasks=4 --nodelist=a,b "));
    // With GPUs, each sampler is a task of its own with its own GPU.
    let samplers = step(" sampler ");
    assert!(samplers.contains("--gpus-per-task=1 --nodes=3 --ntasks-per-node=4"));
    assert!(samplers.contains("--id $SLURM_PROCID ") && !samplers.contains("--samplers"));
    assert!(!step(" buffer ").contains("--gpus-per-task"));
    // More learners than the allocation can hold at that density is refused.
    let out = Command::new("bash")
        .arg(script("slurm.sh"))
        .args(["--dry-run", "--nodes", "a", "--learners", "3"])
        .args(["--learners-per-node", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn launch_scripts_refuse_bad_counts() {
    for (name, extra) in [("slurm.sh", &["--nodes", "a"][..]), ("local.sh", &[][..])] {
        let out = Command::new("bash")
            .arg(script(name))
            .args(["--learners", "zero"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("zero"), "{name}: {err}");
    }
}
