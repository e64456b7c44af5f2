"""The layer rule: what a submitted model may be made of and compute, for the hidden checks and training alike.

Every parameter must belong to a layer of an allowed type (so a weight cannot hide in a custom module),
a forward pass must run none of the assignment's forbidden operators (so a convolution cannot be computed
with F.conv2d or an unfold), and the parameters must stay within the limit. The rule reads a
`ModelDescription` only, so it runs wherever the grader likes: it needs neither torch nor student code.
"""

from __future__ import annotations

from grader.config import Training
from grader.protocol import ModelDescription


def forbidden_ops(description: ModelDescription, training: Training) -> list[str]:
    return [op for op in description.ops if any(op.lstrip("_").startswith(f) for f in training.forbidden_ops)]


def layer_problems(description: ModelDescription, training: Training, assignment_id: str) -> list[str]:
    """Sentences naming every layer type and operator the assignment does not allow (none when the model is fine)."""
    allowed = set(training.allowed_layers)
    owners = sorted({p.owner for p in description.parameters if p.owner not in allowed})
    problems = [f"The model keeps weights in {', '.join(owners)}, which {assignment_id} does not allow; weights "
                f"may only belong to {', '.join(sorted(allowed & KNOWN_WEIGHTED))}."] if owners else []
    if ops := forbidden_ops(description, training):
        problems.append(f"The model computes {', '.join(ops)}, which {assignment_id} does not allow.")
    return problems


def size_problem(description: ModelDescription, training: Training) -> str | None:
    count, limit = description.parameter_count, training.max_parameters
    return f"The model has {count:,} parameters, more than the limit of {limit:,}." if count > limit else None


# torch.nn layers that hold parameters, to name in a sentence the allowed ones that can keep weights.
KNOWN_WEIGHTED = frozenset({
    "Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d",
    "LayerNorm", "GroupNorm", "InstanceNorm2d", "Embedding", "PReLU", "RNN", "LSTM", "GRU",
})
