"""Assignment configuration: `assignments/<id>/assignment.toml`, validated by pydantic."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grader.errors import GraderError
from grader.models import TaskName
from grader.paths import assignments_dir, checks_root, course_root, solutions_dir

M = TypeVar("M", bound=BaseModel)


class FrozenStrictModel(BaseModel):
    """Base for config sections (assignment.toml, course.toml): unknown keys are errors, as in
    `grader.models.StrictModel`, and values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiName(FrozenStrictModel):
    """One name the submission module must define."""

    kind: Literal["function", "class", "int", "dict"]
    params: list[str] = []
    optional: bool = False


class CheckGroup(FrozenStrictModel):
    """Hidden checks marked `@pytest.mark.group(name)` share these points equally."""

    name: str
    title: str
    points: float = Field(gt=0)


class IntegrityRule(FrozenStrictModel):
    """A measure of the graded model that, above `above`, costs the accuracy credit or asks a TA to look."""

    above: float = Field(description="the largest value that raises no finding")
    action: Literal["no_credit", "review"] = Field(
        description="no_credit: the accuracy earns nothing and the report says why; review: a TA's review list")


class Integrity(FrozenStrictModel):
    """Metric credit only for what the grader trained: each rule compares measures the grader took itself; for an
    error (reconstruction), a measure is how much lower it is, so a rule's limit is always an upper bound."""

    untrained_over_chance: IntegrityRule | None = Field(
        None, description="classification only: validation accuracy of the model as build_model() returns it, "
                          "before any training, minus the share of the commonest class; leave out where an "
                          "assignment allows pretrained starts")
    test_over_validation: IntegrityRule = Field(
        description="how much better the test metric is than the kept epoch's validation metric: the grader's "
                    "held-out training images predict the test metric of a model it trained")
    perturbation_gap: IntegrityRule = Field(
        description="how much worse the metric is on the perturbed copies the grader made than on the test images")
    accuracy: IntegrityRule | None = Field(
        None, description="classification only: test accuracy above what the allowed layers reach under the budget")


class Metric(FrozenStrictModel):
    """Credit for the task's metric on the hidden test images: linear from `zero_credit_at` to `full_credit_at`
    (rising for accuracy, falling for an error such as the mean squared error)."""

    task: TaskName = Field("classification", description="classification: logits, scored by accuracy; "
                                                         "reconstruction: images, scored by mean squared error")
    points: float = Field(gt=0)
    explained_by: list[str] = Field([], description="check groups whose failure usually explains a low score")
    requires: list[str] = Field([], description="check groups every check of which must pass for the metric to earn "
                                                "anything (an autoencoder without a bottleneck copies its input)")
    full_credit_at: float = Field(ge=0)
    zero_credit_at: float = Field(ge=0)
    perturbation: Literal["hflip", "shift"] = "hflip"
    integrity: Integrity

    @model_validator(mode="after")
    def _curve_runs_the_task_s_way(self) -> Metric:
        if self.task == "classification" and not self.zero_credit_at < self.full_credit_at <= 1:
            raise ValueError("for classification, metric.zero_credit_at must be below metric.full_credit_at, "
                             "at most 1")
        if self.task == "reconstruction" and self.zero_credit_at <= self.full_credit_at:
            raise ValueError("for reconstruction (lower is better), metric.zero_credit_at must be above "
                             "metric.full_credit_at")
        if self.task == "reconstruction" and (self.integrity.untrained_over_chance or self.integrity.accuracy):
            raise ValueError("metric.integrity.untrained_over_chance and metric.integrity.accuracy apply to "
                             "classification only")
        return self


class Data(FrozenStrictModel):
    """The images an assignment trains and scores on: an image-folder tree `<split>/<class>/*` under the data root
    (--data-dir or $GRADER_DATA_DIR), fingerprinted with the labels this section gives its files."""

    dataset: str = Field(description="the tree's name, for messages (e.g. CIFAR-10)")
    classes: tuple[str, ...] = Field(min_length=1, description="class folders in label order: label i is classes[i] "
                                                              "(a subset and remap such as airplane 0, bird 1)")
    train_split: str = Field("train", description="the folder students also have: fit and validation images")
    test_split: str = Field("test", description="the folder of the hidden test images")
    train_per_class: int | None = Field(None, gt=0, description="only the first N images of each class (by file "
                                                               "name) of the training split; all when left out")
    test_per_class: int | None = Field(None, gt=0, description="likewise for the test split")
    mean: tuple[float, float, float] | None = Field(None, description="per-channel mean of pixels in [0, 1]; left "
                                                                      "out, measured on the training images")
    std: tuple[float, float, float] | None = Field(None, description="per-channel std, given with mean")

    @model_validator(mode="after")
    def _consistent(self) -> Data:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("data.classes names a class twice")
        if (self.mean is None) != (self.std is None):
            raise ValueError("data.mean and data.std must be given together")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError("data.std must be positive")
        return self

    def per_class(self, split: str) -> int | None:
        """How many images of each class `split` uses (None: all)."""
        return self.train_per_class if split == self.train_split else self.test_per_class


