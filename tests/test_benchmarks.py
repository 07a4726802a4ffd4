"""The benchmarks' own arithmetic: what they print besides timings must be right."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from gbench.config import RunConfig
from gbench.training.runner import DataCache


def _benchmark(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ceilings_flop_count_is_the_hand_count_of_an_mlp_gan_step(registry):
    """population_speed's ceiling divides a peak matmul rate by the FLOPs a solo run does per image;
    torch's counter over gbench's real trainer must give what the step's layers add up to by hand."""
    speed = _benchmark("population_speed")
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=600), torch.device("cpu"))
    params = speed.CELLS["mlp"]["params"]
    assert speed.flops_per_image(registry, data, "mlp") == speed.mlp_flops_per_image(
        params["latent_dim"], params["hidden_dim"]
    )
    assert speed.mlp_flops_per_image(64, 256) == 5_124_096  # 512,409,600 per step of 100 images
    assert speed.mlp_flops_per_image(64, 512) > speed.mlp_flops_per_image(64, 256)


def test_the_profile_counts_every_matmul_of_a_population_step_in_its_matmul_group(registry):
    """population_profile's shares are only as right as its grouping: an S1 MLP GAN step has 30 batched
    matmuls by hand (D step: G forward 3, D forward on real and fake 6, their backward 10 = weight gradients
    3 + 3 and the input gradients of D's upper two layers 2 + 2; G step: D forward 3, D's input gradients 3,
    G's weight gradients 3 and its upper layers' input gradients 2). Two runs' difference cancels the
    one-off layout probe; a cast or Adam counted as a matmul, or a matmul missed, changes the count."""
    profile = _benchmark("population_profile")
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=600), torch.device("cpu"))
    short, long = (profile.profile_population(registry, data, "mlp", 2, steps, "bf16") for steps in (2, 5))
    assert long.calls["matmul"] - short.calls["matmul"] == 30 * 3
    # for G and for D: one fused Adam, one step-count add
    assert long.calls["optimizer"] - short.calls["optimizer"] == 4 * 3
    assert long.calls["cast"] > short.calls["cast"]  # bf16: every weight is cast once per use
    assert all(seconds >= 0 for seconds in long.seconds.values()) and long.seconds["matmul"] > 0
    assert (
        profile.group_of("bmm") == "matmul"
        and profile.group_of("_to_copy") == "cast"
        and profile.group_of("_fused_adam_") == "optimizer"
    )
    assert profile.group_of("relu") == "other"


def test_store_scaling_builds_valid_folders_and_its_growth_is_the_ratio_of_its_times(tmp_path):
    """benchmarks/store_scaling.py at tiny sizes: every command it times succeeds on the folders it
    builds (it stops otherwise), the folder is gbench's, and each growth figure is the ratio of the printed times."""
    import subprocess
    import sys

    from gbench.results import store
    from gbench.results.records import load_local

    scaling = _benchmark("store_scaling")
    rows = scaling.build(tmp_path / "runs", 6, settings=2)
    records = load_local(tmp_path / "runs")
    assert (
        [r.row["run_id"] for r in records]
        == [row["run_id"] for row in rows]
        == [row["run_id"] for row in store.read_results(tmp_path / "runs")]
    )
    assert all(len(r.history) == len(scaling.HISTORY_STEPS) and (r.run_dir / "samples.png").is_file() for r in records)
    assert sorted({(r.row["lr"], r.seed) for r in records}) == [
        (lr, seed) for lr in (0.0002, 0.0005) for seed in range(3)
    ]

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "store_scaling.py"
    result = subprocess.run(
        [sys.executable, str(script), "--sizes", "4", "8", "--settings", "2", "--keep", str(tmp_path / "kept")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and "model name" not in lines[0]
    times = {int(line.split()[0]): [float(value) for value in line.split()[1::2]] for line in lines[2:4]}
    assert sorted(times) == [4, 8] and all(len(values) == len(scaling.ACTIONS) for values in times.values())
    growth = [item.split() for item in lines[4].split(": ", 1)[1].split(", ")]
    assert [action for action, _ in growth] == list(scaling.ACTIONS)
    for (_, printed), small, large in zip(growth, times[4], times[8], strict=True):
        # times print to 4 significant digits, the growth to 0.1: what rounding allows
        assert abs(float(printed.rstrip("x")) - large / small) <= 0.05 + 2e-3 * large / small
    assert len(store.read_results(tmp_path / "kept" / "runs-8")) == 13  # 8 runs and the 5 the appends added
    assert (tmp_path / "kept" / "report-8" / "report.html").is_file()


def test_the_gpu_check_runs_its_code_on_the_cpu_at_toy_sizes(tmp_path):
    """benchmarks/gpu_check.sh only ever runs on a lent GPU, so nothing else notices when the code it
    drives moves (it once imported gbench.poptrain after the package split). GPU_CHECK_SMOKE=1 runs the
    same lines on the CPU at toy sizes: every figure line must come out, and no "skipped"."""
    import os
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    env = {**os.environ, "GPU_CHECK_SMOKE": "1", "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("gpu: cpu (smoke)")
    for prefix in ("solo fp32:", "population 2 fp32:", "solo bf16:", "population 2 bf16:", "inception-v3:"):
        assert any(line.startswith(prefix) for line in lines), (prefix, result.stdout)
    assert "skipped" not in result.stdout and "images/s" in result.stdout
