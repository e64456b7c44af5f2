"""Code similarity across a class: which submissions share code beyond the course's own material.

copydetect fingerprints each submission as graded: Pygments tokens with names normalized (V, F, O; strings S;
comments and whitespace dropped), k-grams of that stream hashed and winnowed, and the overlap of two fingerprint
sets mapped back to character ranges of each file. This module decides what is discounted (the stub and every
file of the handout, the material `[similarity]` lists, and fingerprints found across much of the class, as
Dolos does), which pairs a TA sees, and keeps them with side-by-side views in `<out>/_similarity/`. It only reads
files: no submission's code runs here.
"""

from __future__ import annotations

import copy
import hashlib
import io
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from itertools import combinations
from pathlib import Path

import nbformat
import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import filter_code, get_token_coverage, hashed_kgrams
from pydantic import BaseModel, Field, ValidationError

from grader.config import Assignment
from grader.errors import GraderError
from grader.graded_code import keep_graded_code, read_graded_code
from grader.intake import receive, student_id_for
from grader.models import SIMILARITY_DIR, Pair, SimilarityResult
from grader.reports.files import REPORT_JSON, read_report_json, write_atomic
from grader.reports.templating import render

RESULT_JSON = "similarity.json"
CODE_BLOCK = re.compile(r"^```(?:python|py)\n(.*?)^```", re.MULTILINE | re.DOTALL)
Regions = list[tuple[int, int]]


class Source(BaseModel):
    """One submission's code as graded: its `.py` files, required ones first."""

    student_id: str
    files: dict[str, str]
    archived: bool = Field(False, description="from an earlier term's archive: compared with the class only")

    @property
    def text(self) -> str:
        if len(self.files) == 1:
            return next(iter(self.files.values()))
        return "".join(f"# ==== {name} ====\n{code.rstrip()}\n\n" for name, code in self.files.items())


@dataclass
class Match:
    """A listed pair with the character ranges of each side that match the other."""

    pair: Pair
    regions: tuple[Regions, Regions]


def run_similarity(assignment: Assignment, report_dirs: Sequence[Path], out_dir: Path,
                   archives: Sequence[Path] = ()) -> SimilarityResult:
    """The stage: compare the class's graded code (and archives), write `out_dir/_similarity/`, return the result.

    A result already there for the same sources, material and settings is returned as it is."""
    sources, without_code = class_sources(assignment, report_dirs)
    sources += [source for archive in archives for source in folder_sources(assignment, archive, archived=True)]
    material = course_material(assignment)
    key = _key(assignment, sources, material)
    cached = load_result(out_dir)
    if cached is not None and cached.key == key:
        return cached
    matches, class_boilerplate = compare(assignment, sources, material)
    result = SimilarityResult(
        key=key, threshold=assignment.similarity.threshold,
        submissions=sum(not s.archived for s in sources), archived=sum(s.archived for s in sources),
        material=list(material), class_boilerplate=class_boilerplate, without_code=without_code,
        pairs=[match.pair for match in matches])
    _write(result, matches, {s.student_id: s for s in sources}, out_dir)
    return result


def load_result(out_dir: Path) -> SimilarityResult | None:
    """The result kept in `out_dir/_similarity/`, or None when there is none (or an unreadable one)."""
    path = out_dir / SIMILARITY_DIR / RESULT_JSON
    try:
        return SimilarityResult.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def class_sources(assignment: Assignment, report_dirs: Sequence[Path]) -> tuple[list[Source], list[str]]:
    """The graded code of each report folder, and the students whose folder has no `graded/` (an older grader's
    report, or a submission the grader could not grade)."""
    sources, without_code = [], []
    for folder in report_dirs:
        student_id = read_report_json(folder / REPORT_JSON).submission.student_id
        files = read_graded_code(folder, assignment.submission.files)
        if files is None:
            without_code.append(student_id)
        elif files:
            sources.append(Source(student_id=student_id, files=files))
    return sources, without_code


