"""One index page for a folder of studies, from each report's study.json (its answer: gbench.report.answer).

``gbench report`` writes ``study.json`` beside each report;
:func:`write_index` gathers every ``*/study.json`` under a folder into
``index.md`` and ``index.html``: one table, a row per report (question, a
one-line answer, budget, seeds per setting, verdict counts, link), ordered by
study number (S1, S2, ...), by design within a study (S2's 2 x 2, then its 6 x 6) and by budget. The rows are derived
from each report's study.json and summary.csv, so the index of published
reports can be rebuilt without their runs.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from gbench.analysis.claims import ClaimResult
from gbench.analysis.claimtypes import verdict_kind
from gbench.analysis.readiness import NOT_TRAINED
from gbench.errors import GbenchError
from gbench.results import store

STUDY_FILE = "study.json"


@dataclass(frozen=True)
class TableAnswer:
    """What the index needs of one FID table's answer: whose it is, its features, whether it answered at all."""

    name: str | None  # the data set(s) it answers for, where a report answers several apart; None: the one answer
    extractor: str | None  # its FIDs' features: the rows of summary.csv it is drawn from
    trained: bool  # False: the report refused it as not trained enough to answer (gbench.analysis.readiness)
    lead: str = ""  # a study about another metric than FID: its line, before FID's (gbench.report.headline)


def study_entry(
    title: str,
    question: str,
    answer_text: str,
    records: Sequence[Any],
    claims: Sequence[ClaimResult],
    budget: float | None = None,
    answers: Sequence[TableAnswer] = (),
) -> dict[str, Any]:
    """What study.json holds: enough for the index page (with summary.csv beside it), no statistics to recompute."""
    return {
        "title": title,
        "question": question,
        "answer": answer_text,
        "answers": [asdict(part) for part in answers],  # the index's one line, without parsing prose
        "runs": len(records),
        "budget": budget,  # the suite's fraction of its full study's budget; None: the full study
        "claims": [{"claim": r.claim.text, "verdict": r.verdict, "p_adjusted": r.p_adjusted} for r in claims],
    }


def write_index(folder: str | os.PathLike) -> Path:
    """index.md and index.html: one table of every report under ``folder`` (each a sub-folder with study.json and
    summary.csv), ordered by study number, design (title) and budget; index.html's path."""
    folder = Path(folder)
    entries = []
    for path in sorted(folder.glob(f"*/{STUDY_FILE}")):
        try:
            data = store.read_json(path)
        except GbenchError as error:
            raise GbenchError(f"{path}: {error}; write that report again with gbench report") from None
        if not isinstance(data, dict) or not isinstance(data.get("title"), str):
            raise GbenchError(f"{path} is not a study summary gbench wrote; write that report again with gbench report")
        summary = path.parent / "summary.csv"
        try:
            settings = store.read_csv(summary) if summary.is_file() else []
        except GbenchError as error:
            raise GbenchError(f"{summary}: {error}; write that report again with gbench report") from None
        entries.append(index_row(path.parent.name, data, settings))
    if not entries:
        raise GbenchError(
            f"no reports under {str(folder)!r} (none of its sub-folders holds {STUDY_FILE}); write them with gbench "
            f"report RUNS -o {folder}/NAME"
        )
    entries.sort(key=lambda entry: entry.order)
    store.atomic_write_text(folder / "index.md", index_markdown(entries))
    store.atomic_write_text(folder / "index.html", index_html(entries))
    return folder / "index.html"


# ---------------------------------------------------------------------------
# The index table
# ---------------------------------------------------------------------------

#: "S1 (quarter: 50 of 200 epochs). Capacity of ..." -> study, budget words, topic
_TITLE = re.compile(r"^(?P<study>S\d+)\s*(?:\((?P<budget>[^)]*)\))?\.\s*(?P<topic>.*)$")
_FRACTION = re.compile(r"([\d,]+) of ([\d,]+)")
_SHORT_VERDICTS = {
    "lower FID": "lower",
    "higher FID": "higher",
    "not distinguishable from seed noise": "not distinguishable",
}


