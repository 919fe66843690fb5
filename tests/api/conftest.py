"""API fixtures: one seeded app per module over SQLite (real models, real face-set photos)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apihelp import Env, open_env, seed

from verifier.demo.cohort import make_cohort


@pytest.fixture(scope="session")
def api_cohort(pipeline, faces, tmp_path_factory):
    """Eight students in four 学院, a third of them impostors (graduation photo of someone else)."""
    return make_cohort(pipeline, faces, tmp_path_factory.mktemp("api-cohort"), 8, seed=5, impostor_rate=0.35, missing_rate=0.0, unusable_rate=0.0)


@pytest.fixture(scope="module")
def env(api_cohort, pipeline, cache_dir, tmp_path_factory) -> Iterator[Env]:
    """A running app over a seeded SQLite store."""
    e, client = open_env(tmp_path_factory.mktemp("api-home"), cache_dir, pipeline)
    e.cohort = api_cohort
    seed(e, api_cohort)
    yield e
    client.__exit__(None, None, None)
    e.db.dispose()
