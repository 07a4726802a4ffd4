"""One table of a report, drawn alike as a rich table (the terminal), Markdown and HTML, and the number formats its
cells use.

:mod:`gbench.report.grids` fills :class:`Grid` from a study's statistics; this module knows nothing of statistics.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

from gbench.plugins.columns import format_number

#: Headers of columns that hold text, aligned left wherever they stand.
TEXT_HEADERS = ("status", "extractor", "run", "verdict")


@dataclass
class Grid:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    styles: list[str | None] = field(default_factory=list)  # per row: None, "reference", "diverged", "collapsed"
    left: int = 1  # leading columns aligned left (and the text columns named in TEXT_HEADERS)

    def is_left(self, index: int) -> bool:
        return index < self.left or self.headers[index] in TEXT_HEADERS

    def rich(self):
        from rich.table import Table

        table = Table(title=self.title, caption=self.caption or None, header_style="bold", caption_justify="left")
        for index, header in enumerate(self.headers):
            table.add_column(header, justify="left" if self.is_left(index) else "right", overflow="fold")
        for row, style in zip(self.rows, self.styles):
            table.add_row(*row, style={"reference": "bold", "diverged": "red", "collapsed": "yellow"}.get(style or ""))
        return table

    def markdown(self) -> str:
        cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
        lines = [f"**{cell(self.title)}**", ""] if self.title else []
        lines.append("| " + " | ".join(cell(h) for h in self.headers) + " |")
        lines.append("|" + "|".join(":---" if self.is_left(i) else "---:" for i in range(len(self.headers))) + "|")
        for row, style in zip(self.rows, self.styles):
            cells = [cell(c) for c in row]
            if style == "reference":
                cells[0] = f"**{cells[0]}**"
            lines.append("| " + " | ".join(cells) + " |")
        if self.caption:
            lines += ["", self.caption]
        return "\n".join(lines)

    def html(self) -> str:
        out = ['<div class="scroll"><table>']  # a wide table scrolls inside the page instead of running off it
        if self.title:
            out.append(f"<caption>{html.escape(self.title)}</caption>")
        out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in self.headers) + "</tr></thead><tbody>")
        for row, style in zip(self.rows, self.styles):
            cls = f' class="{style}"' if style else ""
            out.append(
                f"<tr{cls}>"
                + "".join(
                    f"<td{'' if self.is_left(i) else ' class=num'}>{html.escape(c)}</td>" for i, c in enumerate(row)
                )
                + "</tr>"
            )
        out.append("</tbody></table></div>")
        if self.caption:
            out.append(f'<p class="caption">{html.escape(self.caption)}</p>')
        return "\n".join(out)


def format_value(value: Any, spec: str = ".3f") -> str:
    """A number by ``spec``; "-" when missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format_number(value, spec)


def format_p(value: float | None) -> str:
    """A p-value with the digits that matter: 0.034, 0.0021, <0.0001."""
    if value is None:
        return "-"
    return "<0.0001" if value < 1e-4 else f"{value:.2g}" if value < 0.01 else f"{value:.3f}"
