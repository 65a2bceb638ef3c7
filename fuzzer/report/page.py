"""The report page: one HTML file with its style and charts inline.

No script and nothing fetched: the file opens offline, from a mail attachment
or a CI artefact, and prints. Sections: the campaigns, programs/s over time,
buckets opened over time, coverage growth, each call's outcomes, the bucket
table, and the buckets by kernel.
"""

from __future__ import annotations

from html import escape

from fuzzer.report import svg
from fuzzer.report.data import BucketLine, ReportData

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left;
         vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .title { font-family: ui-monospace, monospace; font-size: 13px; }
.muted { color: #777; }
svg.chart { display: block; margin: 8px 0; }
svg .t { font-size: 13px; font-weight: 600; }
svg .ax { stroke: #888; }
svg .xl { font-size: 11px; text-anchor: middle; fill: #555; }
svg .yl { font-size: 11px; text-anchor: end; fill: #555; }
svg .lg { font-size: 11px; }
"""


def render(data: ReportData) -> str:
    """The whole page."""
    body = [f"<h1>mmfuzz report: {escape(data.scope)}</h1>",
            f'<p class="muted">{escape(data.where)} · generated '
            f"{data.generated:%Y-%m-%d %H:%M} UTC · {len(data.buckets)} bucket(s)</p>",
            _campaigns(data),
            "<h2>Programs per second</h2>",
            svg.lines(data.rates, title="programs/s over time", x_label="seconds",
                      y_label="programs/s"),
            "<h2>Buckets opened</h2>",
            svg.lines({"buckets": data.opened}, title="buckets opened over time",
                      x_label="seconds", y_label="buckets", step=True),
            "<h2>Coverage</h2>",
            svg.lines(data.coverage, title="semantic features reached over time",
                      x_label="seconds", y_label="features", step=True),
            "<h2>Outcomes per call</h2>",
            svg.stacked_bars(data.outcomes, title="each call's outcomes (checked steps)"),
            "<h2>Buckets</h2>", _buckets(data.buckets),
            "<h2>Kernels</h2>", _kernels(data)]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>mmfuzz report: {escape(data.scope)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body)
            + "\n</body></html>\n")


def _campaigns(data: ReportData) -> str:
    rows = ["<table><tr><th>campaign</th><th>kernel</th><th>host</th><th>started (UTC)</th>"
            '<th class="n">seconds</th><th class="n">programs</th><th class="n">steps</th>'
            '<th class="n">programs/s</th><th>status</th></tr>']
    for c in data.campaigns:
        seconds = (c.ended - c.started).total_seconds() if c.ended else None
        rate = f"{c.programs / seconds:,.0f}" if seconds else ""
        rows.append(f"<tr><td>{c.id}</td><td>{escape(c.kernel)}</td><td>{escape(c.host)}</td>"
                    f"<td>{c.started:%Y-%m-%d %H:%M:%S}</td>"
                    f'<td class="n">{f"{seconds:,.0f}" if seconds else ""}</td>'
                    f'<td class="n">{c.programs:,}</td><td class="n">{c.steps:,}</td>'
                    f'<td class="n">{rate}</td><td>{escape(c.status)}</td></tr>')
    return "\n".join([*rows, "</table>"])


def _buckets(lines: list[BucketLine]) -> str:
    if not lines:
        return "<p>No divergence: the kernel agreed with the model on every step.</p>"
    rows = ['<table id="buckets"><tr><th>id</th><th>title</th><th>kind</th><th>status</th>'
            '<th class="n">samples</th><th>kernels</th><th>repro</th><th>minimized</th>'
            "<th>variants</th></tr>"]
    for b in lines:
        status = b.status + (f" of {b.duplicate_of}" if b.duplicate_of is not None else "")
        kernels = ", ".join(f"{escape(k)} ({n})" for k, n in sorted(b.kernels.items()))
        rows.append(f'<tr><td>{b.id}</td><td class="title">{escape(b.title)}</td>'
                    f"<td>{escape(b.kind)}</td><td>{escape(status)}</td>"
                    f'<td class="n">{b.count:,}</td><td>{kernels}</td>'
                    f"<td>{escape(b.reliability)}</td><td>{escape(b.minimized)}</td>"
                    f"<td>{'<br>'.join(escape(v) for v in b.variants)}</td></tr>")
    return "\n".join([*rows, "</table>"])


def _kernels(data: ReportData) -> str:
    """Which bucket was seen on which kernel: the comparison between releases."""
    kernels = data.kernels
    if not data.buckets or len(kernels) < 2:
        seen = ", ".join(escape(k) for k in kernels) or "none"
        return f"<p>Kernels: {seen}. A comparison needs buckets from two or more.</p>"
    head = "".join(f'<th class="n">{escape(k)}</th>' for k in kernels)
    rows = [f'<table id="kernels"><tr><th>bucket</th>{head}</tr>']
    for b in data.buckets:
        cells = "".join(f'<td class="n">{b.kernels.get(k, 0) or "·"}</td>' for k in kernels)
        rows.append(f'<tr><td class="title">{b.id}: {escape(b.title)}</td>{cells}</tr>')
    return "\n".join([*rows, "</table>"])