class Validation(FrozenStrictModel):
    """The training images the grader holds out to choose the scored epoch; the same for every submission."""

    fraction: float = Field(gt=0, lt=1, description="the share of the N training images held out: int(N * fraction); "
                                                  "their labels stay with the grader")
    seed: int = Field(description="numpy.random.default_rng(seed).permutation(N)[:int(N * fraction)] picks them")
    keep: Literal["best", "last"] = Field(
        description="best: the epoch with the highest validation accuracy (ties: the later); last: the last epoch")
    budget_share: float = Field(
        gt=0, le=1, description="the validation passes may use this share of the budget on top of it (they are "
                                "the grader's work, not counted against the student)")


DeviceKind = Literal["cpu", "cuda"]


class Training(FrozenStrictModel):
    """How the grader trains a submitted model."""

    budget_seconds: dict[DeviceKind, float] = Field(
        description="cpu: CPU seconds of the training process per thread it is given; cuda: wall seconds")
    grace_seconds: float = Field(ge=0)
    wall_safety_factor: float = Field(ge=1, description="on CPU, wall-clock limit = factor x (budget + grace)")
    budget_warning_at: float = Field(gt=0, le=1, description="the report warns when this share of the budget is used")
    max_parameters: int = Field(gt=0)
    allowed_layers: list[str] = Field(description="the layer types that may hold the model's parameters")
    forbidden_ops: list[str] = Field([], description="prefixes of ATen operators the model may not compute")
    eval_batch_size: int = Field(gt=0)
    validation: Validation

    def limit_seconds(self, device_kind: DeviceKind) -> float:
        """Budget plus grace: CPU seconds per thread on the CPU, wall seconds on a GPU."""
        return self.budget_seconds[device_kind] + self.grace_seconds

    def stage_seconds(self, device_kind: DeviceKind) -> float:
        """What the training stage may use on the budget's clock: budget plus grace for the student's epochs,
        and the validation passes' share on top."""
        return self.limit_seconds(device_kind) + self.validation.budget_share * self.budget_seconds[device_kind]

    def wall_limit(self, device_kind: DeviceKind) -> float:
        """The training stage's wall-clock limit: on the CPU a safety net `wall_safety_factor` times wider."""
        factor = self.wall_safety_factor if device_kind == "cpu" else 1.0
        return self.stage_seconds(device_kind) * factor


class Limits(FrozenStrictModel):
    """Sandbox limits for every stage that runs student code."""

    threads: int = Field(gt=0, description="CPU threads per submission, whatever the machine or worker count")
    cpu_kernels: Literal["avx2", "native"] = Field(
        "avx2", description="avx2: the same CPU kernels on every x86-64 machine, so CPU training is bit-identical "
                            "across machines; native: each machine's fastest")
    import_seconds: float = Field(gt=0)
    check_seconds: float = Field(gt=0, description="per hidden check (pytest-timeout)")
    checks_total_seconds: float = Field(gt=0)
    eval_seconds: float = Field(gt=0)
    eval_cpu_seconds: float = Field(gt=0, description="CPU seconds per thread for the evaluation stage")
    memory_mb: int = Field(gt=0, description="resident memory of the whole stage")
    grader_memory_mb: int = Field(gt=0, description="the grader's own process (data, reports) on top of memory_mb: "
                                                    "what a container or a Ray task is given beyond the stage")
    processes: int = Field(gt=0)
    file_size_mb: int = Field(gt=0)
    output_kb: int = Field(gt=0)

    @property
    def runner_memory_mb(self) -> int:
        """What one grading asks of its container or Ray node: the stage's memory and the grader's own."""
        return self.memory_mb + self.grader_memory_mb


class Submission(FrozenStrictModel):
    """What a student hands in."""

    files: list[str] = Field(min_length=1)
    module: str
    api: dict[str, ApiName]
    max_files: int = Field(gt=0)
    max_total_mb: float = Field(gt=0)
    max_file_mb: float = Field(gt=0)


