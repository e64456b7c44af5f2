"""The cheapest benchmark in --quick mode on the synthetic data, so the bench code does not rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run import main


def test_quick_data_bench_writes_its_tables_and_the_machine(
    synthetic_cifar: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GRADER_DATA_DIR", str(synthetic_cifar))
    out = tmp_path / "results.json"
    main(["--quick", "--only", "data", "--out", str(out)])
    results = json.loads(out.read_text())
    assert results["machine"]["cpu_count"] >= 1 and results["machine"]["torch_version"]
    assert list(results["benchmarks"]) == ["data"]
    table = results["benchmarks"]["data"]["tables"][0]
    assert table["title"].startswith("128 train + 64 test images")
    warm = next(row for row in table["rows"] if row["measure"] == "warm: warm total")
    assert 0 < warm["s min"] <= warm["s median"]
    assert not isolated_cache.exists()  # the bench used a cache of its own
