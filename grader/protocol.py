"""What crosses the sandbox boundary: the spec the grader hands each stage and the records a stage hands back.

Both sides import this module: the host writes specs and reads records, the harness (inside the sandbox) reads
specs and writes records. Records come from a process that ran student code, so the host reads them with
`read_records`, which skips anything malformed instead of trusting it.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Annotated, Literal, TypeVar

from pydantic import BaseModel, Field, JsonValue, TypeAdapter, ValidationError

from grader.config import Training
from grader.files import write_atomic
from grader.models import FailureKind, StrictModel, TaskName

SPEC_FILE = "spec.json"
# The submission's functions the training stage calls: one that hangs in a hidden check keeps training from starting.
TRAINING_CALLS = ("build_model", "make_optimizer", "train_one_epoch", "train_transform")
RecordT = TypeVar("RecordT")
ModelT = TypeVar("ModelT", bound=BaseModel)


# ---- the control channel between the host and the warm sandbox process (grader.harness.zygote) ----------------

class StageRequest(StrictModel):
    """Run one stage: `argv` as `python ARGV...` would (`-m module`, `-c code` or a script), in `workdir`."""

    argv: list[str]
    workdir: str = Field(description="the stage's folder under the sandbox's stages root (host path without one)")
    uid: int | None = Field(None, description="the unprivileged uid the stage runs as (a root grader only)")
    env: dict[str, str]
    file_size_bytes: int
    processes: int = Field(description="RLIMIT_NPROC for the stage")
    tmp_bytes: int = Field(description="size of the stage's own /tmp")
    hidden: list[str] = Field([], description="the sandbox's mount points this stage must not see")


class SandboxReady(StrictModel):
    message: Literal["ready"] = "ready"


class StageStarted(StrictModel):
    message: Literal["started"] = "started"


class StageExited(StrictModel):
    message: Literal["exited"] = "exited"
    returncode: int = Field(description="the exit code, or minus the signal that ended the stage")


ControlMessage = Annotated[SandboxReady | StageStarted | StageExited, Field(discriminator="message")]
CONTROL = TypeAdapter(ControlMessage)


# ---- stage specs: what the grader sends ----------------------------------------------------------------------

class SubmissionSpec(StrictModel):
    """Where the stage finds the submission, and the settings every stage that runs it shares."""

    assignment_id: str
    submission: str = "submission"
    module: str
    seed: int
    threads: int


class ImportSpec(SubmissionSpec):
    result: str = "interface.json"


class Budget(StrictModel):
    """The training time budget: CPU seconds per thread given (contention does not count), or wall seconds (GPU)."""

    clock: Literal["cpu", "wall"]
    seconds: float


class TrainSpec(SubmissionSpec):
    images: str
    labels: str
    validation_images: str = Field(description="the held-out images, without their labels")
    mean: list[float]
    std: list[float]
    device: str
    budget: Budget
    training: Training
    task: TaskName = Field(description="what the loss handed to train_one_epoch and the training metric measure")
    progress: str = "progress.jsonl"
    checkpoints: str = Field("checkpoints", description="a folder of epoch-N.pt, the weights after epoch N")
    validation_logits: str = Field("validation", description="a folder of epoch-N.npy, the validation logits "
                                                             "after epoch N (epoch 0: the model as built)")

    def checkpoint(self, epoch: int) -> str:
        return f"{self.checkpoints}/epoch-{epoch}.pt"

    def logits(self, epoch: int) -> str:
        return f"{self.validation_logits}/epoch-{epoch}.npy"


class EvalSpec(SubmissionSpec):
    checkpoint: str = "checkpoint.pt"
    images: str
    mean: list[float]
    std: list[float]
    batch_size: int
    device: str
    logits: str = "logits.npy"
    failure: str = "failure.json"


def write_spec(folder: Path, spec: BaseModel) -> None:
    write_atomic(folder / SPEC_FILE, spec.model_dump_json())


def read_spec(spec_type: type[ModelT], path: str | Path = SPEC_FILE) -> ModelT:
    return spec_type.model_validate_json(Path(path).read_text())


# ---- records: what a stage sends back --------------------------------------------------------------------------

class FailureRecord(StrictModel):
    """A failure as the stage saw it; the host adds the stage name."""

    kind: FailureKind
    message: str
    details: str = ""


class InterfaceResult(StrictModel):
    failures: list[FailureRecord]


class ParameterOwner(StrictModel):
    """One parameter tensor of a model and the type of the layer it belongs to."""

    name: str
    owner: str
    count: int


class ModelDescription(StrictModel):
    """What a model is made of and what it computes: its parameters' owners and the operators of a forward pass."""

    parameters: list[ParameterOwner]
    ops: list[str] = Field(description="ATen operator names a forward pass ran, sorted")

    @property
    def parameter_count(self) -> int:
        return sum(p.count for p in self.parameters)


