"""``gbench sweep --seeds auto[:MAX]``: seeds in rounds, only where a comparison with the
baseline is undecided. The statistics are tested in test_sequential.py; here: the rounds,
a real tiny sweep (counts per setting as replay() says, resume, the report), bad values in
one line, and two PostgreSQL workers sharing an auto-seeded sweep."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import optuna
import pytest
from conftest import assert_one_line_error, run_cli, run_sweep_workers
from optuna.trial import TrialState

from gbench.analysis.sequential import DIFFERENT, NOT_DISTINGUISHABLE, PROCEDURE, UNDECIDED, Design, replay

# 20 steps barely move an MLP GAN, but batch norm changes its FID from ~117 to ~110 with a spread
# of ~0.5 over seeds: a difference 3 seeds decide. hidden-48 is indistinguishable from the baseline.
SUITE = """
[suite]
name = "t-auto"
target = "plugins.mlp"
seeds = {seeds}
{baseline}

[base]
architecture = "mlp"
steps = 20
train_limit = 300
eval_samples = 200
log_every = 10

[base.params]
latent_dim = 16
hidden_dim = 32

[[variants]]
name = "baseline"

[[variants]]
name = "batchnorm"
architecture = "mlp-batchnorm"

[[variants]]
name = "hidden-48"
params = {{ hidden_dim = 48 }}
"""


def write_suite(tmp_path: Path, seeds: str = "[0, 1]", baseline: str = 'baseline = "baseline"') -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(seeds=seeds, baseline=baseline))
    return path


def results(out: Path) -> list[dict]:
    return list(csv.DictReader(open(out / "results.csv")))


def expected_counts(rows: list[dict], design: Design) -> dict[str, int]:
    """Seeds per setting as replay() alone says, from results.csv's FIDs by seed order."""
    fids: dict[str, dict[int, float]] = {}
    for row in rows:
        fids.setdefault(row["variant"], {})[int(row["seed"])] = float(row["fid"]) if row["fid"] else math.nan
    series = {name: [by_seed[s] for s in sorted(by_seed)] for name, by_seed in fids.items()}
    outcomes = {
        name: replay(design, values, series["baseline"]) for name, values in series.items() if name != "baseline"
    }
    assert all(o.decision != UNDECIDED for o in outcomes.values()), outcomes
    return {"baseline": max(o.seeds for o in outcomes.values()), **{name: o.seeds for name, o in outcomes.items()}}


# ---------------------------------------------------------------------------
# The rounds, from results alone (no training)
# ---------------------------------------------------------------------------


def test_rounds_add_a_seed_to_the_undecided_settings_and_the_baseline_only():
    from gbench.analysis.adaptive import schedule

    design = Design(start=3, max_seeds=5)
    names = ["baseline", "far", "same"]
    values = {
        "baseline": [50.0, 50.6, 49.5, 50.2, 49.9],
        "far": [80.0, 80.5, 79.6],
        "same": [50.1, 50.4, 49.7, 50.0, 50.3],
    }
    fids: dict[str, float] = {}
    first = schedule(design, names, "baseline", fids)
    assert sorted(first.pending) == sorted(f"{n}|{s}" for n in names for s in range(3)) and not first.done
    fids.update({f"{n}|{s}": values[n][s] for n in names for s in range(3)})
    second = schedule(design, names, "baseline", fids)
    assert second.outcomes["far"].decision == DIFFERENT and second.outcomes["same"].decision == UNDECIDED
    assert sorted(second.pending) == ["baseline|3", "same|3"]
    fids.update({"baseline|3": values["baseline"][3], "same|3": values["same"][3]})
    assert sorted(schedule(design, names, "baseline", fids).pending) == ["baseline|4", "same|4"]
    # a diverged run: NaN, dropped from the look
    fids.update({"baseline|4": values["baseline"][4], "same|4": float("nan")})
    last = schedule(design, names, "baseline", fids)
    assert last.done and last.wanted == {"baseline": 5, "far": 3, "same": 5}
    assert last.outcomes["same"].decision == NOT_DISTINGUISHABLE and "maximum, 5 seeds" in last.outcomes["same"].why


def test_a_suite_says_seeds_auto(tmp_path):
    from gbench.studies.sweep.suite import load_suite

    suite = load_suite(write_suite(tmp_path, seeds='"auto:8"'))
    assert suite.seeds_auto == Design(3, 8) and suite.seeds == [0, 1, 2]
    assert load_suite(write_suite(tmp_path, seeds='"auto"')).seeds_auto == Design(3, 10)
    assert load_suite(write_suite(tmp_path)).seeds_auto is None


