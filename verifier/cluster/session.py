"""Joining or starting the Ray cluster a command runs on (`--ray ADDRESS`, or `--ray local` for this machine).

Ray is an optional extra (`verifier[cluster]`): it is imported only here and by the modules that run on
it, so without it every command behaves as before and `--ray` says what to install. A local cluster
listens on loopback only and is shut down when the command ends; a joined cluster is left running.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

from verifier.common.reasons import VerifierError

log = logging.getLogger(__name__)

LOCAL = "local"


@dataclass(frozen=True)
class ClusterInfo:
    """What the command is running on: the address given, and the CPUs and nodes Ray reports."""

    address: str
    cpus: int
    nodes: int
    started_here: bool


def import_ray() -> ModuleType:
    """The ray module, or CLUSTER_RAY_MISSING when the extra is not installed."""
    try:
        import ray
    except ImportError as exc:
        raise VerifierError("CLUSTER_RAY_MISSING", detail=str(exc)) from None
    return ray


@contextmanager
def ray_cluster(address: str, cpus: int | None = None, object_store_bytes: int | None = None) -> Iterator[ClusterInfo]:
    """Connect to `address` (or start a loopback cluster for "local") for the duration of the block.

    `cpus` caps a local cluster's worker slots (default: the cores this process may use) and
    `object_store_bytes` sizes its shared-memory object store (default: Ray's, 30% of memory); both
    are ignored when joining an existing cluster, whose nodes declare their own.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield _info(ray, address, started_here=False)
        return
    local = address == LOCAL
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs: dict = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if local:
        from verifier.common.settings import cpu_count

        kwargs.update(num_cpus=cpus or cpu_count(), _node_ip_address="127.0.0.1")
        if object_store_bytes:
            kwargs["object_store_memory"] = object_store_bytes
    try:
        ray.init(address=None if local else address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises several types for an unreachable or refused address
        raise VerifierError("CLUSTER_UNREACHABLE", detail=f"{address}: {type(exc).__name__}: {str(exc)[:200]}") from None
    try:
        info = _info(ray, address, started_here=True)
        log.info("ray cluster %s: %d CPUs on %d node(s)", address, info.cpus, info.nodes)
        yield info
    finally:
        ray.shutdown()


def _info(ray: ModuleType, address: str, started_here: bool) -> ClusterInfo:
    resources = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return ClusterInfo(address, int(resources.get("CPU", 0)), nodes, started_here)
