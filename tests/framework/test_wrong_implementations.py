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

TRAIN_ONE_EPOCH = """
def train_one_epoch(model, loader, loss_fn, optimizer, device):
    {setup}
    total, batches = 0.0, 0
    for {loop}:
        {move}
        {step}
        total += {accumulate}
        batches += 1
    return {result}
"""
ZERO, LOSS, BACKWARD, STEP = ("optimizer.zero_grad()", "loss = loss_fn(model(images), labels)", "loss.backward()",
                              "optimizer.step()")
EVALUATE = """
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
"""
MOVE = "images, labels = images.to(device), labels.to(device)"


def train(*step: str, setup: str = "model.train()", loop: str = "images, labels in loader", move: str = MOVE,
          accumulate: str = "loss.item()", result: str = "total / batches") -> str:
    """train_one_epoch of the reference with the given lines in place of its step (default: the reference's)."""
    lines = step or (ZERO, LOSS, BACKWARD, STEP)
    return TRAIN_ONE_EPOCH.format(setup=setup, loop=loop, move=move, step="\n        ".join(lines),
                                  accumulate=accumulate, result=result)


def evaluate(setup: str = "model.eval()", context: str = "torch.no_grad()", result: str = "correct / seen",
             move: str = MOVE, predictions: str = "model(images).argmax(dim=1)") -> str:
    return EVALUATE.format(setup=setup, context=context, result=result, move=move, predictions=predictions)


def model(expression: str) -> str:
    """build_model returning `expression`, in which `reference()` is the reference's model."""
    return f"\nreference = build_model\n\ndef build_model():\n    return {expression}\n"


def optimizer(expression: str) -> str:
    return f"\ndef make_optimizer(model):\n    return {expression}\n"


SMUGGLED_CONVOLUTION = """
class Sneaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(4, 3, 3, 3) * 0.1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 32 * 32, 2))

    def forward(self, images):
        return self.head(torch.nn.functional.conv2d(images, self.kernel, padding=1))


def build_model():
    return Sneaky()
"""
UNFOLDED_CONVOLUTION = """
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
"""
OWN_MODULE = """
class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3 * 32 * 32, 256)
        self.out = nn.Linear(256, 2)

    def forward(self, images):
        return self.out(torch.relu(self.hidden(images.flatten(1))))


def build_model():
    return Classifier()
"""
BATCH_STANDARDIZED = """
class Standardize(nn.Module):
    def forward(self, x):
        return (x - x.mean(dim=0)) / (x.std(dim=0) + 1e-5)


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), Standardize(), nn.ReLU(), nn.Linear(64, 2))
"""
FIRST_BATCH_ONLY = """
def evaluate(model, loader, device):
    model.eval()
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            correct = (model(images).argmax(dim=1) == labels).sum().item()
            return correct / len(labels)
"""
MEAN_OF_FLOATS = """
def evaluate(model, loader, device):
    model.eval()
    hits, count = 0.0, 0
    with torch.inference_mode():
        for images, labels in loader:
            _, predicted = torch.max(model(images.to(device)), 1)
            hits += (predicted.cpu() == labels).float().mean().item() * labels.size(0)
            count += labels.size(0)
    return hits / count
"""
CNN = """
def build_model():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16{norm}), nn.GELU(), nn.MaxPool2d(2), nn.Dropout2d(0.1),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2))
"""
L2 = "loss = loss_fn(model(images), labels) + 0.001 * sum(p.pow(2.0).sum() for p in model.parameters())"
OUTPUT = "test_output_is_logits_one_row_per_image_and_class"
ARCHITECTURE = "test_only_allowed_layers"
CONVOLUTION = "test_uses_convolution"
PARAMETERS = "test_parameter_count_within_limit"
OPTIMIZER = "test_make_optimizer_updates_every_parameter"
LOWERS = "test_train_one_epoch_lowers_the_loss"
MEAN = "test_train_one_epoch_returns_mean_loss"
ZEROES = "test_train_one_epoch_zeroes_gradients"
TRAIN_MODE = "test_train_one_epoch_trains_in_training_mode"
TRAIN_MOVES = "test_train_one_epoch_moves_batches_to_the_device"
ACCURACY = "test_evaluate_computes_accuracy"
EVAL_MODE = "test_evaluate_uses_eval_mode_without_gradients"
EVAL_MOVES = "test_evaluate_moves_batches_to_the_device"
A4_BOTTLENECK = "test_bottleneck_is_smaller_than_the_input"
A4_LOWERS = "test_train_one_epoch_lowers_the_reconstruction_loss"
A4_MEAN = "test_train_one_epoch_returns_mean_reconstruction_loss"
A4_ZEROES = "test_train_one_epoch_zeroes_reconstruction_gradients"
BYPASS = """
class Bypass(Autoencoder):
    def forward(self, images):
        return images + 0 * self.decoder(self.encoder(images))

def build_model():
    return Bypass()
"""
WIDE = """
class Wide(Autoencoder):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())  # 8 x 32 x 32: larger than the image
        self.decoder = nn.Sequential(nn.Conv2d(8, 3, 3, padding=1), nn.Sigmoid())

def build_model():
    return Wide()
"""
NO_GRADIENTS = "the model had no gradients"
NOT_LOWERED = "call loss.backward() and optimizer.step() for every batch"
ACCUMULATED = "At optimizer step 3 the gradients still included earlier batches"
NOT_THE_MEAN = "but the mean of its 4 batch losses was"
BATCH_STATISTICS = "when the other images of its batch changed"

