"""A self-contained HTML document builder: figures inlined as base64 PNG/SVG, no network access needed.

Used by the exam report and the study report alike::

    rep = HtmlReport("Exam sub-01")
    rep.heading("Per-vertebra table")
    rep.table(df, caption="PDFF (%) and R2* (1/s) per level")
    rep.figure(fig, caption="Mid-sagittal PDFF with ROIs")
    rep.provenance(prov_dict)
    rep.write(out_dir / "report.html")
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from osteomri.io.provenance import to_jsonable, write_text_atomic
from osteomri.report.format import sig

_CSS = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.4}
h1{border-bottom:2px solid #345;padding-bottom:.2em}h2{color:#345;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em;max-width:100%}th,td{border:1px solid #bbb;padding:.25em .6em;text-align:right;max-width:36em;overflow-wrap:break-word}
th{background:#eef2f6}td:first-child,th:first-child{text-align:left}caption{caption-side:top;text-align:left;font-weight:bold;padding:.3em 0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.9em;color:#555}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em}.error{background:#fdecea;border-left:4px solid #d32f2f;padding:.4em .8em}
.footnotes{font-size:.8em;color:#555;margin-top:0;padding-left:1.4em}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:.8em}
"""


class HtmlReport:
    """Accumulates sections and writes one self-contained HTML file."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, css_class: str | None = None) -> None:
        cls = f' class="{css_class}"' if css_class else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, df: pd.DataFrame, caption: str | None = None, float_format: str | None = None,
              index: bool = False) -> None:
        """A table; numbers without a ``float_format`` print to 3 significant figures
        (:func:`osteomri.report.format.sig`). Headers are printed as given: pass display copies
        (:func:`osteomri.report.format.humanise`) for human headers with units."""
        formatter = sig if float_format is None else float_format.format
        fmt = {c: formatter for c in df.select_dtypes("number").columns}
        body = df.to_html(index=index, formatters=fmt, na_rep="–", border=0, escape=True)
        if caption:
            body = body.replace(">", f"><caption>{html.escape(caption)}</caption>", 1)
        self._parts.append(body)

    def footnotes(self, notes: list[str]) -> None:
        """Small-print notes under the previous table (sources, definitions)."""
        if notes:
            items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
            self._parts.append(f'<ol class="footnotes">{items}</ol>')

    def figure(self, fig: Any, caption: str | None = None, fmt: str = "png", dpi: int = 110) -> None:
        """Inline a matplotlib figure (closed afterwards)."""
        from osteomri.report._mpl import plt

        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        self.image_bytes(buf.getvalue(), fmt, caption)

    def image_bytes(self, data: bytes, fmt: str = "png", caption: str | None = None) -> None:
        mime = "image/svg+xml" if fmt == "svg" else f"image/{fmt}"
        src = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        alt = html.escape(caption or "figure")
        self._parts.append(f'<figure><img src="{src}" alt="{alt}"/>{cap}</figure>')

    def provenance(self, prov: dict[str, Any]) -> None:
        self.heading("Provenance")
        self._parts.append(f"<pre>{html.escape(json.dumps(to_jsonable(prov), indent=2))}</pre>")

    def render(self) -> str:
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1>\n" + "\n".join(self._parts) + "\n</body></html>\n"
        )

    def write(self, path: str | os.PathLike) -> Path:
        return write_text_atomic(path, self.render())
