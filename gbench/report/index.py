"""A study's answer in a few sentences, and one index page for a folder of studies.

:func:`answer` reads a study table (and the checked claims) and says, from the
numbers alone, which setting has the lowest mean FID, which settings differ
from the reference beyond seed noise and which do not, and how the claims
fared. ``gbench report`` writes it into ``study.json`` beside each report;
:func:`write_index` gathers every ``*/study.json`` under a folder into
``index.md`` and ``index.html``, one entry per study (question, answer, link).
"""

from __future__ import annotations

import html
import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gbench.analysis.claims import ClaimResult
from gbench.analysis.comparisons import StudyTable
from gbench.errors import GbenchError
from gbench.results import store

STUDY_FILE = "study.json"


def _fid(row: Any) -> str:
    spread = f" ± {row.fid.sd:.1f}" if row.fid.sd is not None else ""
    return f"{row.fid.mean:.1f}{spread}"


#: An answer names at most this many settings in one list; longer lists give a count and the first few.
NAMES_SHOWN = 6


def _names(names: Sequence[str]) -> str:
    if len(names) <= NAMES_SHOWN:
        return ", ".join(names)
    return f"{len(names)} settings ({', '.join(names[:3])}, ...)"


def _marginal(table: StudyTable, axis: str) -> dict[str, float]:
    """Mean of the settings' mean FIDs for each value of a grid axis (averaged over the other axes), in value order."""
    by_value: dict[str, list[float]] = {}
    for row in table.settings:
        if row.fid.mean is not None and axis in row.params:
            by_value.setdefault(str(row.params[axis]), []).append(row.fid.mean)
    order = sorted(by_value, key=lambda v: (float(v), v) if v.replace(".", "", 1).lstrip("-").isdigit() else (math.inf, v))
    return {value: sum(by_value[value]) / len(by_value[value]) for value in order}


def _grid_sentence(table: StudyTable, axes: Sequence[str]) -> str:
    spans = []
    for axis in axes:
        means = _marginal(table, axis)
        if len(means) >= 2:
            spans.append((max(means.values()) - min(means.values()), axis, means))
    if not spans:
        return ""
    parts = [f"by {axis}: {', '.join(f'{v} {m:.1f}' for v, m in means.items())} (spread {spread:.1f})" for spread, axis, means in spans]
    widest = max(spans)[1]
    return f"Mean FID over the grid {'; '.join(parts)}; {widest} moves FID most."


def answer(table: StudyTable | None, claims: Sequence[ClaimResult] = (), axes: Sequence[str] = ()) -> str:
    """The study's answer in plain sentences, from its FID table, its grid axes (if a grid) and checked claims."""
    sentences: list[str] = []
    if table is not None and table.extractor is not None:
        rows = [row for row in table.settings if row.fid.mean is not None]
        if rows:
            best = min(rows, key=lambda row: row.fid.mean if row.fid.mean is not None else math.inf)
            sentences.append(f"Lowest mean FID ({table.fid_label}): {best.name}, {_fid(best)} over {best.fid.n} seeds.")
        grid = _grid_sentence(table, axes)
        if grid:
            sentences.append(grid)
        if table.reference is not None and table.tests:
            reference = table.setting(table.reference)
            lower = [row.name for row in table.settings if row.verdict == "lower FID"]
            higher = [row.name for row in table.settings if row.verdict == "higher FID"]
            neither = [row.name for row in table.settings if row.p_adjusted is not None and not row.significant]
            named = "" if reference.name == table.reference_kind else f" {reference.name}"
            against = f"the {table.reference_kind}{named} ({_fid(reference)})"
            parts = []
            if lower:
                parts.append(f"lower than {against}: {_names(lower)}")
            if higher:
                parts.append(f"higher{'' if lower else f' than {against}'}: {_names(higher)}")
            if neither:
                parts.append(f"not distinguishable from {'it' if lower or higher else against}: {_names(neither)}")
            sentences.append(f"FID beyond seed noise (Welch, {table.correction}, 5%), {'; '.join(parts)}.")
        collapsed = [row.name for row in table.settings if row.status.get("collapsed") or row.status.get("diverged")]
        if collapsed:
            sentences.append(f"Collapsed or diverged runs in: {_names(collapsed)}.")
    if claims:
        verdicts = Counter(result.verdict for result in claims)
        sentences.append("Claims checked: " + ", ".join(f"{n} {verdict}" for verdict, n in verdicts.most_common()) + ".")
    return " ".join(sentences) or "No FID to compare."


def study_entry(title: str, question: str, answer_text: str, runs: int, claims: Sequence[ClaimResult]) -> dict[str, Any]:
    """What study.json holds: enough for the index page, no statistics to recompute."""
    return {
        "title": title,
        "question": question,
        "answer": answer_text,
        "runs": runs,
        "claims": [{"claim": r.claim.text, "verdict": r.verdict, "p_adjusted": r.p_adjusted} for r in claims],
    }


def write_index(folder: str | os.PathLike) -> Path:
    """index.md and index.html for every report under ``folder`` (each a sub-folder with study.json); index.html's path."""
    folder = Path(folder)
    entries = []
    for path in sorted(folder.glob(f"*/{STUDY_FILE}")):
        try:
            data = store.read_json(path)
        except GbenchError as error:
            raise GbenchError(f"{path}: {error}; write that report again with gbench report") from None
        if not isinstance(data, dict) or not isinstance(data.get("title"), str):
            raise GbenchError(f"{path} is not a study summary gbench wrote; write that report again with gbench report")
        entries.append((path.parent.name, data))
    if not entries:
        raise GbenchError(f"no reports under {str(folder)!r} (none of its sub-folders holds {STUDY_FILE}); write them with gbench report RUNS -o {folder}/NAME")
    lead = f"{len(entries)} {'study' if len(entries) == 1 else 'studies'}; each link opens the full report (tables over seeds, tests, figures)."
    md = ["# Studies", "", lead, ""]
    body = ["<h1>Studies</h1>", f'<p class="meta">{html.escape(lead)}</p>']
    for name, data in entries:
        question, text = str(data.get("question") or ""), str(data.get("answer") or "")
        md += [f"## [{data['title']}]({name}/report.md)", ""]
        if question:
            md += [f"> **Question:** {question}", ""]
        md += [f"**Answer ({data.get('runs', '?')} runs):** {text}", ""]
        body += [f'<h2><a href="{html.escape(name)}/report.html">{html.escape(data["title"])}</a></h2>']
        if question:
            body.append(f'<p class="question"><b>Question:</b> {html.escape(question)}</p>')
        body.append(f"<p><b>Answer ({html.escape(str(data.get('runs', '?')))} runs):</b> {html.escape(text)}</p>")
    store.atomic_write_text(folder / "index.md", "\n".join(md))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Studies</title><style>'
        'body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 900px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; }'
        " h2 { font-size: 1.2em; margin-top: 1.6em; } .question { background: #f4f6fa; border-left: 4px solid #4a6fa5; padding: 0.4em 0.8em; } .meta { color: #555; }"
        "</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    store.atomic_write_text(folder / "index.html", page)
    return folder / "index.html"