# case: (assignment, code appended to the reference, {failing check: what its sentence must say})
WRONG = {
    "a4: no zero_grad": ("a4_autoencoder", train(LOSS, BACKWARD, STEP), {A4_ZEROES: ACCUMULATED}),
    "a4: the sum of the batch losses": ("a4_autoencoder", train(result="total"), {
        A4_MEAN: "but the mean of its 4 batch losses is"}),
    "a4: the output bypasses the bottleneck": ("a4_autoencoder", BYPASS, {
        A4_BOTTLENECK: "is not decoder(encoder(images))"}),
    "a4: a code larger than the image": ("a4_autoencoder", WIDE, {
        A4_BOTTLENECK: "not fewer than the image's 3,072"}),
    "never calls model.train()": ("a2_ffn", train(setup="pass"), {
        TRAIN_MODE: "ran the model in evaluation mode: call model.train()"}),
    "calls model.eval() to train": ("a2_ffn", train(setup="model.eval()"), {
        TRAIN_MODE: "ran the model in evaluation mode: call model.train()"}),
    "ignores the device": ("a2_ffn", train(move="pass"), {
        TRAIN_MOVES: "moved the images of 0 of 4 batches to `device` before giving them to the model"}),
    "labels not moved to the device": ("a2_ffn", train(move="images = images.to(device)"), {
        TRAIN_MOVES: "moved the labels of 0 of 4 batches to `device` before giving them to loss_fn"}),
    "images not moved to the device": ("a2_ffn", train(move="labels = labels.to(device)"), {
        TRAIN_MOVES: "moved the images of 0 of 4 batches to `device`"}),
    ".to(device) without keeping the result": ("a2_ffn", train(move="images.to(device); labels.to(device)"), {
        TRAIN_MOVES: "use what it returns"}),
    "sum instead of mean of the losses": ("a2_ffn", train(result="total"), {MEAN: NOT_THE_MEAN}),
    "the last batch's loss": ("a2_ffn", train(result="loss.item()"), {MEAN: NOT_THE_MEAN}),
    "a tensor instead of a float": ("a2_ffn", train(accumulate="loss.detach()"), {
        MEAN: "must return the mean loss as a Python float (use loss.item()), not a Tensor"}),
    "loss_fn called again to log the loss": ("a2_ffn", train(accumulate="loss_fn(model(images), labels).item()"), {
        MEAN: "called loss_fn 8 times for 4 batches"}),
    "softmax, then cross-entropy, in the loss": ("a2_ffn", train(
        ZERO, "loss = loss_fn(torch.softmax(model(images), dim=1), labels)", BACKWARD, STEP), {
        MEAN: "gave loss_fn probabilities (each row sums to 1), not logits"}),
    "step() before backward()": ("a2_ffn", train(ZERO, LOSS, STEP, BACKWARD), {  # every step follows a zero_grad()
        LOWERS: NOT_LOWERED, ZEROES: f"At optimizer step 1 {NO_GRADIENTS}"}),
    "no zero_grad()": ("a2_ffn", train(LOSS, BACKWARD, STEP), {ZEROES: ACCUMULATED}),
    "zero_grad() once, before the loop": ("a2_ffn", train(LOSS, BACKWARD, STEP, setup="model.train(); "
                                                          "optimizer.zero_grad()"), {ZEROES: ACCUMULATED}),
    "zero_grad() between backward() and step()": ("a2_ffn", train(LOSS, BACKWARD, ZERO, STEP), {
        LOWERS: NOT_LOWERED, ZEROES: "and optimizer.zero_grad() before loss.backward(), not after it"}),
    "zero_grad(set_to_none=False) between backward() and step()": ("a2_ffn", train(
        LOSS, BACKWARD, "optimizer.zero_grad(set_to_none=False)", STEP), {
        LOWERS: NOT_LOWERED, ZEROES: "At optimizer step 1 the gradients were all zero"}),
    "no optimizer.step()": ("a2_ffn", train(ZERO, LOSS, BACKWARD), {
        LOWERS: NOT_LOWERED, ZEROES: "called optimizer.step() 0 times for 4 batches"}),
    "training on a detached output": ("a2_ffn", train(
        ZERO, "loss = loss_fn(model(images).detach(), labels).requires_grad_()", BACKWARD, STEP), {
        LOWERS: NOT_LOWERED, ZEROES: "(not of a detached output)"}),
    "make_optimizer leaves out all but the last layer": ("a3_cnn", optimizer(
        "torch.optim.Adam(model[-1].parameters(), lr=1e-3)"), {
        OPTIMIZER: "make_optimizer leaves 11 of the model's parameter tensors out of the optimizer"}),
    "make_optimizer returns the parameters": ("a2_ffn", optimizer("model.parameters()"), {
        OPTIMIZER: "must return a torch.optim optimizer, not a generator"}),
    "per-batch averaged accuracy": ("a2_ffn", evaluate(result="sum(accuracies) / len(accuracies)"), {
        ACCURACY: "divide by the number of images"}),
    "accuracy of the first batch only": ("a2_ffn", FIRST_BATCH_ONLY, {
        ACCURACY: "evaluate returned 0.9375 for a model that gets 0.7500 right"}),
    "accuracy in percent": ("a2_ffn", evaluate(result="100 * correct / seen"), {
        ACCURACY: "but an accuracy is a fraction in [0, 1]"}),
    "the count of correct images": ("a2_ffn", evaluate(result="correct"), {
        ACCURACY: "must return the accuracy as a Python float (use .item()), not a int"}),
    "argmax over the batch": ("a2_ffn", evaluate(predictions="model(images).argmax(dim=0)"), {
        ACCURACY: "The size of tensor a (2) must match the size of tensor b (16)"}),
    "no eval() in evaluate": ("a2_ffn", evaluate(setup="pass"), {
        EVAL_MODE: "must call model.eval() before predicting"}),
    "gradients left on in evaluate": ("a2_ffn", evaluate(context="torch.enable_grad()"), {
        EVAL_MODE: "under torch.no_grad()"}),
    "evaluate leaves the images on the CPU": ("a2_ffn", evaluate(move="pass"), {
        EVAL_MOVES: "evaluate moved the images of 0 of 4 batches to `device`"}),
    "wrong flatten size": ("a2_ffn", model(
        "nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 16, 64), nn.ReLU(), nn.Linear(64, 2))"), {
        OUTPUT: "mat1 and mat2 shapes cannot be multiplied"}),
    "softmax, then cross-entropy": ("a2_ffn", model("nn.Sequential(reference(), nn.Softmax(dim=1))"), {
        OUTPUT: "it ends with a Softmax"}),
    "a3: softmax, then cross-entropy": ("a3_cnn", model("nn.Sequential(reference(), nn.Softmax(dim=1))"), {
        OUTPUT: "it ends with a Softmax"}),
    "batch norm without running statistics": ("a2_ffn", model(
        "nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.BatchNorm1d(64, track_running_stats=False), "
        "nn.ReLU(), nn.Linear(64, 2))"), {OUTPUT: BATCH_STATISTICS}),
    "a3: batch norm without running statistics": ("a3_cnn", CNN.format(norm=", track_running_stats=False"), {
        OUTPUT: BATCH_STATISTICS}),
    "standardized over the batch": ("a2_ffn", BATCH_STANDARDIZED, {OUTPUT: BATCH_STATISTICS}),
    "a convolution on a bare parameter": ("a2_ffn", SMUGGLED_CONVOLUTION, {
        ARCHITECTURE: "keeps weights in Sneaky, which a2_ffn does not allow"}),
    "a convolution as unfold and Linear": ("a2_ffn", UNFOLDED_CONVOLUTION, {
        ARCHITECTURE: "computes im2col, which a2_ffn does not allow"}),
    "a3: group norm": ("a3_cnn", model(
        "nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 2))"),
        {ARCHITECTURE: "GroupNorm"}),
    "a fully connected net for the CNN": ("a3_cnn", model("nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))"), {
        CONVOLUTION: "computes no convolution"}),
    "too many parameters": ("a2_ffn", model(
        "nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2048), nn.ReLU(), nn.Linear(2048, 2))"), {
        PARAMETERS: "more than the limit of 5,000,000"}),
}

