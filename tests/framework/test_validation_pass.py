"""The grader's validation pass inside the training stage: it changes nothing, and sees a model that changes itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from grader.config import load_assignment
from grader.harness.training import BudgetClock, ChangedWhileMeasured, Validator, weights_digest
from grader.protocol import Budget, TrainSpec


def batch_norm_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2))


def test_the_digest_covers_every_parameter_and_buffer() -> None:
    """0-dim buffers (BatchNorm's batch counter) included; any change to a weight or a buffer shows."""
    model = batch_norm_model()
    first = weights_digest(model)
    assert weights_digest(model) == first
    model[2].num_batches_tracked += 1
    assert weights_digest(model) != first
    second = weights_digest(model)
    with torch.no_grad():
        model[4].bias[1] += 1e-6
    assert weights_digest(model) != second


class SelfTraining(nn.Sequential):
    """Trains itself a little on every forward in eval mode, as a cheat would during a free validation pass."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.training:
            with torch.no_grad():
                self[-1].bias += 0.01
        return super().forward(images)


@pytest.fixture
def validator(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Validator:
    monkeypatch.chdir(tmp_path)
    images = tmp_path / "validation.npy"
    np.save(images, np.random.default_rng(0).integers(0, 256, (10, 3, 32, 32), dtype=np.uint8))
    assignment = load_assignment("a2_ffn")
    spec = TrainSpec(assignment_id="a2_ffn", module="ffn", seed=0, threads=1, images="", labels="",
                     task="classification", validation_images=str(images), mean=[0.5] * 3, std=[0.25] * 3, device="cpu",
                     budget=Budget(clock="wall", seconds=100.0), training=assignment.training)
    return Validator(spec, BudgetClock(spec.budget, 1, 0.25), torch.device("cpu"))


def test_a_validation_pass_leaves_the_model_and_the_random_state_as_they_were(validator: Validator) -> None:
    model = batch_norm_model()
    before, state = weights_digest(model), torch.random.get_rng_state()
    validator(model, 0)
    assert weights_digest(model) == before and torch.equal(torch.random.get_rng_state(), state)
    assert np.load("validation/epoch-0.npy").shape == (10, 2)
    assert validator.clock.validation > 0, "its time is counted apart from the budget"


def test_a_model_that_changes_itself_while_it_is_measured_is_stopped(validator: Validator) -> None:
    model = SelfTraining(*batch_norm_model())
    with pytest.raises(ChangedWhileMeasured):
        validator(model, 0)