class Similarity(FrozenStrictModel):
    """Code similarity across a class (`grader similarity`, the end of `grader batch`), for TAs only."""

    threshold: float = Field(gt=0, le=1, description="a pair is listed when this share of either submission's own "
                                                     "code (course material and class-wide code not counted) is "
                                                     "found in the other")
    kgram: int = Field(gt=0, description="matches shorter than this many characters of the normalized token "
                                         "stream (names as V, F, O; strings as S) are noise")
    guarantee: int = Field(gt=0, description="matches at least this long are always found (winnowing window: "
                                             "guarantee - kgram + 1)")
    boilerplate_share: float = Field(gt=0, le=1, description="a fingerprint found in more than this share of the "
                                                             "class's submissions is boilerplate, not copying")
    boilerplate_min_submissions: int = Field(gt=1, description="... and in at least this many submissions, so a "
                                                               "small class's copies do not hide each other")
    material: list[str] = Field([], description="files of the course's own material besides the stub and the "
                                                "handout (a book's example code, lecture notebooks), relative to the "
                                                "assignment folder; .py or .ipynb")

    @model_validator(mode="after")
    def _window_fits(self) -> Similarity:
        if self.guarantee < self.kgram:
            raise ValueError("similarity.guarantee must be at least similarity.kgram")
        return self


class Assignment(FrozenStrictModel):
    """One assignment: everything the grader needs to know, from one TOML file."""

    id: str
    title: str
    version: str
    seed: int
    submission: Submission
    checks: list[CheckGroup] = Field(min_length=1)
    checks_read_data: bool = Field(False, description="the hidden checks read the CIFAR-10 image tree")
    limits: Limits
    data: Data | None = None
    training: Training | None = None
    metric: Metric | None = None
    similarity: Similarity

    @model_validator(mode="after")
    def _material_exists(self) -> Assignment:
        missing = [name for name in self.similarity.material if not (self.folder / name).is_file()]
        if missing:
            raise ValueError(f"similarity.material names files missing from {self.folder}: {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _training_and_metric_together(self) -> Assignment:
        if (self.training is None) != (self.metric is None):
            raise ValueError("[training] and [metric] must be given together")
        named = [*self.metric.explained_by, *self.metric.requires] if self.metric else []
        unknown = set(named) - {group.name for group in self.checks}
        if unknown:
            raise ValueError(f"metric.explained_by or metric.requires names unknown check groups: "
                             f"{', '.join(sorted(unknown))}")
        if self.training is not None and self.data is None:
            raise ValueError("[training] needs a [data] section naming the images it trains on")
        if self.metric is not None and self.metric.task == "classification" and self.data is not None \
                and len(self.data.classes) < 2:
            raise ValueError("classification needs at least two classes in data.classes")
        return self

    @property
    def folder(self) -> Path:
        return assignments_dir() / self.id

    @property
    def solution_dir(self) -> Path:
        return solutions_dir() / self.id

    @property
    def checks_dir(self) -> Path:
        return checks_root() / self.id

    @property
    def total_points(self) -> float:
        metric_points = self.metric.points if self.metric else 0.0
        return sum(group.points for group in self.checks) + metric_points

    def group(self, name: str) -> CheckGroup:
        for group in self.checks:
            if group.name == name:
                return group
        raise KeyError(name)


def load_toml_model(path: Path, model: type[M]) -> M:
    """Parse `path` as TOML and validate it as `model`, turning every problem into one GraderError sentence."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GraderError(f"Cannot read {path}: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise GraderError(f"{path} is not valid TOML: {exc}.") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise GraderError(f"{path}: {where}: {first['msg']}.") from None


def load_assignment_file(path: Path) -> Assignment:
    """Parse and validate one assignment.toml, turning every problem into one GraderError sentence."""
    assignment = load_toml_model(path, Assignment)
    if assignment.id != path.parent.name:
        raise GraderError(f"{path}: id {assignment.id!r} does not match its folder {path.parent.name!r}.")
    return assignment


def assignment_ids(root: Path | None = None) -> list[str]:
    """Ids of the course root's assignments: the folders of `assignments/` that hold an assignment.toml."""
    folder = root / "assignments" if root else assignments_dir()
    return sorted(p.parent.name for p in folder.glob("*/assignment.toml"))


def load_assignment(assignment_id: str) -> Assignment:
    """Load one of the course root's assignments by id."""
    return _load_assignment(course_root(), assignment_id)


@cache
def _load_assignment(root: Path, assignment_id: str) -> Assignment:
    path = root / "assignments" / assignment_id / "assignment.toml"
    if not path.is_file():
        known = ", ".join(assignment_ids(root)) or "none"
        raise GraderError(f"Unknown assignment {assignment_id!r} in the course root {root}; "
                          f"known assignments: {known}.")
    return load_assignment_file(path)
