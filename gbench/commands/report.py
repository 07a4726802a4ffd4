"""gbench report OUT: tables over seeds, tests and figures of a study, as Markdown and HTML."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from gbench.commands._options import add_verbosity_options
from gbench.commands._progress import log_line
from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.results import display

HELP = (
    "Summarise runs over seeds (mean, sd, 95% CI, Welch tests with Holm "
    "correction) and write report.md/report.html with figures."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_verbosity_options(parser)
    parser.add_argument(
        "out", nargs="?", default=None, metavar="OUT", help="results folder (default runs; not needed with --storage)"
    )
    parser.add_argument("--suite", help="report only this suite's runs (results.csv's suite column)")
    parser.add_argument(
        "--suite-file",
        metavar="FILE.toml",
        help=(
            "the suite definition (title, question, baseline, grid, figures); "
            "default: found by name in benchmarks/suites"
        ),
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="read the runs of a sweep from its Optuna storage (e.g. postgresql://... or sqlite:///sweep.db)",
    )
    parser.add_argument("--study-name", help="the sweep's study name in --storage")
    parser.add_argument(
        "-o", "--output", metavar="DIR", help="folder for report.md, report.html and figures/ (default OUT/report)"
    )
    parser.add_argument(
        "--index",
        metavar="DIR",
        help=(
            "write DIR/index.md and DIR/index.html listing every report in DIR's "
            "sub-folders (question, answer, link); with OUT, after its report"
        ),
    )


def _suite_name_in(path: Path) -> str | None:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    suite = data.get("suite")
    return suite.get("name") if isinstance(suite, dict) else None


def suite_folders() -> list[Path]:
    """Where suites are looked for by name, and where a mistyped suite
    path finds its closest match: here and in gbench's source tree."""
    return list(
        dict.fromkeys(
            [Path.cwd() / "benchmarks" / "suites", Path(__file__).resolve().parents[2] / "benchmarks" / "suites"]
        )
    )


def checked_suite_file(path: str) -> str:
    """A suite file's path as given, when it is a file; else one line with the closest suite file names."""
    from gbench.names import missing_file

    if not Path(path).expanduser().is_file():
        raise missing_file(
            "suite file", path, suite_folders(), example="a suite .toml, e.g. benchmarks/suites/s1_mlp_capacity.toml"
        )
    return path


def find_suite(name: str | None) -> Any:
    """The definition of suite ``name`` from benchmarks/suites
    (here or in gbench's source tree); None when not found."""
    if not name:
        return None
    # ships with gbench: a failed import is a broken install, so it is not caught
    from gbench.studies.sweep.suite import load_suite

    for root in suite_folders():
        for path in sorted(root.glob("*.toml")) if root.is_dir() else []:
            if _suite_name_in(path) == name:
                try:
                    return load_suite(path)
                except GbenchError:
                    return None
    return None


def _from_storage(args: argparse.Namespace) -> list:
    if not args.study_name:
        raise GbenchError("--storage needs --study-name NAME: the sweep's study name (as printed by gbench sweep)")
    from gbench.studies.sweep.sweep import load_records_from_storage  # optuna: only when reading a storage

    records = load_records_from_storage(args.storage, args.study_name)
    if not records:
        raise GbenchError(
            f"study {args.study_name!r} in --storage has no finished runs yet; wait for the sweep or check --study-name"
        )
    return records


def run(args: argparse.Namespace) -> int:
    if args.index and not (args.out or args.storage):
        return _index(Path(args.index))
    from gbench.results.records import load_local
    from gbench.studies.sweep.suite import load_registry, load_suite

    given_suite = load_suite(checked_suite_file(args.suite_file)) if args.suite_file else None
    wanted = args.suite or (getattr(given_suite, "name", None) if given_suite is not None else None)
    if args.storage:
        records = _from_storage(args)
        default_dir = Path(args.out) / "report" if args.out else Path(f"report-{args.study_name}")
    else:
        if args.study_name:
            raise GbenchError(
                "--study-name is only used with --storage URL; give both, or neither to read a local results folder"
            )
        out = Path(args.out or "runs")
        records = load_local(out)
        if not records:
            raise GbenchError(
                f"{str(out / 'results.csv')!r} holds no runs; run `gbench run` or `gbench sweep` with --out {out} first"
            )
        default_dir = out / "report"

    groups: dict[str | None, list] = {}
    for record in records:
        groups.setdefault(record.row.get("suite") or None, []).append(record)
    if wanted is not None:
        if wanted not in groups:
            known = ", ".join(str(name) for name in groups if name) or "none (these runs belong to no suite)"
            raise GbenchError(
                f"no runs of suite {wanted!r} here{suggestion(wanted, [name for name in groups if name])}; suites "
                f"found: {known}"
            )
        groups = {wanted: groups[wanted]}

    from gbench.plugins.loading import load_plugins

    # scipy and matplotlib: only once there is something to report
    from gbench.report.build import write_report

    # loaded once here and passed down, so the figures that need datasets or generators all see this set
    # (a suite with its own target plugin gets the registry its runs were built with)
    installed = load_plugins().registry

    target = Path(args.output) if args.output else default_dir
    for name, group in groups.items():
        suite = (
            given_suite if given_suite is not None and getattr(given_suite, "name", None) == name else find_suite(name)
        )
        folder = target if len(groups) == 1 else target / (name or "runs")
        log_line(f"gbench report: {len(group)} runs{f' of suite {name}' if name else ''} into {folder}")
        registry = load_registry(suite) if getattr(suite, "target", None) else installed
        search = _stored_search(suite, registry, args) if getattr(suite, "search", None) is not None else None
        path = write_report(group, folder, suite, registry=registry, search=search, show=display.stdout.print)
        display.console.print(f"report: {path} (and report.md, figures/ beside it)", highlight=False)
    return _index(Path(args.index)) if args.index else 0


def _stored_search(suite: Any, registry: Any, args: argparse.Namespace) -> Any:
    """A search suite's searches, for the report's "created equal?" section: from --storage, else OUT/sweep.db
    (under the suite's own study name, or its --quick one); None, with a note saying why, where there are none."""
    # optuna: only for a search suite
    from gbench.studies.storage import open_storage
    from gbench.studies.sweep.plan import study_name_for
    from gbench.studies.sweep.search import stored_summary

    if args.storage:
        storage = open_storage(args.storage, Path("sweep.db"), create=False)
        names, where = [args.study_name], f"study {args.study_name!r}"
    else:
        database = Path(args.out or "runs") / "sweep.db"
        if not database.is_file():
            display.note(
                f"note: no {database}, so the report leaves out the searches of suite {suite.name!r}; give the "
                "sweep's --storage URL and --study-name to include them"
            )
            return None
        names = [study_name_for(suite, quick=False), study_name_for(suite, quick=True)]
        storage, where = open_storage(None, database, create=False), str(database)
    for name in names:
        if (summary := stored_summary(suite, registry, storage, name)) is not None:
            return summary
    display.note(
        f"note: {where} holds no search of suite {suite.name!r}, so the report leaves them out; a sweep run "
        "with --study-name NAME: give --storage sqlite:///OUT/sweep.db --study-name NAME"
    )
    return None


def _index(folder: Path) -> int:
    from gbench.report.index import write_index

    if not folder.is_dir():
        raise GbenchError(
            f"--index {str(folder)!r} is not a folder; give the folder whose "
            "sub-folders hold the reports, e.g. --index docs/studies"
        )
    path = write_index(folder)
    display.console.print(f"index: {path} (and index.md beside it)", highlight=False)
    return 0
