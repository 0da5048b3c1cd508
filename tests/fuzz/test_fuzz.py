"""A short fuzz run of every target in the suite (hypothesis; a few seconds each): the seeds, then
random and mutated inputs. The long campaign is `python -m tests.fuzz` (see `tests/fuzz/__main__.py`)."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.seeds import SEEDS
from tests.fuzz.targets import TARGETS

QUICK = settings(max_examples=150, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_the_campaign_names_every_target() -> None:
    from tests.fuzz.__main__ import TARGET_NAMES

    assert sorted(TARGET_NAMES) == sorted(TARGETS) == sorted(SEEDS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_seed_holds_the_invariant(name: str) -> None:
    for seed in SEEDS[name]:
        TARGETS[name](seed)


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed with a random slice replaced by random bytes (what a byte-level fuzzer does first)."""
    def splice(seed: bytes, at: float, length: int, insert: bytes) -> bytes:
        i = int(at * len(seed))
        return seed[:i] + insert + seed[i + length:]
    return st.builds(splice, st.sampled_from(seeds), st.floats(0, 1), st.integers(0, 16), st.binary(max_size=16))


#: JSON-like values with the edges that matter: big integers, non-finite floats, odd strings
values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def record_texts() -> st.SearchStrategy[bytes]:
    """The bundled record with one field replaced or added, written as YAML."""
    base = yaml.safe_load(SEEDS["data_record"][0])

    def edit(field: str, value: object) -> bytes:
        return yaml.safe_dump({**base, field: value}, allow_unicode=True).encode("utf-8", "surrogatepass")
    return st.builds(edit, st.sampled_from([*base, "extra", "legacy"]), values)


def record_json() -> st.SearchStrategy[bytes]:
    base = yaml.safe_load(SEEDS["data_record"][0])
    return st.builds(lambda f, v: json.dumps({**base, f: v}).encode(), st.sampled_from([*base, "extra"]), values)


STRATEGIES = {
    "data_record": st.one_of(st.binary(max_size=256), mutated(SEEDS["data_record"]), record_texts()),
    "data_record_json": st.one_of(st.binary(max_size=256), mutated(SEEDS["data_record_json"]), record_json()),
    "legacy_json": st.one_of(mutated(SEEDS["legacy_json"]),
                             st.builds(lambda v: json.dumps({"x": v}).encode(), values)),
    "legacy_csv": st.one_of(st.binary(max_size=256), mutated(SEEDS["legacy_csv"])),
    "manifest": st.one_of(mutated(SEEDS["manifest"]),
                          st.builds(lambda v: json.dumps({"generation": 1, "files": v}).encode(), values)),
    "document": st.one_of(mutated(SEEDS["document"]), st.builds(lambda v: json.dumps(v).encode(), values)),
    "client_state": st.one_of(mutated(SEEDS["client_state"]),
                              st.builds(lambda v: json.dumps({"version": 1, "sources": v, "generation": v}).encode(),
                                        values)),
    "serve_request": st.one_of(mutated(SEEDS["serve_request"]), st.binary(max_size=128)),
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_random_inputs_hold_the_invariant(name: str) -> None:
    @QUICK
    @given(STRATEGIES[name])
    def run(data: bytes) -> None:
        TARGETS[name](data)

    run()