def folder_sources(assignment: Assignment, folder: Path, archived: bool) -> list[Source]:
    """A folder of submissions (as `grader batch` takes), taken in by intake and the notebook rule as for grading.

    An archived submission's id is `<folder>~<student>`."""
    if not folder.is_dir():
        raise GraderError(f"The archive {folder} is not a folder of submissions.")
    sources = []
    with tempfile.TemporaryDirectory(prefix="grader-similarity-") as tmp:
        for path in sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_"))):
            student_id = f"{student_id_for(folder)}~{student_id_for(path)}" if archived else student_id_for(path)
            intake = receive(assignment, path, Path(tmp) / "submission", student_id)
            keep_graded_code(intake.folder, Path(tmp) / "kept")
            files = read_graded_code(Path(tmp) / "kept", assignment.submission.files)
            if files:
                sources.append(Source(student_id=student_id, files=files, archived=archived))
    return sources


def course_material(assignment: Assignment) -> dict[str, str]:
    """The course's own code, by name: every `.py` of the handout (the stub first), the handout's Python code
    blocks, and the files `[similarity] material` lists."""
    folder = assignment.folder
    paths = [folder / name for name in assignment.submission.files]
    paths += sorted(folder.rglob("*.py")) + [folder / name for name in assignment.similarity.material]
    material = {path.relative_to(folder).as_posix(): _code_of(path) for path in dict.fromkeys(paths)}
    handout = folder / "README.md"
    if handout.is_file():
        material["README.md"] = "\n".join(CODE_BLOCK.findall(handout.read_text(encoding="utf-8")))
    return material


def compare(assignment: Assignment, sources: Sequence[Source], material: dict[str, str],
            discount: bool = True) -> tuple[list[Match], int]:
    """The listed pairs, largest share first, and how many fingerprints the class made boilerplate.

    Without `discount` nothing is subtracted (the benchmark's baseline)."""
    settings = assignment.similarity
    common = _material_hashes(material.values(), settings.kgram) if discount else set()
    prints = {s.student_id: _fingerprint(s, settings.kgram, settings.guarantee, common) for s in sources}
    shared = _class_boilerplate([prints[s.student_id] for s in sources if not s.archived], assignment) \
        if discount else set()
    prints = {student: _without(fingerprint, shared) for student, fingerprint in prints.items()}
    material_streams = {filter_code(code, "material.py", "python")[0] for code in material.values()}
    matches = [match for a, b in _pairs(sources)
               if (match := _match(a, b, prints[a.student_id], prints[b.student_id], material_streams,
                                   settings.threshold)) is not None]
    return sorted(matches, key=lambda m: (-m.pair.duplicate, -m.pair.share, m.pair.first, m.pair.second)), len(shared)


def _code_of(path: Path) -> str:
    """A material file's code: a notebook's code cells, or the file's text."""
    if path.suffix == ".ipynb":
        cells = nbformat.read(path, as_version=4).cells
        return "\n\n".join(cell.source for cell in cells if cell.cell_type == "code")
    return path.read_text(encoding="utf-8", errors="replace")


def _material_hashes(codes: Iterable[str], kgram: int) -> set[int]:
    """Every k-gram hash of the material, not just winnowed ones, so none of it survives in a submission."""
    return {int(h) for code in codes for h in hashed_kgrams(filter_code(code, "material.py", "python")[0], kgram)}


def _fingerprint(source: Source, kgram: int, guarantee: int, boilerplate: set[int]) -> CodeFingerprint:
    fingerprint = CodeFingerprint(f"{source.student_id}.py", kgram, guarantee - kgram + 1, language="python",
                                  fp=io.StringIO(source.text))
    return _without(fingerprint, boilerplate)


def _without(fingerprint: CodeFingerprint, hashes: set[int]) -> CodeFingerprint:
    """The fingerprint less `hashes`, its own-code size (token coverage) recounted."""
    if not hashes & fingerprint.hashes:
        return fingerprint
    kept = copy.copy(fingerprint)
    kept.hash_idx = {h: i for h, i in fingerprint.hash_idx.items() if h not in hashes}
    kept.hashes = set(kept.hash_idx)
    kept.token_coverage = get_token_coverage(kept.hash_idx, kept.k, len(kept.filtered_code))
    return kept


