"""A finished run as reports and statistics see it, wherever it was stored.

A sweep's runs live either in a local results folder (``OUT/results.csv``
plus each run's ``metrics.csv``) or, for a sweep spread over machines, in
the user attributes of its Optuna trials. Both become :class:`RunRecord`
objects, so :mod:`gbench.report.build` never cares which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbench.results import schema, store

__all__ = ["RunRecord", "load_local"]  # the public API (docs/api.md)


@dataclass
class RunRecord:
    variant: str  # the suite variant's name ("" for a plain `gbench run`)
    seed: int
    row: dict[str, Any]  # the results row (summary.json): config columns and final metrics
    history: list[dict[str, Any]] = field(default_factory=list)  # metrics.csv rows
    run_dir: Path | None = None  # local folder with samples.png and generator.pt, when there is one

    def to_json(self) -> str:
        return json.dumps(
            schema.json_safe({"variant": self.variant, "seed": self.seed, "row": self.row, "history": self.history})
        )

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        data = json.loads(text)
        return cls(variant=data["variant"], seed=int(data["seed"]), row=data["row"], history=data["history"])


def typed_value(value: Any) -> Any:
    """A value read from results.csv (text) with its type back:
    "" -> None, "3" -> 3, "0.5" -> 0.5, other text as it is."""
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def load_local(out: str | Path, suite: str | None = None) -> list[RunRecord]:
    """Records of the runs in a results folder, those of one suite when given."""
    out = Path(out)
    records = []
    for raw in store.read_results(out):
        row = {key: typed_value(value) for key, value in raw.items()}
        if suite is not None and row.get("suite") != suite:
            continue
        run_dir = out / str(row["run_id"])
        history = [{k: typed_value(v) for k, v in line.items()} for line in store.read_csv(run_dir / "metrics.csv")]
        records.append(
            RunRecord(
                variant=str(row.get("variant") or ""),
                seed=int(row.get("seed") or 0),
                row=row,
                history=history,
                run_dir=run_dir if run_dir.is_dir() else None,
            )
        )
    return records