# ---------------------------------------------------------------------------
# Bad values: one line, exit 2, through the real CLI
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seeds_option, suite_seeds, baseline, needles",
    [
        ("auto:1", "[0, 1]", 'baseline = "baseline"', ["--seeds auto:1", "integer >= 3", "auto:10"]),
        ("auto:x", "[0, 1]", 'baseline = "baseline"', ["--seeds 'auto:x'", "must be an integer", "auto:10"]),
        (None, '"auto:0"', 'baseline = "baseline"', ["suite.toml", "seeds auto:0", "integer >= 3"]),
        (None, '"most"', 'baseline = "baseline"', ["suite.toml", "seeds = 'most'", '"auto" / "auto:MAX"']),
        (None, '"auto"', "", ["suite.toml", "add baseline = "]),
        ("auto", "[0, 1]", "", ["--seeds auto:10", "add baseline = "]),
    ],
)
def test_bad_seeds_auto_values_fail_in_one_line(tmp_path, seeds_option, suite_seeds, baseline, needles):
    args = ["sweep", str(write_suite(tmp_path, seeds=suite_seeds, baseline=baseline)), "--out", str(tmp_path / "out")]
    result = run_cli(*args, *(["--seeds", seeds_option] if seeds_option else []))
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# A real sweep
# ---------------------------------------------------------------------------


def test_an_auto_sweep_adds_seeds_where_undecided_resumes_from_results_and_reports_why(tmp_path):
    path = write_suite(tmp_path)
    out = tmp_path / "out"
    # first the first round alone, as a fixed-seed sweep of the
    # same study: the auto sweep must take it up from the results
    first = run_cli("sweep", str(path), "--out", str(out), "--seeds", "0-2", "--no-report")
    assert first.returncode == 0, first.stderr
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")}
    assert len(stamps) == 9

    result = run_cli("sweep", str(path), "--out", str(out), "--seeds", "auto:4")
    assert result.returncode == 0, result.stderr
    rows = results(out)
    counts = {name: sum(r["variant"] == name for r in rows) for name in ("baseline", "batchnorm", "hidden-48")}
    assert counts == expected_counts(rows, Design(3, 4))
    assert counts["batchnorm"] == 3  # the large difference was decided at the first look
    # seeds in order
    assert sorted(int(r["seed"]) for r in rows if r["variant"] == "baseline") == list(range(counts["baseline"]))
    assert {r["seeds_auto"] for r in rows if int(r["seed"]) >= 3} <= {"auto:4"}
    for summary, stamp in stamps.items():  # round 1 came from the stored results, not trained again
        assert summary.stat().st_mtime_ns == stamp

    report = (out / "report" / "report.md").read_text()
    assert PROCEDURE in report and "## Seeds" in report
    assert "| batchnorm | 3 | different | stopped at 3 seeds: \\|z\\|" in report
    assert f"| hidden-48 | {counts['hidden-48']} |" in report
    assert PROCEDURE in (out / "report" / "report.html").read_text()

    # run again: every decision recomputed from the results, nothing trained
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")}
    again = run_cli("sweep", str(path), "--out", str(out), "--seeds", "auto:4", "--no-report")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")} == stamps and len(results(out)) == len(rows)

    # gbench report recomputes the table from results.csv alone (the design is in its seeds_auto column)
    table = run_cli("report", str(out), "-o", str(tmp_path / "again"))
    assert table.returncode == 0, table.stderr
    assert "Seeds per setting" in table.stdout and "stopped at 3 seeds" in table.stdout and "Pocock" in table.stdout


@pytest.mark.postgres
def test_two_workers_on_postgres_share_the_rounds_of_an_auto_sweep(postgres_url, tmp_path):
    path = write_suite(tmp_path, seeds='"auto:4"')
    run_sweep_workers(path, postgres_url, [tmp_path / f"m{i}" for i in range(2)], timeout=300)
    rows = [r for i in range(2) for r in results(tmp_path / f"m{i}")]
    keys = sorted(f"{r['variant']}|{r['seed']}" for r in rows)
    assert len(keys) == len(set(keys))  # each run trained on one machine only
    counts = {name: sum(r["variant"] == name for r in rows) for name in ("baseline", "batchnorm", "hidden-48")}
    assert counts == expected_counts(rows, Design(3, 4))  # both workers went on to the later rounds' decisions
    study = optuna.load_study(study_name="t-auto", storage=postgres_url)
    assert sorted(t.user_attrs["key"] for t in study.trials if t.state == TrialState.COMPLETE) == keys
    assert all(t.user_attrs.get("gbench:surplus") for t in study.trials if t.state != TrialState.COMPLETE)
