"""Reports, figures and the report/interpolate commands, on real tiny runs."""

import copy
import dataclasses
import re
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import REPO, assert_one_line_error, run_cli
from PIL import Image

from gbench.config import CONFIG_FILE_KEYS, EvalOptions, RunConfig, resolve_params
from gbench.errors import GbenchError
from gbench.report.build import FIGURES, check_figures, report_tables, tables_for, write_report
from gbench.report.figures import grid_cells
from gbench.results import store
from gbench.results.records import load_local
from gbench.training.runner import DataCache, execute

EXTRACTOR = "lenet-mnist@1a2b3c4d"
GRID = {"latent_dim": [8, 16], "hidden_dim": [16, 32]}


@pytest.fixture(scope="module")
def out(registry, tmp_path_factory):
    """A 2 x 2 grid (latent x hidden) of 20-step MLP runs, two seeds each, evaluation off.

    Plain runs (no variant column): the report names each setting by the
    hyperparameters that differ, in results.csv's column order.
    """
    out = tmp_path_factory.mktemp("runs")
    cache = DataCache()
    for latent in GRID["latent_dim"]:
        for hidden in GRID["hidden_dim"]:
            for seed in (0, 1):
                config = RunConfig(
                    architecture="mlp",
                    seed=seed,
                    steps=20,
                    train_limit=2000,
                    log_every=5,
                    device="cpu",
                    eval=EvalOptions(samples=0),
                )
                config = dataclasses.replace(
                    config, params=resolve_params(registry, config, {"latent_dim": latent, "hidden_dim": hidden})
                )
                execute(config, registry, out, cache=cache)
    return out


@pytest.fixture
def records(out):
    return load_local(out)


def hand_fid(records):
    """The real runs with FIDs, curves and class counts set by hand (the evaluator is not under test here)."""
    records = copy.deepcopy(records)
    for record in records:
        latent, hidden = record.row["latent_dim"], record.row["hidden_dim"]
        record.row.update(
            fid=100.0 - hidden - latent + 2 * record.seed,
            fid_extractor=EXTRACTOR,
            classes_covered=9,
            class_counts="5 0 7 9 3 6 4 8 2 6",
        )
        for index, row in enumerate(record.history):
            row["fid"] = 200.0 - 10 * index
    return records


def grid_suite(**changes):
    fields = dict(
        name="s2-test",
        title="S2 test grid",
        question="Which of latent and hidden size matters?",
        baseline=None,
        variants=[],
        grid_axes=GRID,
        figures=[],
    )
    return SimpleNamespace(**{**fields, **changes})


def linked_images(folder: Path) -> set[str]:
    md = (folder / "report.md").read_text()
    page = (folder / "report.html").read_text()
    from_md = set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md))
    from_html = set(re.findall(r'<img src="([^"]+)"', page))
    assert from_md == from_html
    return from_md


def assert_valid_pngs(folder: Path, names) -> None:
    for name in names:
        assert not Path(name).is_absolute() and name.startswith("figures/"), name
        path = folder / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size[0] > 50 and image.size[1] > 50, (name, image.size)


def test_report_of_runs_without_fid(records, tmp_path):
    path = write_report(records, tmp_path / "report")
    folder = path.parent
    assert path == folder / "report.html"
    md = (folder / "report.md").read_text()
    assert "Runs without FID" in md and "FID on" not in md
    assert "| hidden_dim=16,latent_dim=8 | 2 |" in md  # one row per setting, 2 runs each
    images = linked_images(folder)
    assert images == {"figures/dynamics.png", "figures/samples.png"}  # defaults: no FID, so no heatmap or FID curves
    assert_valid_pngs(folder, images)
    assert "8 runs of 4 settings" in md


