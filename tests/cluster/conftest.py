"""A local Ray cluster on loopback for the cluster tests (two worker slots: this machine has 2 cores)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from verifier.cluster.session import ClusterInfo


@pytest.fixture(scope="module")
def ray_local() -> Iterator[ClusterInfo]:
    """Start `ray.init` on 127.0.0.1 for the module; commands given `--ray local` join it instead of starting another."""
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[cluster]')")
    from verifier.cluster.session import ray_cluster

    with ray_cluster("local", cpus=2) as info:
        yield info
