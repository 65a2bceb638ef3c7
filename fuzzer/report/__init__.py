"""A campaign's or a whole database's report as static HTML (`mmfuzz report --html DIR`).

data.py gathers what the store knows into plain values (no HTML); svg.py draws
charts as inline SVG strings (pure, no I/O); page.py lays the page out. The
page is one self-contained file: no script, no CDN, no server.
"""

from fuzzer.report.data import ReportData, gather
from fuzzer.report.page import render

__all__ = ["ReportData", "gather", "render"]