@dataclass
class IndexRow:
    folder: str
    study: str  # "S1"; "" when the title names none
    topic: str
    question: str
    budget: Fraction  # of the full study's budget
    budget_text: str
    seeds: str  # seeds per setting: "5", or "3-10"
    headline: str  # the answer in one line
    verdicts: str  # the settings' verdict counts; the claims' verdict counts

    @property
    def order(self) -> tuple[float, str, Fraction]:
        # one design's budgets side by side: S2's 2 x 2 at every budget, then its 6 x 6
        number = float(self.study[1:]) if self.study else math.inf
        return number, self.topic, self.budget


def _budget(data: dict[str, Any], words: str | None) -> tuple[Fraction, str]:
    """The fraction of the full budget (study.json's budget, else the title's "N of M"), and how to say it."""
    found = _FRACTION.search(words or "")
    given = data.get("budget")
    if isinstance(given, (int, float)) and not isinstance(given, bool) and 0 < given:
        fraction = Fraction(given).limit_denominator(1000)
    elif found:
        fraction = Fraction(int(found.group(1).replace(",", "")), int(found.group(2).replace(",", "")))
    else:
        fraction = Fraction(1)
    if fraction == 1:
        return fraction, "full"
    said = words.split(":", 1)[-1].strip() if words else "of the full budget"
    return fraction, f"{fraction} ({said})"


def _headlines(settings: list[dict[str, str]], data: dict[str, Any]) -> str:
    """The index's answer: a refused table says so, an answered one gets its FID table's headline; a report over
    several data sets gets one per data set, in its tables' order (study.json's answers)."""
    said = str(data.get("answer") or "")
    refused = said.split(". ", 1)[0] + "."  # the refusal sentence names the budget to run at
    answers = data.get("answers")
    if not isinstance(answers, list) or not answers or not all(isinstance(part, dict) for part in answers):
        # a study.json written before "answers": one answer, read from its first words
        return refused if said.startswith(NOT_TRAINED.capitalize()) else _headline(settings)
    if len(answers) == 1 and not answers[0].get("name"):
        return _answered(settings, answers[0]) if answers[0].get("trained", True) else refused
    return " ".join(
        f"{part.get('name')}: " + (_answered(settings, part) if part.get("trained", True) else f"{NOT_TRAINED}.")
        for part in answers
    )


def _answered(settings: list[dict[str, str]], part: dict[str, Any]) -> str:
    """One answered table's line: the study's own metric first where it asks about another than FID, then FID's."""
    lead = str(part.get("lead") or "")
    fid = _headline(settings, part.get("extractor"))
    return f"{lead}; {fid}" if lead else fid


def _headline(settings: list[dict[str, str]], extractor: str | None = None) -> str:
    """Best setting and the settings that differ from the reference, from summary.csv's rows (the FID table of
    ``extractor``, by default the first)."""
    extractors = [row.get("fid_extractor") for row in settings if row.get("fid_extractor")]
    chosen = extractor or (extractors[0] if extractors else None)
    rows = [row for row in settings if chosen and row.get("fid_extractor") == chosen and row.get("fid_mean")]
    if not rows:
        return "No FID to compare."
    best = min(rows, key=lambda row: float(row["fid_mean"]))
    sd = f" ± {float(best['fid_sd']):.1f}" if best.get("fid_sd") else ""
    parts = [f"lowest FID {best['setting']} ({float(best['fid_mean']):.1f}{sd})"]
    reference, kind = rows[0].get("reference") or "", rows[0].get("reference_kind") or ""
    against = f"the {kind} ({reference})" if kind and kind != reference else f"the {kind or 'reference'}"
    for verdict, word in (("lower FID", "lower than"), ("higher FID", "higher than")):
        names = [row["setting"] for row in rows if row.get("verdict") == verdict]
        if names:
            shown = ", ".join(names) if len(names) <= 3 else f"{len(names)} settings"
            parts.append(f"{word} {against}: {shown}")
    if len(parts) == 1 and any(row.get("verdict") for row in rows if row["setting"] != reference):
        parts.append(f"none differs from {against} beyond seed noise")
    return "; ".join(parts) + "."


def _counts(values: Sequence[str]) -> str:
    return ", ".join(f"{n} {_SHORT_VERDICTS.get(v, v)}" for v, n in Counter(values).most_common())