def test_report_with_fid_names_the_extractor_and_draws_every_figure(registry, records, tmp_path):
    records = hand_fid(records)
    suite = grid_suite(figures=list(FIGURES))
    folder = write_report(records, tmp_path / "r", suite, registry=registry).parent
    md = (folder / "report.md").read_text()
    page = (folder / "report.html").read_text()
    assert md.startswith("# S2 test grid") and "Which of latent and hidden size matters?" in md
    assert f"**FID on {EXTRACTOR} features, over seeds (lower is better)**" in md
    assert f"<caption>FID on {EXTRACTOR} features" in page and "<style>" in page
    assert "Holm-Bonferroni" in md and "best setting 'hidden_dim=32,latent_dim=16'" in md
    # latent 16, hidden 32: FIDs 52 and 54 -> mean 53.00 +- 1.41
    assert "| **hidden_dim=32,latent_dim=16** | 2 | 53.00 ± 1.41 |" in md
    images = linked_images(folder)
    expected = {"heatmap", "dynamics", "fid_over_steps", "samples", "class_histograms"}
    assert {Path(name).stem for name in images} >= expected
    assert sum(name.startswith("figures/interpolation-") for name in images) == 4
    assert_valid_pngs(folder, images)
    from PIL import Image

    strip = next(folder / name for name in images if name.startswith("figures/interpolation-"))
    # drawn at 3x: a 28-pixel digit is a speck on a page
    assert Image.open(strip).size == (10 * (3 * 28 + 2) + 2, 2 * (3 * 28 + 2) + 2)
    summary = store.read_csv(folder / "summary.csv")
    assert [row["setting"] for row in summary] == [f"hidden_dim={h},latent_dim={l}" for l in (8, 16) for h in (16, 32)]
    assert {row["fid_extractor"] for row in summary} == {EXTRACTOR}


def test_heatmap_cells_of_a_2x2_grid(records):
    records = hand_fid(records)
    (table,) = tables_for(records, grid_suite())
    cells = grid_cells(table, records, "hidden_dim", "latent_dim")
    # mean of seeds 0 and 1: 100 - hidden - latent + 1
    assert {key: value[0] for key, value in cells.items()} == {
        (h, l): pytest.approx(101.0 - h - l) for l in (8, 16) for h in (16, 32)
    }
    assert all(n == 2 for _, _, n in cells.values())
    from gbench.report.plots import heatmap_matrix

    xs, ys, matrix = heatmap_matrix(cells)
    assert (xs, ys) == ([16, 32], [8, 16])
    assert matrix.tolist() == [[pytest.approx(77.0), pytest.approx(61.0)], [pytest.approx(69.0), pytest.approx(53.0)]]


def test_terminal_tables_match_the_report(records):
    from rich.console import Console

    tables = report_tables(hand_fid(records), grid_suite())
    console = Console(record=True, width=250)
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert EXTRACTOR in text and "Holm-Bonferroni" in text and "53.00 ± 1.41" in text


def test_every_comparison_shows_intervals_probability_of_improvement_and_power(records, tmp_path):
    from rich.console import Console

    records = hand_fid(records)
    folder = write_report(records, tmp_path / "r", grid_suite()).parent
    md = (folder / "report.md").read_text()
    for header in ("Δ FID [Welch 95%]", "boot 95%", "P(better) [95%]", "p adj.", "MDD", "seeds", "verdict"):
        assert f" {header} |" in md
    assert "Mann-Whitney U" in md and "80% power" in md
    summary = {row["setting"]: row for row in store.read_csv(folder / "summary.csv")}
    # against the best (latent 16, hidden 32: FIDs 52, 54): latent 8 hidden 16 has FIDs 76, 78, every seed worse
    worst = summary["hidden_dim=16,latent_dim=8"]
    assert float(worst["fid_diff"]) == pytest.approx(24.0) and float(worst["p_better"]) == 0.0
    assert float(worst["fid_diff_welch_low"]) < 24.0 < float(worst["fid_diff_welch_high"])
    assert worst["verdict"] in ("higher FID", "too few seeds") and int(worst["seeds_needed"]) >= 2
    console = Console(record=True, width=300)
    for table in report_tables(records, grid_suite()):
        console.print(table)
    text = console.export_text()
    assert "P(better)" in text and "MDD" in text


