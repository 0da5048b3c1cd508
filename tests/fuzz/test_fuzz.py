"""A short run of every fuzz target (seconds in all); the campaign is `python3 -m tests.fuzz --inputs N`."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.targets import TARGETS

SHORT = 40


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_target_short_run(name: str) -> None:
    fn, strategy = TARGETS[name]

    @settings(max_examples=SHORT, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(kw: dict[str, Any]) -> None:
        fn(**kw)

    run()
