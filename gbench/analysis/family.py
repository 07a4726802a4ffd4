"""One Holm family per report: every comparison the report makes, results table and claims together.

A study table adjusts its own comparisons and the claims adjust theirs, so the
same pair could carry two adjusted p-values (S2 at half budget: 0.019 over the
table's 3 tests, 0.055 over the 5 claims) and two verdicts. :func:`adjust_report`
gathers the report's tested hypotheses, counts a claim that compares the same
two settings on the same FID as a table row once (it is the same test on the
same values), Holm-adjusts them together and writes the one adjusted p back to
every row and claim, with a sentence naming the family.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from gbench.analysis.claims import ClaimResult
from gbench.analysis.comparisons import StudyTable
from gbench.analysis.stats import holm


def _table_of(tables: Sequence[StudyTable], a: str, b: str) -> StudyTable | None:
    """The FID table in which ``a`` is compared with ``b`` (one is its reference), if any."""
    for table in tables:
        names = {row.name for row in table.settings}
        if table.extractor is not None and table.reference in (a, b) and {a, b} <= names:
            return table
    return None


def adjust_report(tables: Sequence[StudyTable], claims: Sequence[ClaimResult]) -> int:
    """Holm-adjust the tables' comparisons and the claims as one family; its size (distinct hypotheses tested)."""
    p_of: dict[Hashable, float] = {}
    members: dict[Hashable, list[Any]] = {}
    table_tests = claim_tests = shared = 0
    for table in tables:
        for row in table.settings:
            if row.p is None or table.reference is None:
                continue
            row_key: Hashable = ("fid", table.extractor, table.fid_samples, frozenset((row.name, table.reference)))
            p_of.setdefault(row_key, row.p)
            members.setdefault(row_key, []).append(row)
            table_tests += 1
    for index, result in enumerate(claims):
        if result.p is None:
            continue
        claim = result.claim
        key: Hashable = ("claim", index)
        # a claim on a pair of the table tests the table's hypothesis, unless a margin moves it
        if claim.metric == "fid" and claim.against_setting and not claim.with_margin:
            same = _table_of(tables, claim.setting, str(claim.other))
            if same is not None:
                key = ("fid", same.extractor, same.fid_samples, frozenset((claim.setting, str(claim.other))))
                shared += key in p_of
        p_of.setdefault(key, result.p)
        members.setdefault(key, []).append(result)
        claim_tests += 1
    keys = list(p_of)
    size = len(keys)
    text = (
        f"the {size} distinct comparison{'s' if size != 1 else ''} of this report ({table_tests} in the results "
        f"table, {claim_tests} claim{'s' if claim_tests != 1 else ''}"
    )
    text += (
        f"; {shared} claim{'s' if shared != 1 else ''} test{'s' if shared == 1 else ''} a pair of the table and "
        f"count{'s' if shared == 1 else ''} once)"
        if shared
        else ")"
    )
    for key, adjusted in zip(keys, holm([p_of[k] for k in keys])):
        for member in members[key]:
            member.p_adjusted, member.family = adjusted, size
    for table in tables:
        table.family_text = text
        table.tests = sum(row.p is not None for row in table.settings)
    for result in claims:
        result.family_text = text
    return size
