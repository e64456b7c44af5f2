"""The contracts between stages: what each stage hands on, and the report they add up to.

`Report` is versioned (`SCHEMA_VERSION`); its JSON Schema is exported to `schema/report.schema.json`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 3
TaskName = Literal["classification", "reconstruction"]


class StrictModel(BaseModel):
    """Base for the grader's data (reports, messages between processes): unknown fields are errors; values can be
    set (a report is filled in as grading goes); `grader.config.FrozenStrictModel` is the frozen kind."""

    model_config = ConfigDict(extra="forbid")


class FailureKind(StrEnum):
    """Every way a submission can fail; each maps to one student-readable sentence."""

    INTAKE = "intake"
    MISSING_FILE = "missing_file"
    SYNTAX_ERROR = "syntax_error"
    IMPORT_ERROR = "import_error"
    MISSING_NAME = "missing_name"
    WRONG_KIND = "wrong_kind"
    WRONG_SIGNATURE = "wrong_signature"
    EXCEPTION = "exception"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    FILE_TOO_LARGE = "file_too_large"
    CRASH = "crash"
    NAN_LOSS = "nan_loss"
    WRONG_OUTPUT = "wrong_output"
    TOO_MANY_PARAMETERS = "too_many_parameters"
    FORBIDDEN_LAYER = "forbidden_layer"
    CHANGED_WHILE_MEASURED = "changed_while_measured"
    EARLY_EXIT = "early_exit"
    TAMPERING = "tampering"
    WORKER_LOST = "worker_lost"
    DATA_MISMATCH = "data_mismatch"
    VERSION_MISMATCH = "version_mismatch"
    NODE_ERROR = "node_error"


class Failure(StrictModel):
    """What went wrong in one stage, in one sentence, with trimmed details for the TA."""

    stage: Literal["grader", "cluster", "container", "intake", "import", "checks", "training", "evaluation"]
    kind: FailureKind
    message: str
    details: str = ""
    student_traceback: str = Field("", description="the student's own frames of `details`, shown to the student")


class SubmissionInfo(StrictModel):
    """What intake made of the submitted file or folder."""

    student_id: str
    source: str
    sha256: str
    files: list[str]
    notes: list[str] = []


class CheckResult(StrictModel):
    """One hidden check: its outcome and the points it earned."""

    nodeid: str
    group: str
    outcome: Literal["passed", "failed", "error", "timeout", "crashed", "not_run"]
    points: float
    max_points: float
    message: str = ""
    details: str = ""
    seconds: float = 0.0


class EpochRecord(StrictModel):
    epoch: int
    loss: float = Field(description="the mean batch loss train_one_epoch returned")
    train_metric: float = Field(description="the task's metric on the training batches during the epoch")
    validation_metric: float | None = Field(
        None, description="after the epoch, on the images the grader held out (None: the outputs were unusable)")
    seconds: float


StopReason = Literal["completed", "budget", "overran", "killed", "failed"]


class TrainingResult(StrictModel):
    """The grader-run training: one record per finished epoch, why it stopped, and which epoch is scored."""

    device: str
    epochs_planned: int
    epochs: list[EpochRecord] = []
    stopped: StopReason
    budget_seconds: float
    budget_clock: Literal["cpu", "wall"] = Field(
        "wall", description="cpu: CPU seconds per thread given (other jobs do not count); wall: elapsed seconds")
    budget_used: float = 0.0
    parameters: int = 0
    seconds: float = 0.0
    validation_images: int = Field(0, description="how many training images the grader held out")
    validation_seconds: float = Field(0.0, description="the validation passes' time on the budget's clock, "
                                                       "not counted in budget_used")
    untrained_metric: float | None = Field(None, description="the validation metric of the model as built")
    chance_metric: float | None = Field(None, description="classification: the validation accuracy of always "
                                                          "answering the commonest class")
    keep: Literal["best", "last"] = "last"
    kept_epoch: int | None = Field(None, description="the epoch whose checkpoint was evaluated")
    model_changed: bool = Field(True, description="the kept epoch's validation logits differ from the untrained "
                                                  "model's")


class Metrics(StrictModel):
    """The task's metric on the hidden test images, computed in the grader's process from the outputs and the
    targets only it holds."""

    task: TaskName = "classification"
    name: str = Field("accuracy", description="what `value` measures, as reports name it")
    unit: str = Field("", description="its unit, as reports write it after the number")
    higher_is_better: bool = True
    value: float
    per_class_accuracy: dict[str, float] = Field({}, description="classification only")
    confusion: list[list[int]] = Field([], description="classification only; rows: true class, columns: predicted")
    perturbed_value: float = Field(description="the metric on the perturbed copies the grader made")
    perturbation: str
    perturbation_gap: float = Field(description="how much worse the metric is on the perturbed copies")
    samples: int


FindingRule = Literal["untrained_over_chance", "test_over_validation", "perturbation_gap", "accuracy", "unchanged"]


class Finding(StrictModel):
    """A measure of the graded model beyond its limit: the accuracy may not come from the grader's training."""

    rule: FindingRule
    value: float
    limit: float
    action: Literal["no_credit", "review"]
    message: str


