"""Student tracebacks show no path of the grader's machine: not its Python install, not the folder it graded in."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.config import load_assignment
from grader.models import Failure, FailureKind
from grader.student_traceback import explain_import_failure
from tests.framework.test_notebook import import_failure, take

DETAILS = """Traceback (most recent call last):
  File "/opt/grader/grader/harness/interface.py", line 70, in main
    module = import_submission(folder, spec.module)
  File "/tmp/stage-x1/submission/ffn.py", line 3, in <module>
    CONFIG = helpers.read_config()
  File "/tmp/stage-x1/submission/lib/helpers.py", line 5, in read_config
    return json.loads(TEXT)
  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads
    return _default_decoder.decode(s)
  File "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1, in f
    pass
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)"""


def test_frames_show_the_students_files_and_library_paths_only() -> None:
    failure = Failure(stage="import", kind=FailureKind.IMPORT_ERROR, message="Importing ffn.py raised ...",
                      details=DETAILS)
    shown = explain_import_failure(failure, load_assignment("a2_ffn"), None).student_traceback
    assert [line for line in shown.splitlines() if line.startswith("  File")] == [
        '  File "ffn.py", line 3, in <module>',
        '  File "lib/helpers.py", line 5, in read_config',
        '  File "json/__init__.py", line 346, in loads',
        '  File "torch/nn/modules/module.py", line 1, in f',
    ]


def test_a_kept_cell_failing_inside_torch_shows_no_host_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.hub fails in the standard library's urllib, whose frames sit in the grader's own Python install."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ffn = load_assignment("a2_ffn")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_code_cell("weights = torch.hub.load_state_dict_from_url('file:///nonexistent/w.pt')"),
        nbformat.v4.new_code_cell("def build_model():\n    return weights"),
    ])
    nbformat.write(notebook, tmp_path / "dana.ipynb")
    intake = take(ffn, tmp_path / "dana.ipynb", tmp_path)
    failure = import_failure(intake.folder, ffn, FailureKind.IMPORT_ERROR)
    shown = explain_import_failure(failure, ffn, intake.notebook).student_traceback
    assert "  Cell 2, line 1 of dana.ipynb, in <module>" in shown
    assert '  File "torch/hub.py", line ' in shown and '  File "urllib/request.py", line ' in shown
    assert str(tmp_path) not in shown and "/lib/python" not in shown, shown
