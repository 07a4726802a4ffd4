"""S4's measures (issue #34 point 8): foreign frames and smoothness along latent lines, checked against hand counts on
frames that are real MNIST test images of known digits, then end to end on a tiny S4-like study whose report answers
S4's question with them."""

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from rich.console import Console

from gbench.analysis.claims import check_claims, parse_claims
from gbench.analysis.transitions import MEASURES, Walk, foreign_share, jump_ratio, path_ratio, run_measures
from gbench.config import EvalOptions, RunConfig, resolve_params
from gbench.data import load_split, to_uint8
from gbench.evaluation.extractors import load_lenet
from gbench.report.build import write_report
from gbench.report.interpolation import interpolation_images
from gbench.report.walks import WALK_PAIRS, WALK_STEPS, with_walk_measures
from gbench.results.records import load_local
from gbench.training.runner import DataCache, execute, load_run

#: The alphas of interpolation_images at 10 steps: the line (0..1), then its extension (-1..2).
ALPHAS = [i / 9 for i in range(10)] + [-1 + 3 * i / 9 for i in range(10)]


@pytest.fixture(scope="module")
def digits(registry):
    """Real MNIST test images the shipped LeNet labels as their true digit, by digit: frames of known class."""
    images, labels = load_split(registry.dataset("mnist"), "test", None, 2000)
    classifier = load_lenet("lenet-mnist")
    with torch.no_grad():
        features, logits = classifier(images)
    right = logits.argmax(dim=1) == labels
    return {d: (images[right & (labels == d)], features[right & (labels == d)]) for d in range(10)}


def walk_of(digits, classes):
    """A walk of 20 frames whose frame i is a real test image of digit classes[i], labelled by the LeNet itself."""
    classifier = load_lenet("lenet-mnist")
    used = {d: 0 for d in range(10)}
    frames = []
    for digit in classes:
        frames.append(digits[digit][0][used[digit]])
        used[digit] += 1
    with torch.no_grad():
        features, logits = classifier(torch.stack(frames))
    return Walk(ALPHAS, logits.argmax(dim=1).tolist(), features.double().numpy())


def test_frames_of_one_digit_between_two_of_it_have_no_foreign_frame(digits):
    measures = run_measures([walk_of(digits, [3] * 20)])
    assert measures["foreign_interpolation"] == 0.0 and measures["foreign_extrapolation"] == 0.0


def test_a_path_through_a_seven_counts_its_frames_as_foreign(digits):
    # the line from a 3 (alpha 0) to a 5 (alpha 1): inner frames 3 3 7 7 7 5 5 5 (3 of 8 foreign);
    # the extension (alpha -1, -2/3, -1/3, [0], [1/3], [2/3], [1], 4/3, 5/3, 2): 7 1 3 . . . . 5 1 1 (4 of 6 foreign)
    line = [3, 3, 3, 7, 7, 7, 5, 5, 5, 5]
    extension = [7, 1, 3, 3, 3, 7, 5, 5, 1, 1]  # alpha 0, 1/3, 2/3, 1 repeat the line's frames 0, 3, 6, 9
    extension[3], extension[4], extension[5], extension[6] = line[0], line[3], line[6], line[9]
    measures = run_measures([walk_of(digits, line + extension)])
    assert measures["foreign_interpolation"] == pytest.approx(3 / 8)
    assert measures["foreign_extrapolation"] == pytest.approx(4 / 6)
    assert foreign_share([3, 7, 5, 1], (3, 5)) == 0.5 and math.isnan(foreign_share([], (3, 5)))


def test_points_on_a_line_have_path_ratio_one_and_a_detour_more():
    start, end = np.array([0.0, 1.0, 2.0]), np.array([3.0, -1.0, 5.0])
    ts = np.array([0.0, 0.1, 0.3, 0.35, 0.6, 1.0])
    points = start + ts[:, None] * (end - start)
    assert path_ratio(points) == pytest.approx(1.0)
    steps = np.diff(ts)
    assert jump_ratio(points) == pytest.approx(steps.max() / steps.mean())  # 0.4 / 0.2 = 2
    assert path_ratio(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])) == pytest.approx(math.sqrt(2))
    assert jump_ratio(np.array([[0.0], [1.0], [2.0], [3.0]])) == 1.0
    assert math.isnan(path_ratio(np.array([[1.0, 1.0], [2.0, 2.0], [1.0, 1.0]])))  # the ends coincide


def test_a_walks_path_is_its_line_in_alpha_order_without_the_extensions_repeats(digits):
    walk = walk_of(digits, [3] * 10 + [4] * 3 + [3] * 4 + [4] * 3)
    line = walk.features[:10]
    expected = np.linalg.norm(np.diff(line, axis=0), axis=1)
    measures = run_measures([walk])
    assert measures["path_ratio"] == pytest.approx(expected.sum() / np.linalg.norm(line[-1] - line[0]))
    assert measures["jump_ratio"] == pytest.approx(expected.max() / expected.mean())
    assert measures["foreign_extrapolation"] == 1.0  # the 4s beyond the ends; alpha 0..1 of the extension are 3s


