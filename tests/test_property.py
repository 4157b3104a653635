"""Black's stability check for runsync: export, then plan against unchanged W&B, is always empty."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runsync

_counter = itertools.count()

keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
               min_size=1, max_size=8).filter(lambda k: not k.startswith("_"))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30),
    st.sampled_from(["007", "1e5", "TRUE", "false", "2024-01-02", "null", "=SUM(A1:A2)", "+81 3", "-x", "@u",
                     "'quoted", "line\nbreak", "  spaced  ", "3.0", "", "日本語", "🙂"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=3)), max_leaves=6)
configs = st.dictionaries(keys, values, min_size=1, max_size=6)
tag_lists = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs")), min_size=1,
                             max_size=10).filter(lambda t: t == t.strip()), max_size=4, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(runs=st.lists(st.tuples(configs, tag_lists), min_size=1, max_size=3))
def test_export_then_plan_is_empty(sandbox, tmp_path, runs):
    project = f"prop{next(_counter)}"
    for i, (config, tags) in enumerate(runs):
        sandbox.store.create_run("e", project, f"run{i}", display_name=f"n{i}", tags=tags, config=config)
    for fmt in ("csv", "xlsx"):
        sheet = tmp_path / f"{project}.{fmt}"
        runsync.export(f"e/{project}", sheet)
        plan = runsync.plan(sheet)
        assert plan.empty, (fmt, plan.changes, plan.conflicts, plan.errors)
        assert not plan.warnings, plan.warnings
