"""Wrong implementations: the reference with one realistic bug each, against the hidden checks and their verdicts.

Each must fail exactly the checks its bug deserves, with a sentence that says what to fix, and pass all the
others. The checks run in this process (the sandbox plumbing is the hostile suite's business); the verdicts
are the ones the grader runs in its clean process.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from grader.config import Assignment, load_assignment
from grader.harness.submission import import_submission
from grader.observation import Observation, judge

TRAIN_ONE_EPOCH = '''
def train_one_epoch(model, loader, loss_fn, optimizer, device):
    {setup}
    total, batches = 0.0, 0
    for images, labels in loader:
        {move}
        {step}
        total += loss.item()
        batches += 1
    return {result}
'''
CORRECT_STEP = "optimizer.zero_grad()\n        loss = loss_fn(model(images), labels)\n        loss.backward()\n" \
               "        optimizer.step()"
EVALUATE = '''
def evaluate(model, loader, device):
    {setup}
    correct, seen, accuracies = 0, 0, []
    with {context}:
        for images, labels in loader:
            {move}
            hits = ({predictions} == labels).sum().item()
            correct, seen = correct + hits, seen + len(labels)
            accuracies.append(hits / len(labels))
    return {result}
'''


def train(setup: str = "model.train()", move: str = "images, labels = images.to(device), labels.to(device)",
          step: str = CORRECT_STEP, result: str = "total / batches") -> str:
    return TRAIN_ONE_EPOCH.format(setup=setup, move=move, step=step, result=result)


def evaluate(setup: str = "model.eval()", context: str = "torch.no_grad()", result: str = "correct / seen",
             move: str = "images, labels = images.to(device), labels.to(device)",
             predictions: str = "model(images).argmax(dim=1)") -> str:
    return EVALUATE.format(setup=setup, context=context, result=result, move=move, predictions=predictions)


SMUGGLED_CONVOLUTION = '''
class Sneaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(4, 3, 3, 3) * 0.1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 32 * 32, 2))

    def forward(self, images):
        return self.head(torch.nn.functional.conv2d(images, self.kernel, padding=1))


def build_model():
    return Sneaky()
'''
UNFOLDED_CONVOLUTION = '''
class Unfolded(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = nn.Linear(27, 4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 32 * 32, 2))

    def forward(self, images):
        patches = torch.nn.functional.unfold(images, 3, padding=1).transpose(1, 2)
        return self.head(self.kernel(patches).transpose(1, 2))


def build_model():
    return Unfolded()
'''

# case: (assignment, code appended to the reference, {failing check: what its sentence must say})
WRONG = {
    "never calls model.train()": ("a2_ffn", train(setup="pass"), {
        "test_train_one_epoch_trains_in_training_mode": "ran the model in evaluation mode: call model.train()"}),
    "calls model.eval() to train": ("a2_ffn", train(setup="model.eval()"), {
        "test_train_one_epoch_trains_in_training_mode": "ran the model in evaluation mode: call model.train()"}),
    "ignores the device": ("a2_ffn", train(move="pass"), {
        "test_train_one_epoch_moves_batches_to_the_device": "moved the images of 0 of 4 batches to `device`"}),
    "labels not moved to the device": ("a2_ffn", train(move="images = images.to(device)"), {
        "test_train_one_epoch_moves_batches_to_the_device": "moved the labels of 0 of 4 batches to `device`"}),
    "sum instead of mean of the losses": ("a2_ffn", train(result="total"), {
        "test_train_one_epoch_returns_mean_loss": "but the mean of its 4 batch losses was"}),
    "step() before backward()": ("a2_ffn", train(step=(
        "optimizer.zero_grad()\n        loss = loss_fn(model(images), labels)\n        optimizer.step()\n"
        "        loss.backward()")), {  # each step follows a zero_grad(): the model never learns
        "test_train_one_epoch_lowers_the_loss": "call loss.backward() and optimizer.step() for every batch",
        "test_train_one_epoch_zeroes_gradients": "At optimizer step 1 the model had no gradients"}),
    "no zero_grad()": ("a2_ffn", train(step=(
        "loss = loss_fn(model(images), labels)\n        loss.backward()\n        optimizer.step()")), {
        "test_train_one_epoch_zeroes_gradients": "At optimizer step 2 the gradients were not those of batch 2"}),
    "no optimizer.step()": ("a2_ffn", train(step=(
        "optimizer.zero_grad()\n        loss = loss_fn(model(images), labels)\n        loss.backward()")), {
        "test_train_one_epoch_lowers_the_loss": "call loss.backward() and optimizer.step() for every batch",
        "test_train_one_epoch_zeroes_gradients": "called optimizer.step() 0 times for 4 batches"}),
    "per-batch averaged accuracy": ("a2_ffn", evaluate(result="sum(accuracies) / len(accuracies)"), {
        "test_evaluate_computes_accuracy": "divide by the number of images"}),
    "no eval() in evaluate": ("a2_ffn", evaluate(setup="pass"), {
        "test_evaluate_uses_eval_mode_without_gradients": "must call model.eval() before predicting"}),
    "gradients left on in evaluate": ("a2_ffn", evaluate(context="torch.enable_grad()"), {
        "test_evaluate_uses_eval_mode_without_gradients": "under torch.no_grad()"}),
    "evaluate leaves the images on the CPU": ("a2_ffn", evaluate(move="pass"), {
        "test_evaluate_moves_batches_to_the_device": "evaluate moved the images of 0 of 4 batches to `device`"}),
    "right: evaluate compares on the CPU": ("a2_ffn", evaluate(
        move="images = images.to(device)", predictions="model(images).argmax(dim=1).cpu()"), {}),
    "wrong flatten size": ("a2_ffn", "\n_reference_model = build_model\n\ndef build_model():\n"
                           "    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 16, 64), nn.ReLU(), "
                           "nn.Linear(64, 2))\n", {
        "test_output_is_logits_of_shape_n_by_2": "mat1 and mat2 shapes cannot be multiplied"}),
    "softmax, then cross-entropy": ("a2_ffn", "\n_reference_model = build_model\n\ndef build_model():\n"
                                    "    return nn.Sequential(_reference_model(), nn.Softmax(dim=1))\n", {
        "test_output_is_logits_of_shape_n_by_2": "it ends with a Softmax"}),
    "a convolution on a bare parameter": ("a2_ffn", SMUGGLED_CONVOLUTION, {
        "test_only_allowed_layers": "keeps weights in Sneaky, which a2_ffn does not allow"}),
    "a convolution as unfold and Linear": ("a2_ffn", UNFOLDED_CONVOLUTION, {
        "test_only_allowed_layers": "computes im2col, which a2_ffn does not allow"}),
    "a fully connected net for the CNN": ("a3_cnn", "\ndef build_model():\n"
                                          "    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))\n", {
        "test_uses_convolution": "computes no convolution"}),
}


def hidden_checks(assignment: Assignment) -> dict[str, Callable[..., None]]:
    """The assignment's hidden check functions by name, from its checks folder."""
    checks = {}
    for path in sorted(assignment.checks_dir.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"wrong_{assignment.id}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        checks |= {name: value for name, value in vars(module).items() if name.startswith("test_")}
    return checks


def failures_of(assignment: Assignment, submission: ModuleType) -> dict[str, str]:
    """Each failing check's sentence: the check run here, its observation judged by its verdict."""
    failures = {}
    for name, check in hidden_checks(assignment).items():

        def observe(seen: Observation, check_name: str = name) -> None:
            if (failure := judge(check_name, seen.model_dump_json(), assignment)) is not None:
                raise AssertionError(failure)

        fixtures = {"submission": submission, "assignment": assignment, "observe": observe}
        try:
            check(**{parameter: fixtures[parameter] for parameter in inspect.signature(check).parameters})
        except Exception as exc:  # noqa: BLE001 - a failing check, whatever it raised
            failures[name] = str(exc)
    return failures


def variant(assignment: Assignment, code: str, folder: Path) -> ModuleType:
    module_file = assignment.submission.files[0]
    folder.mkdir()
    (folder / module_file).write_text((assignment.solution_dir / module_file).read_text() + "\n" + code)
    return import_submission(folder, assignment.submission.module)


@pytest.mark.parametrize("assignment_id", ["a2_ffn", "a3_cnn"])
def test_the_reference_fails_no_check(assignment_id: str) -> None:
    assignment = load_assignment(assignment_id)
    assert failures_of(assignment, import_submission(assignment.solution_dir, assignment.submission.module)) == {}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_wrong_implementation_fails_exactly_its_checks(case: str, tmp_path: Path) -> None:
    assignment_id, code, expected = WRONG[case]
    assignment = load_assignment(assignment_id)
    failures = failures_of(assignment, variant(assignment, code, tmp_path / "submission"))
    assert sorted(failures) == sorted(expected), failures
    for name, words in expected.items():
        assert words in failures[name], failures[name]
