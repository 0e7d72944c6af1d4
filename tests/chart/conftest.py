"""Fixtures of the chart tests: renders are cached per scenario (rendering is pure)."""

from __future__ import annotations

from functools import cache

import pytest

from tests.chart.chartlib import Rendered, render
from tests.chart.scenarios import SCENARIOS


@cache
def rendered_scenario(name: str) -> Rendered:
    return render(SCENARIOS[name])


@pytest.fixture
def default_render() -> Rendered:
    return rendered_scenario("defaults")


@pytest.fixture
def all_options() -> Rendered:
    return rendered_scenario("all-options")
