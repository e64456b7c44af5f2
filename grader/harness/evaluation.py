"""In-sandbox evaluation stage: logits of the trained model on unlabeled images.

Usage: python -m grader.harness.evaluation (reads spec.json: an EvalSpec)
The images come shuffled, the hidden test images and a perturbed copy of them together, with no label and no
training image anywhere in reach; the stage writes one row of logits per image, in the order given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from grader.files import write_atomic
from grader.harness.loaders import logits_of, normalize
from grader.harness.submission import exit_now, import_submission, trimmed_traceback
from grader.models import FailureKind
from grader.protocol import EvalSpec, FailureRecord, read_spec


def evaluate(spec: EvalSpec) -> None:
    torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    device = torch.device(spec.device)
    module = import_submission(Path(spec.submission), spec.module)
    model = module.build_model()
    # torch's own loader, not a method the submission's model class could override to do more than load.
    torch.nn.Module.load_state_dict(model, torch.load(spec.checkpoint, map_location="cpu", weights_only=True))
    model.to(device).eval()
    images = normalize(np.load(spec.images), spec.mean, spec.std)
    np.save(spec.logits, logits_of(model, images, spec.batch_size, device))


def main() -> None:
    spec = read_spec(EvalSpec)
    try:
        evaluate(spec)
    except BaseException as exc:  # noqa: BLE001 - whatever student code raises becomes the report
        record = FailureRecord(kind=FailureKind.EXCEPTION, message=f"{type(exc).__name__}: {str(exc)[:300]}",
                               details=trimmed_traceback(exc))
        write_atomic(Path(spec.failure), record.model_dump_json())


if __name__ == "__main__":
    main()
    exit_now()