# --- end to end: a tiny S4-like study


@pytest.fixture(scope="module")
def s4_runs(registry, tmp_path_factory):
    """Two latent sizes of a 20-step MLP, three seeds each, evaluation off: what S4 runs, in seconds."""
    out = tmp_path_factory.mktemp("s4runs")
    cache = DataCache()
    for latent in (8, 16):
        for seed in (0, 1, 2):
            config = RunConfig(
                architecture="mlp",
                seed=seed,
                steps=20,
                train_limit=1000,
                log_every=10,
                device="cpu",
                eval=EvalOptions(samples=0),
            )
            config = dataclasses.replace(
                config, params=resolve_params(registry, config, {"latent_dim": latent, "hidden_dim": 32})
            )
            execute(config, registry, out, cache=cache)
    return out


def hand_measures(run_dir, registry):
    """One run's four measures computed here, with loops, from the same frames: the independent computation."""
    _, nets = load_run(run_dir, registry)
    classifier = load_lenet("lenet-mnist")
    per_pair = []
    for pair in range(WALK_PAIRS):
        images, alphas = interpolation_images(nets.generator, nets.latent_dim, WALK_STEPS, seed=pair)
        with torch.no_grad():
            features, logits = classifier(to_uint8(images))
        labels = logits.argmax(dim=1).tolist()
        ends = (labels[0], labels[WALK_STEPS - 1])
        inner = labels[1 : WALK_STEPS - 1]
        beyond = [label for label, alpha in zip(labels[WALK_STEPS:], alphas[WALK_STEPS:]) if alpha < 0 or alpha > 1]
        line = features[:WALK_STEPS].double()
        steps = [float((line[i + 1] - line[i]).norm()) for i in range(WALK_STEPS - 1)]
        per_pair.append(
            (
                sum(label not in ends for label in inner) / len(inner),
                sum(label not in ends for label in beyond) / len(beyond),
                sum(steps) / float((line[-1] - line[0]).norm()),
                max(steps) / (sum(steps) / len(steps)),
            )
        )
    return dict(zip(MEASURES, (float(np.mean(column)) for column in zip(*per_pair))))


CLAIMS = [
    {
        "claim": "few foreign digits",
        "setting": "latent_dim=8",
        "metric": "foreign_interpolation",
        "below": 0.5,
        "headline": True,
    },
    {
        "claim": "16 has fewer foreign frames than 8",
        "setting": "latent_dim=16",
        "metric": "foreign_interpolation",
        "lower_than": "latent_dim=8",
        "headline": True,
    },
    {
        "claim": "16 straighter",
        "setting": "latent_dim=16",
        "metric": "path_ratio",
        "lower_than": "latent_dim=8",
        "headline": True,
    },
]


def test_the_report_measures_each_run_and_answers_s4s_question(registry, s4_runs, tmp_path):
    records = load_local(s4_runs)
    measured, skipped = with_walk_measures(records, registry)
    assert not skipped
    for record in measured:
        hand = hand_measures(record.run_dir, registry)
        for name in MEASURES:
            assert record.row[name] == pytest.approx(hand[name], rel=1e-9, abs=1e-12), name

    settings = ["latent_dim=8", "latent_dim=16"]
    suite = SimpleNamespace(
        name="s4-tiny",
        title="S4 tiny",
        question="Smooth, without foreign digits?",
        baseline=None,
        variants=[],
        grid_axes=None,
        figures=[],
        claims=parse_claims(CLAIMS, "test", settings),
    )
    write_report(records, tmp_path, suite, registry)
    text = (tmp_path / "report.md").read_text()
    answer = next(line for line in text.splitlines() if line.startswith("**Answer:**"))
    # the answer opens with S4's own measures, ranked (lower is better), not with FID
    assert answer.startswith("**Answer:** foreign interp. (lower is better), mean over seeds, best first: ")
    means = {
        name: float(
            np.mean([r.row["foreign_interpolation"] for r in measured if f"latent_dim={r.row['latent_dim']}" == name])
        )
        for name in settings
    }
    best, worst = sorted(settings, key=lambda n: means[n])
    assert f"best first: {best} {means[best]:.3f}" in answer or means[best] == means[worst]
    assert f"; {worst} {means[worst]:.3f}" in answer or means[best] == means[worst]
    assert "**Headline: foreign interp.**" in text and "| path ratio (lower better) |" in text
    # the claims' verdicts, from the same Holm family as the report's tables
    results = check_claims(measured, suite.claims)
    for result in results:
        assert f"{result.claim.text}: {result.verdict}" in answer
    expected = np.mean([r.row["path_ratio"] for r in measured if r.row["latent_dim"] == 16])
    assert results[2].values == pytest.approx(
        [r.row["path_ratio"] for r in measured if r.row["latent_dim"] == 16]
    ) and np.mean(results[2].values) == pytest.approx(expected)


