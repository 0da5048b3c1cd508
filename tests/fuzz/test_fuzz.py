"""A short run of every fuzz target (seconds in all); the campaign is `python3 -m tests.fuzz --inputs N`."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.targets import TARGETS

SHORT = 40


#: targets with known findings not fixed yet (type-confused legacy records give tracebacks): reported, not hidden
KNOWN = {"legacy_json", "legacy_csv"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason="known importer findings", strict=False))
                                  if n in KNOWN else n for n in sorted(TARGETS)])
def test_fuzz_target_short_run(name: str) -> None:
    fn, strategy = TARGETS[name]

    @settings(max_examples=SHORT, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(kw: dict[str, Any]) -> None:
        fn(**kw)

    run()
