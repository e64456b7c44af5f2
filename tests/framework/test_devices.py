"""Devices with the GPUs faked: worker slots, thread shares, the stage's CUDA view and the CLI's --device."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import bubblewrap, cli, sandbox
from grader.batch import BatchOptions, worker_devices
from grader.context import Device
from grader.errors import GraderError
from grader.sandbox import Sandbox, SandboxConfig, Stage, StageLimits

LIMITS = StageLimits(wall_seconds=20, memory_mb=1024, processes=16, file_size_mb=16, output_kb=64)


def test_each_gpu_grades_one_submission_at_a_time() -> None:
    devices = worker_devices(BatchOptions(workers=3, device_kind="cuda", gpu_count=2))
    assert devices == [Device("cuda", 0), Device("cuda", 1)]
    assert worker_devices(BatchOptions(workers=1, device_kind="cuda", gpu_count=2)) == [Device("cuda", 0)]


@pytest.mark.parametrize(("kind", "gpus"), [("cuda", 0), ("cpu", 2)])
def test_without_gpus_or_on_request_workers_use_the_cpu(kind: str, gpus: int) -> None:
    assert worker_devices(BatchOptions(workers=2, device_kind=kind, gpu_count=gpus)) == [Device("cpu")] * 2


def test_device_names() -> None:
    assert Device("cuda", 1).torch_name == "cuda:0"  # the stage sees only its GPU
    assert Device("cpu").torch_name == "cpu"
    assert Device("cuda", 1).describe() == "cuda (GPU 1)"


@pytest.mark.parametrize(("gpu_index", "visible"), [(1, "1"), (0, "0"), (None, "")])
def test_stage_env_shows_only_the_stage_gpu(gpu_index: int | None, visible: str) -> None:
    assert sandbox._base_env(SandboxConfig(gpu_index=gpu_index))["CUDA_VISIBLE_DEVICES"] == visible


def test_stage_process_sees_its_gpu_index() -> None:
    code = "import os; print('CVD=' + repr(os.environ['CUDA_VISIBLE_DEVICES']))"
    for gpu_index, expected in ((1, "CVD='1'"), (None, "CVD=''")):
        with Sandbox(SandboxConfig(gpu_index=gpu_index)) as box:
            result = box.run(Stage(["-c", code], box.stage_dir("gpu"), LIMITS))
        assert expected in result.output, result.output


def test_bubblewrap_binds_gpu_devices_only_for_a_gpu_sandbox(tmp_path: Path) -> None:
    gpu = bubblewrap.command([], 1, tmp_path, ["-c", "pass"])
    binds = {gpu[i + 1] for i, arg in enumerate(gpu) if arg == "--dev-bind-try"}
    assert {"/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm"} <= binds
    assert "/dev/nvidia0" not in binds
    cpu = bubblewrap.command([], None, tmp_path, ["-c", "pass"])
    assert not any("nvidia" in arg for arg in cpu)


def test_cuda_without_a_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "gpu_count", lambda: 0)
    with pytest.raises(GraderError, match="--device cuda"):
        cli._device_options(cli.DeviceChoice.cuda)
    assert cli._device_options(cli.DeviceChoice.auto) == {"device_kind": "cpu", "gpu_count": 0}


def test_auto_uses_the_gpus_when_there_are_some(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "gpu_count", lambda: 2)
    assert cli._device_options(cli.DeviceChoice.auto) == {"device_kind": "cuda", "gpu_count": 2}
    assert cli._device_options(cli.DeviceChoice.cuda) == {"device_kind": "cuda", "gpu_count": 2}
    assert cli._device_options(cli.DeviceChoice.cpu) == {"device_kind": "cpu", "gpu_count": 0}
    assert cli._single_device(cli.DeviceChoice.auto) == {"device": Device("cuda", 0)}