def test_the_terminal_shows_the_reports_own_tables_with_the_walk_claims_in_their_family(registry, s4_runs, tmp_path):
    """gbench report and gbench sweep print the tables write_report computed: one Holm family with S4's claims on
    walks, so the terminal and the report cannot adjust one pair's p over two families."""
    fids = {8: 30.0, 16: 36.0}
    records = [
        dataclasses.replace(r, row={**r.row, "fid": fids[r.row["latent_dim"]] + r.seed, "fid_extractor": "lenet-x"})
        for r in load_local(s4_runs)
    ]
    suite = SimpleNamespace(
        name="s4-tiny",
        title="S4 tiny",
        question="Smooth?",
        baseline="latent_dim=8",
        variants=[],
        grid_axes=None,
        figures=[],
        claims=parse_claims(CLAIMS, "test", ["latent_dim=8", "latent_dim=16"]),
    )
    shown = []
    write_report(records, tmp_path, suite, registry, show=shown.append)
    terminal = Console(record=True, width=1000)
    for table in shown:
        terminal.print(table)
    family = "over the 4 distinct comparisons of this report (1 in the results table, 3 claims)"
    assert family in (tmp_path / "report.md").read_text() and family in " ".join(terminal.export_text().split())


def test_without_a_generator_the_walks_are_skipped_with_the_reason(registry, s4_runs):
    records = [dataclasses.replace(r, run_dir=None) for r in load_local(s4_runs)[:2]]
    measured, skipped = with_walk_measures(records, registry)
    assert measured == records
    assert skipped == [
        "walk measures not taken: runs read from storage have no generator.pt; report from the local results folder"
    ]


def test_a_claim_within_a_margin_tests_the_difference_less_the_margin():
    """no_more_than = "baseline" with margin = 0.05: Welch's test of (setting - margin) against the baseline."""
    from scipy import stats as scipy_stats

    from gbench.analysis.claimtypes import CONFIRMED, CONTRADICTED, UNDECIDED
    from gbench.results.records import RunRecord

    def records(wide):
        base = [0.10, 0.12, 0.08, 0.11, 0.09]
        return [
            RunRecord(
                v,
                s,
                {
                    "variant": v,
                    "seed": s,
                    "status": "ok",
                    "latent_dim": 64 if v == "baseline" else 128,
                    "foreign_interpolation": x,
                },
            )
            for v, xs in (("baseline", base), ("wide", wide))
            for s, x in enumerate(xs)
        ]

    table = {
        "claim": "wide no more foreign",
        "setting": "wide",
        "metric": "foreign_interpolation",
        "no_more_than": "baseline",
        "margin": 0.05,
    }
    (claim,) = parse_claims([table], "t", ["baseline", "wide"])
    assert claim.margin == 0.05 and "minus baseline's below +0.05" in claim.describe()
    for wide, verdict in (
        ([0.11, 0.10, 0.12, 0.09, 0.11], CONFIRMED),  # 0.006 above the baseline: well inside the margin
        ([0.20, 0.22, 0.19, 0.21, 0.20], CONTRADICTED),  # 0.104 above it: beyond the margin
        ([0.05, 0.25, 0.10, 0.22, 0.12], UNDECIDED),
    ):
        (result,) = check_claims(records(wide), [claim])
        base = [0.10, 0.12, 0.08, 0.11, 0.09]
        assert result.difference == pytest.approx(np.mean(wide) - np.mean(base) - 0.05)
        p = scipy_stats.ttest_ind(np.array(wide) - 0.05, base, equal_var=False).pvalue
        assert result.p == pytest.approx(p) and result.test == "Welch" and result.verdict == verdict
    with pytest.raises(Exception, match="needs margin = VALUE >= 0"):
        parse_claims([{**table, "margin": -1}], "t", ["baseline", "wide"])


def test_without_the_registry_the_report_says_why_the_walks_were_not_taken(s4_runs, tmp_path):
    settings = ["latent_dim=8", "latent_dim=16"]
    suite = SimpleNamespace(
        name="s4-tiny",
        title="S4 tiny",
        question="q",
        baseline=None,
        variants=[],
        grid_axes=None,
        figures=[],
        claims=parse_claims(CLAIMS, "test", settings),
    )
    write_report(load_local(s4_runs), tmp_path, suite)  # as gbench sweep's own report: no registry
    text = (tmp_path / "report.md").read_text()
    assert "> walk measures not taken: rebuilding generators needs the plugins' registry (gbench report)" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "no test" in line]
    assert len(table) == len(CLAIMS) and all(
        line.endswith("| no test (fewer than two runs with a value) |") for line in table
    )