def test_bad_figure_names_and_empty_input_are_one_line_errors(records, tmp_path):
    with pytest.raises(
        GbenchError, match=r"unknown figure 'heatmapp' \(did you mean 'heatmap'\?\); valid figures: heatmap, dynamics"
    ):
        write_report(records, tmp_path / "x", grid_suite(figures=["heatmapp"]))
    with pytest.raises(GbenchError, match="no runs to report on"):
        write_report([], tmp_path / "y")
    assert check_figures(["fid_curves", "samples", "classes"]) == ["fid_over_steps", "samples", "class_histograms"]


def test_the_report_library_never_loads_plugins(records, tmp_path, monkeypatch):
    import gbench.plugins.loading

    def refuse(*args, **kwargs):
        raise AssertionError("library code loaded plugins; the caller passes registry=")

    monkeypatch.setattr(gbench.plugins.loading, "load_plugins", refuse)
    folder = write_report(hand_fid(records), tmp_path / "r", grid_suite(figures=list(FIGURES))).parent
    md = (folder / "report.md").read_text()
    assert (
        "Not drawn: interpolation: rebuilding a generator needs the plugins' registry; pass registry= to write_report"
        in md
    )
    assert "against the uniform distribution (no plugin registry was given" in md
    assert "figures/class_histograms.png" in linked_images(folder)


def _suite_labelled_copy(out, folder):
    rows = store.read_results(out)
    for index, row in enumerate(rows):
        row["suite"] = "alpha" if index < 4 else "beta"
    store.write_csv(folder / "results.csv", rows)
    for row in rows:
        (folder / row["run_id"]).symlink_to(out / row["run_id"])


