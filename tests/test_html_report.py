"""`mmfuzz report --html`: a real campaign's report, rendered by a real headless browser.

The campaign runs with an emulated bug (so it has buckets) for a few seconds on
this kernel; Chromium (Debian's package) loads the page, and a probe script
added to a copy of it measures every chart's drawn content with getBBox(), so a
chart counts as rendered only if the browser laid out something inside it. The
screenshot is kept in build/test-artifacts/report.png. Users' mistakes are one
line and exit 2.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuzzer.cli.app import app
from fuzzer.store import open_store

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--window-size=1200,2600", "--virtual-time-budget=3000"]

# Appended to a copy of the page: each chart's content box, as the browser laid it out.
PROBE = """<script>
const charts = [...document.querySelectorAll("svg.chart")].map(svg => {
  const shapes = [...svg.querySelectorAll("polyline, rect, circle")];
  const drawn = shapes.map(s => s.getBBox()).filter(b => b.width > 0 || b.height > 0);
  return {title: svg.querySelector("title").textContent, shapes: shapes.length,
          drawn: drawn.length, width: svg.getBoundingClientRect().width};
});
const pre = document.createElement("pre");
pre.id = "probe";
pre.textContent = JSON.stringify(charts);
document.body.appendChild(pre);
</script>"""


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *BROWSER, *args], capture_output=True, text=True,
                          timeout=120, check=True)


@pytest.fixture(scope="module")
def campaign_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with one real 12 s campaign under an emulated bug."""
    folder = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{folder / 'r.sqlite'}"
    result = runner.invoke(app, ["run", "--time", "12", "--workers", "1", "--db", url,
                                 "--inject", "mlock2-onfault-ignored",
                                 "--corpus", str(folder / "corpus"),
                                 "--crashes", str(folder / "crashes")])
    assert result.exit_code == 0, result.output
    return url


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser (apt-get install chromium)")
def test_report_renders_in_a_browser(campaign_db: str, tmp_path: Path) -> None:
    out = tmp_path / "html"
    result = runner.invoke(app, ["report", "--html", str(out), "--db", campaign_db])
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org", "")
    store = open_store(campaign_db, create=False)
    titles = [b.title for b in store.buckets(include_labelled=True)]
    assert titles, "the emulated bug opened no bucket"

    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = _browser("--dump-dom", probed.as_uri()).stdout
    for title in titles:  # the browser's DOM has every bucket's title
        assert title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in dom
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, dom[-2000:]
    charts = {c["title"]: c for c in json.loads(match.group(1).replace("&quot;", '"'))}
    assert set(charts) == {"programs/s over time", "buckets opened over time",
                           "semantic features reached over time",
                           "each call's outcomes (checked steps)"}, charts
    for title in ("programs/s over time", "buckets opened over time",
                  "each call's outcomes (checked steps)"):
        assert charts[title]["drawn"] > 0 and charts[title]["width"] > 0, charts[title]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    _browser(f"--screenshot={shot}", (out / "index.html").as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_report_of_a_missing_database_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--html", str(tmp_path / "h"),
                                 "--db", f"sqlite:///{tmp_path / 'none.sqlite'}"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmfuzz: error: "), result.stderr
    assert not (tmp_path / "none.sqlite").exists()


def test_report_into_a_file_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    open_store(url).close()
    target = tmp_path / "afile"
    target.write_text("x")
    result = runner.invoke(app, ["report", "--html", str(target), "--db", url])
    assert result.exit_code == 2, result.output
    assert "is a file, not a folder" in result.stderr
    assert target.read_text() == "x"


def test_report_of_an_empty_database_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    open_store(url).close()
    result = runner.invoke(app, ["report", "--html", str(tmp_path / "h"), "--db", url])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "h" / "index.html").read_text()
    assert "No divergence" in page and "nothing recorded" in page
