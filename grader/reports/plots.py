"""Report plots, drawn with matplotlib's Agg canvas (no pyplot, no display) and returned as PNG bytes."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from grader.config import Metric
from grader.models import Metrics, TrainingResult

DPI = 100


def data_uri(png: bytes) -> str:
    """A PNG as a `data:` URI, for embedding in self-contained HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _integer_ticks(axes: Axes) -> None:
    """Counts on the y axis: whole-number ticks from its default locator (an AutoLocator, a MaxNLocator)."""
    locator = axes.yaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):
        locator.set_params(integer=True)


def _png(figure: Figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def training_curve(training: TrainingResult, metric: str, fraction: bool) -> bytes:
    """Loss per finished epoch, and the training against the validation `metric` with the kept epoch marked (a
    `fraction`, such as the accuracy, on a 0-1 axis)."""
    epochs = [record.epoch for record in training.epochs]
    figure = Figure(figsize=(8, 3), dpi=DPI)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [record.loss for record in training.epochs], marker="o")
    loss_axes.set(title="Training loss", xlabel="epoch", ylabel="loss")
    accuracy_axes.plot(epochs, [record.train_metric for record in training.epochs], marker="o", color="tab:green",
                       label="training")
    validated = [(r.epoch, r.validation_metric) for r in training.epochs if r.validation_metric is not None]
    if validated:
        accuracy_axes.plot(*zip(*validated, strict=True), marker="s", color="tab:orange", label="validation")
    if training.kept_epoch is not None:
        accuracy_axes.axvline(training.kept_epoch, color="grey", linestyle="--", label="kept")
    accuracy_axes.legend(loc="lower right" if fraction else "upper right")
    accuracy_axes.set(title=f"Training and validation {metric}", xlabel="epoch", ylabel=metric)
    if fraction:
        accuracy_axes.set_ylim(0, 1)
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.xaxis.get_major_locator().set_params(integer=True)
    return _png(figure)


def confusion_matrix(metrics: Metrics) -> bytes:
    """The confusion matrix on the hidden test images; class names come from the per-class accuracies."""
    names = list(metrics.per_class_accuracy)
    figure = Figure(figsize=(1.2 * len(names) + 2.5, 1.1 * len(names) + 1.5), dpi=DPI)
    axes = figure.subplots()
    axes.imshow(metrics.confusion, cmap="Blues")
    peak = max((max(row) for row in metrics.confusion), default=0)
    for true, row in enumerate(metrics.confusion):
        for predicted, count in enumerate(row):
            color = "white" if count > peak / 2 else "black"
            axes.text(predicted, true, str(count), ha="center", va="center", color=color)
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set(title="Confusion matrix", xlabel="predicted", ylabel="true")
    return _png(figure)


def score_histogram(percents: Sequence[float]) -> bytes:
    """How many submissions scored in each tenth of the points."""
    figure = Figure(figsize=(6, 3), dpi=DPI)
    axes = figure.subplots()
    axes.hist(percents, bins=range(0, 101, 10), edgecolor="white")
    axes.set(title="Scores", xlabel="score (% of points)", ylabel="submissions", xlim=(0, 100))
    _integer_ticks(axes)
    return _png(figure)


def accuracy_distribution(accuracies: Sequence[float], metric: Metric | None, name: str = "accuracy") -> bytes:
    """The batch's metric (`name`: accuracies, or errors) on the hidden test images, with the assignment's zero- and
    full-credit lines; accuracies on a 0-1 axis."""
    figure = Figure(figsize=(6, 3), dpi=DPI)
    axes = figure.subplots()
    fraction = name == "accuracy"
    axes.hist(accuracies, bins=[i / 20 for i in range(21)] if fraction else 20, edgecolor="white")
    if metric is not None:
        axes.axvline(metric.zero_credit_at, color="tab:red", linestyle="--", label="zero credit")
        axes.axvline(metric.full_credit_at, color="tab:green", linestyle="--", label="full credit")
        axes.legend()
    axes.set(title=f"{name[:1].upper()}{name[1:]} on the hidden test images", xlabel=name, ylabel="submissions")
    if fraction:
        axes.set_xlim(0, 1)
    _integer_ticks(axes)
    return _png(figure)
