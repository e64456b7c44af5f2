"""A real Ray cluster for the `cluster` tier: two `ray start` nodes on this machine, and the class they grade."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import reference_copy
from grader.batch import BatchOptions, discover, run_batch
from grader.config import load_assignment
from grader.data import CACHE_DIR_ENV, DATA_DIR_ENV
from grader.paths import examples_dir
from tests.framework.cluster.local_cluster import ClusterUnavailable, LocalCluster, NodeSpec

NODE_CPUS = 2  # one submission at a time per node: each asks for its assignment's 2 threads
# Every node runs with these: a dead node is noticed after about 2 s instead of 15.
FAST_FAILURE_DETECTION = {"RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4"}
REFERENCE_EPOCHS = 2
WHOLE_REFERENCES = ("a4_autoencoder", "a5_cifar10")  # the other tasks and data: graded with their own EPOCHS


def unavailable(reason: str) -> None:
    """Skip with one line locally; with CI=true a cluster that cannot start is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster(synthetic_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Head node_a and node_b, both on the synthetic data, with a private tensor cache; every process ended after."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv(DATA_DIR_ENV, str(synthetic_cifar))
        env.setenv(CACHE_DIR_ENV, str(tmp_path_factory.mktemp("cluster-cache")))
        try:
            local = LocalCluster()
        except ClusterUnavailable as exc:
            unavailable(f"Ray cannot start here: {exc}")
        try:
            for name in ("node_a", "node_b"):
                local.add_node(NodeSpec(name, cpus=NODE_CPUS, env=FAST_FAILURE_DETECTION))
        except ClusterUnavailable as exc:
            local.close()
            unavailable(f"Ray cannot start here: {exc}")
        yield local
        local.close()
        assert not local.processes(), "every Ray process the cluster started has ended"


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Ten submissions over four assignments: a1's examples and stub, a2's reference (2 epochs), examples, stub, and
    the references of a4 (reconstruction) and a5 (ten classes), whole: on the synthetic data each trains in seconds."""
    root = tmp_path_factory.mktemp("class")
    a1, a2 = load_assignment("a1_dataset"), load_assignment("a2_ffn")
    shutil.copytree(examples_dir() / a1.id, root / a1.id)
    shutil.copy(a1.folder / "cifar_dataset.py", root / a1.id / "stub.py")
    (root / a2.id).mkdir()
    reference_copy(a2, root / a2.id / "reference", REFERENCE_EPOCHS)
    shutil.copytree(examples_dir() / a2.id / "eli_weak", root / a2.id / "eli_weak")
    shutil.copy(examples_dir() / a2.id / "fay_broken.py", root / a2.id / "fay_broken.py")
    shutil.copy(a2.folder / "ffn.py", root / a2.id / "stub.py")
    folders = {a1.id: root / a1.id, a2.id: root / a2.id}
    for other in map(load_assignment, WHOLE_REFERENCES):
        (root / other.id).mkdir()
        folders[other.id] = reference_copy(other, root / other.id / "reference", None).parent
    return folders


@pytest.fixture(scope="module")
def local_scores(cluster: LocalCluster, classes: dict[str, Path], synthetic_cifar: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], float]:
    """(assignment, student) -> score from the local runner (`--workers 2`), to compare the cluster's with."""
    out = tmp_path_factory.mktemp("local-runner")
    scores = {}
    for assignment_id, folder in classes.items():
        reports = run_batch(load_assignment(assignment_id), discover(folder), out / assignment_id,
                            BatchOptions(workers=2, data_root=synthetic_cifar))
        scores |= {(assignment_id, r.submission.student_id): r.score.total for r in reports}
    return scores