class ScoreItem(StrictModel):
    """One line of the score: a check group or the metric, with a short reason."""

    name: str
    title: str
    points: float
    max_points: float
    reason: str
    visibility: Literal["visible", "hidden"] = "visible"


class Score(StrictModel):
    total: float
    max_total: float
    items: list[ScoreItem]
    summary: str

    @property
    def percent(self) -> float:
        return 100.0 * self.total / self.max_total if self.max_total else 0.0


RunnerName = Literal["local", "docker"]


class Environment(StrictModel):
    grader_version: str
    python: str
    torch_version: str
    device: str
    seed: int
    data_fingerprint: str | None = None
    sandbox: str
    runner: RunnerName = "local"
    node: str = Field("", description="the machine that graded: its host name, or the cluster node")


class Report(StrictModel):
    """Everything about grading one submission. Written as report.json."""

    schema_version: int = SCHEMA_VERSION
    assignment_id: str
    assignment_version: str
    submission: SubmissionInfo
    environment: Environment
    checks: list[CheckResult] = []
    training: TrainingResult | None = None
    metrics: Metrics | None = None
    score: Score
    failures: list[Failure] = []
    integrity: list[Finding] = Field([], description="what the grader measured that puts the accuracy in doubt")
    notes: list[str] = []
    graded_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0

    @property
    def flagged_for_review(self) -> bool:
        return bool(self.integrity)

    @property
    def credited_value(self) -> float | None:
        """The test metric, where the integrity rules let it earn credit (for leaderboards)."""
        uncredited = any(finding.action == "no_credit" for finding in self.integrity)
        return None if self.metrics is None or uncredited else self.metrics.value

# In a batch folder: the similarity views and similarity.json, for TAs only. No student id starts with "_"
# (intake strips it), so no student's report folder can take this name.
SIMILARITY_DIR = "_similarity"


class Pair(StrictModel):
    """Two submissions that share code: how much of each one's own code is found in the other."""

    first: str
    second: str
    first_share: float = Field(description="share of the first submission's own code found in the second")
    second_share: float = Field(description="share of the second submission's own code found in the first")
    duplicate: bool = Field(description="the same token stream once names, comments and layout are normalized")
    archived: bool = Field(description="the second submission is from an earlier term's archive")
    view: str = Field(description="the side-by-side view, relative to the batch folder")

    @property
    def share(self) -> float:
        return max(self.first_share, self.second_share)


class SimilarityResult(StrictModel):
    """What `_similarity/similarity.json` keeps: the listed pairs and what was discounted."""

    key: str = Field(description="digest of the sources, the material and the settings this result is for")
    threshold: float
    submissions: int
    archived: int
    material: list[str] = Field(description="the course's own files whose code was discounted")
    class_boilerplate: int = Field(description="fingerprints discounted because much of the class has them")
    without_code: list[str] = Field(description="students whose report folder kept no graded code")
    pairs: list[Pair]
