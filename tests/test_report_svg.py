"""The report's SVG charts (fuzzer/report/svg.py): what each series draws."""

from __future__ import annotations

import re

import pytest

from fuzzer.report import svg


@pytest.mark.parametrize(("series", "shapes"), [
    ({}, []),  # nothing recorded: a note, no shape
    ({"w0": [(10.0, 5.0)]}, ["circle"]),  # one point (a short campaign): a dot
    ({"w0": [(10.0, 5.0), (20.0, 7.0)]}, ["polyline"]),
    ({"w0": [(10.0, 5.0)], "w1": [(10.0, 2.0), (20.0, 3.0)]}, ["circle", "polyline"]),
])
def test_each_series_draws_a_shape(series: dict[str, list[tuple[float, float]]],
                                   shapes: list[str]) -> None:
    page = svg.lines(series, title="programs/s over time", x_label="s", y_label="/s")
    assert re.findall(r"<(circle|polyline)\b", page) == shapes
    assert ("nothing recorded" in page) == (not series)