class TrainStart(StrictModel):
    event: Literal["start"] = "start"
    epochs: int
    device: str
    model: ModelDescription


class Untrained(StrictModel):
    """The validation logits of the model as build_model() returned it are written."""

    event: Literal["untrained"] = "untrained"


class EpochDone(StrictModel):
    """Epoch `epoch` is over: its checkpoint and validation logits are written."""

    event: Literal["epoch"] = "epoch"
    epoch: int
    loss: float
    train_metric: float
    seconds: float
    budget_used: float = Field(description="budget seconds used so far, on the budget's clock")
    validation_used: float = Field(0.0, description="seconds the validation passes used so far, on the same clock "
                                                    "(not counted in budget_used)")


class TrainStopped(StrictModel):
    """`overran`: the last epoch ended past the budget and its grace, so it does not count."""

    event: Literal["stopped"] = "stopped"
    reason: Literal["completed", "budget", "overran"]
    budget_used: float


class TrainFailed(StrictModel):
    event: Literal["failed"] = "failed"
    failure: FailureRecord


TrainEvent = Annotated[TrainStart | Untrained | EpochDone | TrainStopped | TrainFailed, Field(discriminator="event")]
TRAIN_EVENTS = TypeAdapter(TrainEvent)


class CollectedCheck(StrictModel):
    nodeid: str
    group: str | None
    calls: list[str] = Field([], description="the submission's functions the check calls")


class ChecksCollected(StrictModel):
    event: Literal["collected"] = "collected"
    items: list[CollectedCheck]


class CheckStarted(StrictModel):
    event: Literal["start"] = "start"
    nodeid: str


class CheckReported(StrictModel):
    """One phase (setup, call, teardown) of one check, as pytest reported it."""

    event: Literal["outcome"] = "outcome"
    nodeid: str
    when: Literal["setup", "call", "teardown"]
    outcome: Literal["passed", "failed", "skipped"]
    timed_out: bool = False
    message: str = ""
    details: str = ""
    seconds: float = 0.0


class CheckObserved(StrictModel):
    """What a check saw the submission do, for its verdict (typed by the verdict's own Observation model)."""

    event: Literal["observation"] = "observation"
    nodeid: str
    observation: dict[str, JsonValue]


class ChecksFinished(StrictModel):
    event: Literal["finish"] = "finish"


CheckEvent = Annotated[ChecksCollected | CheckStarted | CheckReported | CheckObserved | ChecksFinished,
                       Field(discriminator="event")]
CHECK_EVENTS = TypeAdapter(CheckEvent)


class VerdictSpec(StrictModel):
    """Judge the observations in `observations` (a copy of the checks' results file) with the checks' verdicts."""

    assignment_id: str
    observations: str = "observations.jsonl"
    result: str = "verdicts.json"


class Judgement(StrictModel):
    nodeid: str
    failure: str | None = Field(description="the sentence saying why the check fails; None when it passes")


class Verdicts(StrictModel):
    """The verdict stage's answer: which checks are judged outside the sandbox, and each judgement."""

    judged_checks: list[str] = Field(description="names of the check functions that have a verdict")
    judgements: list[Judgement]


def append_record(file: IO[str], record: BaseModel) -> None:
    """One JSON line, flushed at once, so a stage killed right after still leaves it behind."""
    file.write(record.model_dump_json() + "\n")
    file.flush()


def read_records(path: Path, adapter: TypeAdapter[RecordT]) -> list[RecordT]:
    """The well-formed records of a JSON-lines file a stage wrote; anything else (in student reach) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(adapter.validate_json(line))
        except (ValidationError, ValueError):
            continue
    return records


def read_record(path: Path, record_type: type[ModelT]) -> ModelT | None:
    """A single JSON record a stage wrote, or None when it is missing or malformed."""
    try:
        return record_type.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None

