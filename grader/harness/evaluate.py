"""In-sandbox evaluation stage: logits of the trained model on unlabeled validation images.

Usage: python -m grader.harness.evaluate SPEC_JSON
The spec names the submission, the checkpoint and an images-only array; no label is reachable
from here. Writes `logits.npy` for the images as given and `perturbed_logits.npy` for the same
images under a label-preserving perturbation, so a model that memorized pixels shows a gap.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from grader.harness.loaders import normalize
from grader.harness.submission import exit_now, import_submission, trimmed_traceback, write_json


def perturb(images: torch.Tensor, kind: str, seed: int) -> torch.Tensor:
    """A horizontal flip, or a one-pixel shift (edge-padded) whose direction the seed picks."""
    if kind == "hflip":
        return images.flip(-1)
    dy, dx = [(0, 1), (1, 0), (0, -1), (-1, 0)][seed % 4]
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="replicate")
    return padded[..., 1 - dy : 33 - dy, 1 - dx : 33 - dx]


@torch.no_grad()
def logits_of(model: torch.nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> np.ndarray:
    batches = [model(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(batches).numpy()


def evaluate(spec: dict) -> None:
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    device = torch.device(spec["device"])
    module = import_submission(Path(spec["submission"]), spec["module"])
    model = module.build_model()
    model.load_state_dict(torch.load(spec["checkpoint"], map_location="cpu", weights_only=True))
    model.to(device).eval()
    images = normalize(np.load(spec["images"], mmap_mode="r"), spec["mean"], spec["std"])
    perturbed = perturb(images, spec["perturbation"], spec["seed"])
    out = Path(spec["out"])
    np.save(out / "logits.npy", logits_of(model, images, spec["batch_size"], device))
    np.save(out / "perturbed_logits.npy", logits_of(model, perturbed, spec["batch_size"], device))


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    try:
        evaluate(spec)
    except BaseException as exc:  # noqa: BLE001 - whatever student code raises becomes the report
        write_json(Path(spec["out"]) / "failure.json", {
            "message": f"{type(exc).__name__}: {str(exc)[:300]}",
            "details": trimmed_traceback(exc),
        })


if __name__ == "__main__":
    main(sys.argv[1])
    exit_now()