def index_row(folder: str, data: dict[str, Any], settings: list[dict[str, str]]) -> IndexRow:
    """One study's row of the index, from its study.json (``data``) and summary.csv rows (``settings``)."""
    title = str(data["title"])
    match = _TITLE.match(title)
    study, words, topic = (
        (match.group("study"), match.group("budget"), match.group("topic")) if match else ("", None, title)
    )
    fraction, budget_text = _budget(data, words)
    seeds = sorted({len(str(row.get("seeds") or "").split()) for row in settings if row.get("seeds")})
    seeds_text = "-" if not seeds else str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    verdicts = [row["verdict"] for row in settings if row.get("verdict") and row.get("verdict") != "reference"]
    claims = [verdict_kind(str(claim.get("verdict"))) for claim in data.get("claims") or [] if isinstance(claim, dict)]
    verdict_text = f"settings: {_counts(verdicts) or 'no test'}" + (f"; claims: {_counts(claims)}" if claims else "")
    # a report that cannot answer (gbench.analysis.readiness) says so in the index too, not its lowest FID
    headline = _headlines(settings, data)
    return IndexRow(
        folder, study, topic, str(data.get("question") or ""), fraction, budget_text, seeds_text, headline, verdict_text
    )


_HEADERS = ("study", "question", "budget", "seeds per setting", "answer", "verdicts")
_LEAD = (
    "{n} studies, in study order ({span}), by design and budget within a study; each study links to its full report "
    "(tables over seeds, tests, figures, glossary)."
)


def _lead(rows: Sequence[IndexRow]) -> str:
    """The index's first line; its span of study numbers comes from the rows, not from what was published once."""
    numbered = [row.study for row in rows if row.study]
    span = f"{numbered[0]} to {numbered[-1]}" if len(set(numbered)) > 1 else (numbered[0] if numbered else "none")
    return _LEAD.format(n=len(rows), span=span)


def index_markdown(rows: Sequence[IndexRow]) -> str:
    cell = lambda text: str(text).replace("|", "\\|")
    lines = [
        "# Studies",
        "",
        _lead(rows),
        "",
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "|".join(":---" for _ in _HEADERS) + "|",
    ]
    previous = None
    for row in rows:
        question = "(as above)" if row.question == previous else row.question
        previous = row.question
        study = f"[{cell(' '.join(filter(None, (row.study, row.topic))))}]({row.folder}/report.md)"
        lines.append(
            "| "
            + " | ".join(
                [study, cell(question), cell(row.budget_text), row.seeds, cell(row.headline), cell(row.verdicts)]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


_INDEX_CSS = (
    'body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0.8em; color: #222;'
    " font-size: 12px; line-height: 1.3; }"
    " h1 { font-size: 1.4em; margin: 0 0 0.2em; } .meta { color: #555; margin: 0 0 0.5em; }"
    " table { border-collapse: collapse; width: 100%; } th, td "
    "{ border: 1px solid #ccc; padding: 0.2em 0.4em; vertical-align: top; text-align: left; }"
    " th { background: #eef1f5; } td.question { background: #f4f6fa; width: 22%; } td.answer { width: 30%; } td.seeds "
    "{ text-align: right; }"
)


def index_html(rows: Sequence[IndexRow]) -> str:
    body = ["<h1>Studies</h1>", f'<p class="meta">{html.escape(_lead(rows))}</p>', "<table>"]
    body.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in _HEADERS) + "</tr></thead><tbody>")
    for index, row in enumerate(rows):
        study = html.escape(" ".join(filter(None, (row.study, row.topic))))
        cells = [f'<td><a href="{html.escape(row.folder)}/report.html">{study}</a></td>']
        if (
            index == 0 or rows[index - 1].question != row.question
        ):  # one question cell for a study's consecutive budgets
            span = next(
                (
                    n
                    for n in range(1, len(rows) - index + 1)
                    if index + n == len(rows) or rows[index + n].question != row.question
                ),
                1,
            )
            cells.append(f'<td class="question" rowspan="{span}">{html.escape(row.question)}</td>')
        cells += [
            f"<td>{html.escape(row.budget_text)}</td>",
            f'<td class="seeds">{html.escape(row.seeds)}</td>',
            f'<td class="answer">{html.escape(row.headline)}</td>',
            f"<td>{html.escape(row.verdicts)}</td>",
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    body.append("</tbody></table>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Studies</title><style>{_INDEX_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
