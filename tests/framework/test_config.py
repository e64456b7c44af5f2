"""Assignment configs: every shipped one loads and adds up to 100; bad ones fail with one sentence."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from grader.config import assignment_ids, load_assignment, load_assignment_file
from grader.errors import GraderError
from grader.paths import assignments_dir

SHIPPED = assignment_ids()


def test_the_bundled_assignments_are_shipped() -> None:
    assert {"a1_dataset", "a2_ffn", "a3_cnn", "a4_autoencoder", "a5_cifar10"} <= set(SHIPPED)


@pytest.mark.parametrize("assignment_id", SHIPPED)
def test_shipped_assignment_loads_and_is_worth_100(assignment_id: str) -> None:
    assignment = load_assignment(assignment_id)
    assert assignment.id == assignment_id
    assert assignment.total_points == 100
    assert len({group.name for group in assignment.checks}) == len(assignment.checks)


A2 = (assignments_dir() / "a2_ffn" / "assignment.toml").read_text()
METRIC_START = A2.index("[metric]")
TRAINING_START = A2.index("[training]")
LIMITS_START = A2.index("[limits]")
DATA_START = A2.index("[data]")

BAD_CONFIGS = {
    "unknown key": (A2.replace("seed = 0\n", "seed = 0\nsede = 1\n"), "sede"),
    "unknown key in a section": (A2.replace("[limits]\n", "[limits]\nwall_seconds = 3\n"), "limits.wall_seconds"),
    "zero credit at full": (A2.replace("zero_credit_at = 0.70", "zero_credit_at = 0.80"), "zero_credit_at"),
    "zero credit above full": (A2.replace("zero_credit_at = 0.70", "zero_credit_at = 0.90"), "zero_credit_at"),
    "invalid TOML": (A2.replace("seed = 0\n", "seed = = 0\n"), "not valid TOML"),
    "id not matching its folder": (A2, "does not match its folder"),
    "training without metric": (A2[:METRIC_START] + A2[TRAINING_START:], "[training] and [metric]"),
    "metric without training": (A2[:TRAINING_START] + A2[LIMITS_START:], "[training] and [metric]"),
    "missing section": (A2[:LIMITS_START], "limits"),
    "negative points": (A2.replace("points = 50", "points = -50"), "metric.points"),
    "similarity window shorter than its k-grams": (A2.replace("guarantee = 25", "guarantee = 20"),
                                                   "similarity.guarantee"),
    "similarity material missing": (A2.replace('"material/book_training_loop.py"', '"book.py"'),
                                    "similarity.material names files missing"),
    "metric explained by an unknown group": (A2.replace('explained_by = ["training"]', 'explained_by = ["trainin"]'),
                                             "unknown check groups: trainin"),
    "training without [data]": (A2[:DATA_START] + A2[METRIC_START:], "[training] needs a [data] section"),
    "a class named twice": (A2.replace('classes = ["airplane", "bird"]', 'classes = ["airplane", "airplane"]'),
                            "data.classes names a class twice"),
    "one class to classify": (A2.replace('classes = ["airplane", "bird"]', 'classes = ["airplane"]'),
                              "classification needs at least two classes"),
    "a mean without a std": (A2.replace('classes = ["airplane", "bird"]', 'classes = ["airplane", "bird"]\nmean = '
                                        '[0.5, 0.5, 0.5]'), "data.mean and data.std must be given together"),
    "an unknown task": (A2.replace('task = "classification"', 'task = "regression"'), "metric.task"),
    "an error's credit curve rising": (A2.replace('task = "classification"', 'task = "reconstruction"'),
                                       "metric.zero_credit_at must be above metric.full_credit_at"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=list(BAD_CONFIGS))
def test_bad_config_is_one_sentence_naming_the_file(case: str, tmp_path: Path) -> None:
    text, fragment = BAD_CONFIGS[case]
    folder = tmp_path / ("renamed" if case == "id not matching its folder" else "a2_ffn")
    folder.mkdir()
    path = folder / "assignment.toml"
    path.write_text(text)
    with pytest.raises(GraderError) as raised:
        load_assignment_file(path)
    message = str(raised.value)
    assert str(path) in message and fragment in message
    assert "\n" not in message and message.endswith(".") and not message.endswith("..")


def test_the_bad_configs_differ_from_a_good_one(tmp_path: Path) -> None:
    """The cases above break only what they claim to: the unmodified text loads."""
    path = tmp_path / "a2_ffn" / "assignment.toml"
    path.parent.mkdir()
    path.write_text(A2)
    assert load_assignment_file(path) == load_assignment("a2_ffn")
    for case, (text, _) in BAD_CONFIGS.items():
        if case not in ("invalid TOML", "id not matching its folder"):
            assert tomllib.loads(text) != tomllib.loads(A2), case


def test_unreadable_config(tmp_path: Path) -> None:
    path = tmp_path / "a2_ffn" / "assignment.toml"
    with pytest.raises(GraderError, match="Cannot read") as raised:
        load_assignment_file(path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_unknown_assignment_lists_the_known_ones() -> None:
    with pytest.raises(GraderError, match="a2_ffn") as raised:
        load_assignment("a9_nope")
    assert "a9_nope" in str(raised.value)