def test_a_module_that_ships_with_gbench_is_never_treated_as_optional(out, tmp_path):
    # gbench report once caught ImportError around gbench.studies.sweep.suite and went on without the suite:
    # a broken install must fail loudly instead of writing a report that silently lacks it
    _suite_labelled_copy(out, tmp_path)
    code = (
        "import sys; sys.modules['gbench.studies.sweep.suite'] = None; "
        "from gbench.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", code, "report", str(tmp_path), "-o", str(tmp_path / "reports")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "import of gbench.studies.sweep.suite halted" in result.stderr, result.stderr
    assert not (tmp_path / "reports").exists()


def test_report_command_groups_by_suite(out, tmp_path):
    rows = store.read_results(out)
    for index, row in enumerate(rows):
        row["suite"] = "alpha" if index < 4 else "beta"
    store.write_csv(tmp_path / "results.csv", rows)
    for row in rows:
        (tmp_path / row["run_id"]).symlink_to(out / row["run_id"])
    result = run_cli("report", str(tmp_path), "-o", str(tmp_path / "reports"))
    assert result.returncode == 0, result.stderr
    assert "Runs without FID" in result.stdout
    for suite in ("alpha", "beta"):
        md = (tmp_path / "reports" / suite / "report.md").read_text()
        assert md.startswith(f"# gbench report: {suite}") and "4 runs of" in md
        assert_valid_pngs(tmp_path / "reports" / suite, linked_images(tmp_path / "reports" / suite))
    assert_one_line_error(run_cli("report", str(tmp_path), "--suite", "gamma"), "'gamma'", "alpha, beta")


def test_report_command_on_missing_or_empty_folders(tmp_path):
    assert_one_line_error(run_cli("report", str(tmp_path / "nope")), "does not exist")
    store.write_csv(tmp_path / "results.csv", [], columns=["run_id", "status"])
    assert_one_line_error(run_cli("report", str(tmp_path)), "holds no runs")
    assert_one_line_error(run_cli("report", "--storage", "sqlite:///x.db"), "--study-name")


def test_interpolate_writes_a_strip_of_the_expected_size(out, tmp_path):
    run_dir = next(p for p in sorted(out.iterdir()) if (p / "generator.pt").is_file())
    strip = tmp_path / "strip.png"
    result = run_cli("interpolate", str(run_dir), "-o", str(strip), "--steps", "6", "--seed", "3")
    assert result.returncode == 0, result.stderr
    with Image.open(strip) as image:
        # two rows (alpha 0..1, alpha -1..2) of 6 images of 28 px with 2 px padding
        assert image.size == (6 * 30 + 2, 2 * 30 + 2)
        levels = image.convert("L").getcolors(256)
    assert levels is not None and len(levels) > 10  # images, not a blank canvas
    assert_one_line_error(run_cli("interpolate", str(tmp_path)), "not a finished gbench run folder")


def test_interpolation_ends_are_the_two_latent_vectors(registry, out):
    import torch

    from gbench.report.interpolation import interpolation_images
    from gbench.training.runner import load_run

    run_dir = next(p for p in sorted(out.iterdir()) if (p / "generator.pt").is_file())
    _, nets = load_run(run_dir, registry)
    images, alphas = interpolation_images(nets.generator, nets.latent_dim, steps=10, seed=5)
    assert images.shape == (20, 1, 28, 28)
    assert alphas[:10] == pytest.approx([i / 9 for i in range(10)]) and alphas[10:] == pytest.approx(
        [-1 + i / 3 for i in range(10)]
    )
    ends = torch.randn(2, nets.latent_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = nets.generator(ends)
    assert torch.allclose(images[0], expected[0], atol=1e-5) and torch.allclose(images[9], expected[1], atol=1e-5)
    # alpha 0 and 1
    assert torch.allclose(images[13], expected[0], atol=1e-5) and torch.allclose(images[16], expected[1], atol=1e-5)


# --- the study suites


SUITES = sorted((REPO / "benchmarks" / "suites").glob("*.toml"))


def test_there_is_a_suite_per_study():
    names = {path.stem for path in SUITES}
    assert {
        "s1_mlp_capacity",
        "s2_latent_hidden_2x2",
        "s2_latent_hidden_6x6",
        "s3_dynamics",
        "s4_interpolation",
        "s5_mode_collapse",
        "s6_fashion",
    } <= names


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_suite_files_use_known_keys_figures_and_hyperparameters(path):
    from gbench.studies.sweep.suite import load_registry, load_suite

    registry = load_registry(load_suite(path, check=False))  # the installed plugins and the suite's target
    data = tomllib.loads(path.read_text())
    suite = data["suite"]
    if (
        "budget" in suite
    ):  # a reduced suite holds only what differs from its full one (checked on its own) and load_suite merges them
        assert (
            {"name", "title", "full"} <= set(suite)
            and set(data) <= {"suite", "base", "claims", "search"}
            and set(data.get("base", {})) <= CONFIG_FILE_KEYS
        )
        assert (path.parent / suite["full"]).is_file() and 0 < suite["budget"] <= 1
        return
    assert {"name", "title", "question", "seeds"} <= set(suite) and suite["seeds"]
    check_figures(suite.get("figures"), where=path.name)
    run_keys = CONFIG_FILE_KEYS - {"seeds", "out"}
    assert set(data["base"]) <= run_keys and set(data["quick"]) <= run_keys
    assert "steps" in data["quick"] and data["quick"]["steps"] <= 40
    variants = [{k: v for k, v in variant.items() if k != "name"} for variant in data.get("variants", [])]
    if "grid" in data:
        assert not variants and len(data["grid"]) == 2
        variants = [{"params": {axis: value}} for axis, values in data["grid"].items() for value in values]
    else:
        names = [variant["name"] for variant in data["variants"]]
        assert len(names) == len(set(names)) and suite.get("baseline", names[0]) in names
    checked = 0
    for variant in variants:
        assert set(variant) <= run_keys
        settings = {**data["base"], **variant}
        params = {**data["base"].get("params", {}), **variant.get("params", {})}
        if "batch_size" in settings:
            params["batch_size"] = settings["batch_size"]
        registry.dataset(settings.get("dataset", "mnist"))
        config = RunConfig(
            architecture=settings["architecture"],
            loss=settings.get("loss", "non-saturating"),
            schedule=settings.get("schedule", "k-steps"),
        )
        resolve_params(registry, config, params)
        checked += 1
    assert checked == len(variants)


def test_suite_files_load_with_gbench_suite():
    # ships with gbench: a failed import fails the test
    from gbench.studies.sweep.suite import load_registry, load_suite

    for path in SUITES:
        # each suite's registry: the installed plugins and its target (S7's, docs/examples/pacgan.py, adds
        # architectures)
        suite = load_suite(path, load_registry(load_suite(path, check=False)))
        assert suite.name == tomllib.loads(path.read_text())["suite"]["name"]
        assert check_figures(suite.figures, where=path.name)


def test_report_of_really_evaluated_runs(registry, tmp_path):
    from gbench.evaluation.extractors import lenet_weights_path

    # shipped with gbench: a lost weights file fails here instead of skipping
    assert lenet_weights_path("lenet-mnist").is_file(), lenet_weights_path("lenet-mnist")
    cache = DataCache()
    for seed in (0, 1):  # one evaluation per run, at the end: it lands in the last history row
        config = RunConfig(
            architecture="mlp",
            seed=seed,
            steps=20,
            train_limit=2000,
            log_every=5,
            device="cpu",
            eval=EvalOptions(samples=200),
        )
        config = dataclasses.replace(config, params=resolve_params(registry, config, {"hidden_dim": 32}))
        execute(config, registry, tmp_path / "runs", cache=cache)
    records = load_local(tmp_path / "runs")
    extractor = records[0].row["fid_extractor"]
    assert re.fullmatch(r"lenet-mnist@[0-9a-f]{8}", extractor)
    suite = SimpleNamespace(name="evaluated", figures=["fid_over_steps", "class_histograms", "samples"])
    folder = write_report(records, tmp_path / "report", suite, registry=registry).parent
    md = (folder / "report.md").read_text()
    # every FID names its extractor and count
    assert f"**FID on {extractor} features, 200 samples, over seeds (lower is better)**" in md
    assert "Not drawn" not in md
    images = linked_images(folder)
    assert images == {"figures/fid_over_steps.png", "figures/class_histograms.png", "figures/samples.png"}
    assert_valid_pngs(folder, images)


def test_eleven_settings_get_ten_distinct_hues_then_their_light_pairs():
    from matplotlib import colormaps

    from gbench.report.plots import colors

    palette = colors(11)
    assert len(set(palette[:10])) == 10 and palette[:10] == [colormaps["tab20"](2 * i) for i in range(10)]
    # the light blue of the first setting's dark blue, not a neighbour's look-alike
    assert palette[10] == colormaps["tab20"](1)


def test_a_small_heatmaps_title_fits_its_figure():
    # A 2 x 2 grid's heatmap is 4.4 inches wide: S2's title
    # ("mean FID over seeds (lenet-mnist@... features, 10,000 samples)") was clipped
    import numpy as np

    from gbench.report.plots import fit_title, new_figure

    title = "mean FID over seeds (lenet-mnist@712ee890 features, 10,000 samples)"

    def right_edge(text: str) -> tuple[float, float]:
        fig = new_figure(4.4, 3.2)
        ax = fig.add_subplot()
        fig.colorbar(ax.imshow(np.zeros((2, 2))), ax=ax)
        shown = ax.set_title(text, fontsize=10)
        fig.canvas.draw()
        extent = shown.get_window_extent()
        return extent.x0, fig.bbox.x1 - extent.x1

    assert min(right_edge(title)) < 0  # as it was: wider than the figure
    assert min(right_edge(fit_title(title, 4.4))) >= 0
    assert fit_title("short", 4.4) == "short"


@pytest.mark.parametrize("shown", [64, 16])
def test_a_sample_tiles_title_fits_its_tile(shown):
    # S8's 32 tiles: "cdcgan-proj-ema-fashion (seed 0)" ran into its neighbours' titles
    from gbench.report.plots import _sample_tile, new_figure, tile_title

    width, _ = _sample_tile(shown)
    names = ["cdcgan-proj-ema-fashion (seed 0)", "cdcgan-acgan-ema-fashion-long-name (seed 4)", "mlp (seed 0)"]
    names.append("latent_dim=100,hidden_dim=128,d_steps=5 (seed 0)")
    for name in names:
        text, size = tile_title(name, shown)
        fig = new_figure(width, width)
        shown_title = fig.add_subplot().set_title(text, fontsize=size)
        fig.canvas.draw()
        assert shown_title.get_window_extent().width <= fig.bbox.width, (name, text)
        assert text.replace("\n", "").replace(" ", "") == name.replace(" ", "")  # every character kept, in order
        assert "(seed" not in text.replace("(seed ", "")  # the seed is never split from its number
    assert tile_title("mlp (seed 0)", shown) == ("mlp (seed 0)", 8 if shown == 64 else 7)


def test_sample_grid_of_36_settings_stays_small_and_shows_16_samples_each(records, tmp_path):
    """A 6 x 6 study's samples figure was a 4.3 MB RGBA PNG; now grayscale, 16 samples per setting."""
    from gbench.report import plots

    pngs = [record.run_dir / "samples.png" for record in records]
    items = [(f"latent_dim={i},hidden_dim={i} (seed 0)", pngs[i % len(pngs)]) for i in range(36)]
    path = plots.sample_grid(items, tmp_path / "samples.png")
    with Image.open(path) as image:
        # six tiles across, each at least its 122 source pixels
        assert image.mode == "L" and image.size[0] >= 6 * 122, image.size
    assert path.stat().st_size < 1_000_000, path.stat().st_size
    with Image.open(pngs[0]) as image:
        full = np.asarray(image.convert("L"))
    assert full.shape == (242, 242)  # 8 x 8 digits of 28 pixels, 2 of padding
    assert plots._crop_samples(full, 16).shape == (122, 122)  # the top-left 4 x 4 digits
    assert (plots._crop_samples(full, 16) == full[:122, :122]).all()
    assert plots._crop_samples(full, 64) is full
    assert plots._crop_samples(full[:100], 16).shape == (100, 242)  # not 8 x 8: shown whole
    few = plots.sample_grid(items[:4], tmp_path / "few.png")
    with Image.open(few) as image:
        assert image.mode == "L" and image.size[0] >= 2 * 242


def test_report_caption_says_how_many_samples_each_setting_shows(records, tmp_path):
    many = []
    for index in range(20):
        record = copy.deepcopy(records[index % len(records)])
        record.row["latent_dim"] = 100 + index  # 20 settings
        record.seed = 0
        many.append(record)
    md = (write_report(many, tmp_path / "many").parent / "report.md").read_text()
    assert "16 samples from fixed noise" in md and "the first 16 of the 64" in md
    md = (write_report(records, tmp_path / "few").parent / "report.md").read_text()
    assert "64 samples from fixed noise at the end of training, the lowest seed of each setting." in md


def test_a_conditional_runs_tile_is_its_whole_grid_where_unconditional_tiles_are_cropped(tmp_path):
    # a conditional grid of 8 classes is 8 x 8 too: only its name, not its size, may keep it whole (one row per class)
    from gbench.report import plots

    pixels = np.full((242, 242), 255, dtype=np.uint8)
    pixels[122:, 122:] = 0  # dark only where a crop to the top-left 4 x 4 samples cuts it off
    png = tmp_path / "samples.png"
    Image.fromarray(pixels).save(png)
    items = [(f"setting-{i} (seed 0)", png) for i in range(plots.SAMPLE_GRID_FULL + 1)]  # small tiles: 16 shown

    def dark(whole: set[str]) -> int:
        path = plots.sample_grid(items, tmp_path / f"grid-{len(whole)}.png", whole=whole)
        with Image.open(path) as image:
            return int((np.asarray(image.convert("L")) < 64).sum())

    cropped, kept = dark(set()), dark({items[0][0]})
    assert kept - cropped > 40 * 40, (cropped, kept)  # the whole tile's dark quarter is drawn, about 60 x 60 pixels