def _class_boilerplate(prints: list[CodeFingerprint], assignment: Assignment) -> set[int]:
    """Fingerprints found in more than `boilerplate_share` of the class and in `boilerplate_min_submissions`."""
    settings = assignment.similarity
    counts = Counter(h for fingerprint in prints for h in fingerprint.hashes)
    floor = max(settings.boilerplate_share * len(prints), settings.boilerplate_min_submissions - 1)
    return {h for h, n in counts.items() if n > floor}


def _pairs(sources: Sequence[Source]) -> list[tuple[Source, Source]]:
    """Every pair of the class, and each archived submission with each of the class (class member first)."""
    return [(b, a) if a.archived else (a, b) for a, b in combinations(sources, 2)
            if not (a.archived and b.archived)]


def _match(a: Source, b: Source, first: CodeFingerprint, second: CodeFingerprint, material_streams: set[str],
           threshold: float) -> Match | None:
    """The pair when it is a duplicate (and not of the course's own code) or shares `threshold` of either side."""
    duplicate = first.filtered_code == second.filtered_code and first.filtered_code not in material_streams \
        and bool(first.filtered_code)
    if not duplicate and not (first.hashes & second.hashes and first.token_coverage and second.token_coverage):
        return None
    _, (first_share, second_share), (first_slices, second_slices) = compare_files(first, second)
    if not duplicate and max(first_share, second_share) < threshold:
        return None
    pair = Pair(first=a.student_id, second=b.student_id, first_share=round(float(first_share), 4),
                second_share=round(float(second_share), 4), duplicate=duplicate, archived=b.archived,
                view=f"{SIMILARITY_DIR}/{_file_name(a.student_id)}--{_file_name(b.student_id)}.html")
    return Match(pair, (_regions(first_slices), _regions(second_slices)))


def _regions(slices: np.ndarray) -> Regions:
    """copydetect's 2xN array of copied token ranges (an empty array when none) as (start, end) pairs."""
    return [(int(start), int(end)) for start, end in zip(*slices, strict=True)] if len(slices) else []


def _file_name(student_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.~-]", "_", student_id)


def _key(assignment: Assignment, sources: Sequence[Source], material: dict[str, str]) -> str:
    digest = hashlib.sha256(f"copydetect {version('copydetect')}\n{assignment.similarity.model_dump_json()}".encode())
    for part in [*material.values(), *(s.model_dump_json() for s in sources)]:
        digest.update(hashlib.sha256(part.encode()).digest())
    return digest.hexdigest()


def _write(result: SimilarityResult, matches: list[Match], sources: dict[str, Source], out_dir: Path) -> None:
    """The side-by-side views, then `similarity.json`; views of an earlier result are removed."""
    folder = out_dir / SIMILARITY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.html"):
        stale.unlink()
    for match in matches:
        sides = [_side(sources[student], regions, share) for student, regions, share in zip(
            (match.pair.first, match.pair.second), match.regions, (match.pair.first_share, match.pair.second_share),
            strict=True)]
        write_atomic(out_dir / match.pair.view, render("similarity_pair.html.j2", pair=match.pair, sides=sides,
                                                       result=result))
    write_atomic(folder / RESULT_JSON, result.model_dump_json(indent=2) + "\n")


def _side(source: Source, regions: Regions, share: float) -> dict[str, object]:
    """One column of a view: the student's code cut into (text, matched) segments, and its line count."""
    text, segments, at = source.text, [], 0
    for start, end in regions:
        start = max(start, at)
        segments += [(text[at:start], False), (text[start:end], True)]
        at = max(end, at)
    segments.append((text[at:], False))
    return {"student": source.student_id, "archived": source.archived, "share": share,
            "segments": [(chunk, marked) for chunk, marked in segments if chunk],
            "lines": text.count("\n") + 1}