# case: (assignment, code appended to the reference, the checks it was written to exercise); it must pass them all
RIGHT = {
    "a4: zero_grad() after step()": ("a4_autoencoder", train(LOSS, BACKWARD, STEP, ZERO), [A4_ZEROES, A4_LOWERS]),
    "clipping by norm": ("a2_ffn", train(ZERO, LOSS, BACKWARD, "nn.utils.clip_grad_norm_(model.parameters(), 1.0)",
                                         STEP), [LOWERS, MEAN, ZEROES]),
    "clipping by value": ("a2_ffn", train(ZERO, LOSS, BACKWARD, "nn.utils.clip_grad_value_(model.parameters(), 0.05)",
                                          STEP), [LOWERS, ZEROES]),
    "an L2 penalty in the loss": ("a2_ffn", train(ZERO, L2, BACKWARD, STEP), [LOWERS, MEAN, ZEROES]),
    "label smoothing": ("a2_ffn", train(setup="model.train(); loss_fn.label_smoothing = 0.1"), [LOWERS, MEAN, ZEROES]),
    "a scheduler stepped per batch": ("a2_ffn", train(
        ZERO, LOSS, BACKWARD, STEP, "scheduler.step()",
        setup="model.train(); scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.99)"), [LOWERS, ZEROES]),
    "zero_grad(set_to_none=True)": ("a3_cnn", train("optimizer.zero_grad(set_to_none=True)", LOSS, BACKWARD, STEP),
                                    [ZEROES, LOWERS]),
    "zero_grad() after step()": ("a2_ffn", train(LOSS, BACKWARD, STEP, ZERO), [ZEROES, LOWERS]),
    "model.zero_grad()": ("a2_ffn", train("model.zero_grad()", LOSS, BACKWARD, STEP), [ZEROES]),
    "log_softmax inside the loss": ("a2_ffn", train(
        ZERO, "loss = loss_fn(torch.log_softmax(model(images), dim=1), labels)", BACKWARD, STEP), [MEAN, ZEROES]),
    "sample-weighted mean loss": ("a2_ffn", train(accumulate="loss.item() * len(images)",
                                                  result="total / len(loader.dataset)"), [MEAN]),
    "batch unpacked in the loop, enumerate": ("a3_cnn", train(
        loop="index, batch in enumerate(loader)", move="images, labels = (t.to(device) for t in batch)"),
        [TRAIN_MOVES, TRAIN_MODE, MEAN]),
    "moves after reshape and from torch.tensor": ("a2_ffn", train(
        move="images = images.reshape(len(images), -1).to(device); labels = torch.tensor(labels).to(device)"),
        [TRAIN_MOVES, TRAIN_MODE]),
    "moves to a parameter's device, non-blocking": ("a2_ffn", train(
        move="images = images.to(next(model.parameters())); labels = labels.to(device, non_blocking=True)"),
        [TRAIN_MOVES]),
    "moves with device= and .float()": ("a3_cnn", train(
        move="images = images.to(device=device).float(); labels = torch.as_tensor(labels, device=device).long()"),
        [TRAIN_MOVES]),
    "weight decay and param groups": ("a2_ffn", optimizer(
        "torch.optim.SGD([{'params': list(model.parameters())[:-2]}, {'params': list(model.parameters())[-2:], "
        "'lr': 0.01}], lr=0.05, momentum=0.9, weight_decay=5e-4)"), [OPTIMIZER]),
    "evaluate compares on the CPU": ("a2_ffn", evaluate(
        move="images = images.to(device)", predictions="model(images).argmax(dim=1).cpu()"), [EVAL_MOVES, ACCURACY]),
    "inference_mode, torch.max and float means": ("a2_ffn", MEAN_OF_FLOATS, [EVAL_MODE, ACCURACY, EVAL_MOVES]),
    "a final LogSoftmax": ("a2_ffn", model("nn.Sequential(reference(), nn.LogSoftmax(dim=1))"), [OUTPUT]),
    "an own nn.Module": ("a2_ffn", OWN_MODULE, [ARCHITECTURE, OUTPUT, PARAMETERS]),
    "a3: GELU, Dropout2d and adaptive pooling": ("a3_cnn", CNN.format(norm=""),
                                                 [ARCHITECTURE, CONVOLUTION, OUTPUT, PARAMETERS]),
    "just under the parameter limit": ("a2_ffn", model(
        "nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 1600), nn.ReLU(), nn.Linear(1600, 2))"), [PARAMETERS]),
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

        def observe(seen: Observation, judged: Callable[..., None] = check) -> None:
            if (failure := judge(judged, seen.model_dump_json(), assignment)) is not None:
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


@pytest.mark.parametrize("assignment_id", ["a2_ffn", "a3_cnn", "a4_autoencoder", "a5_cifar10"])
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


@pytest.mark.parametrize("case", list(RIGHT))
def test_a_right_variant_fails_no_check(case: str, tmp_path: Path) -> None:
    assignment_id, code, _ = RIGHT[case]
    assignment = load_assignment(assignment_id)
    assert failures_of(assignment, variant(assignment, code, tmp_path / "submission")) == {}


@pytest.mark.parametrize("assignment_id", ["a2_ffn", "a3_cnn"])
def test_every_check_has_a_right_and_a_wrong_variant(assignment_id: str) -> None:
    """The checks are shared, so a variant of either assignment counts for every assignment that has its check."""
    checks = set(hidden_checks(load_assignment(assignment_id)))
    failed = {check for _, _, expected in WRONG.values() for check in expected}
    exercised = {check for _, _, targets in RIGHT.values() for check in targets}
    assert not checks - failed, f"no wrong variant fails {sorted(checks - failed)}"
    assert not checks - exercised, f"no right variant exercises {sorted(checks - exercised)}"
