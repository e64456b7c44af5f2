"""Import stage: the submission imports in time and defines the required names, kinds and signatures."""

from __future__ import annotations

from grader.context import GradingContext
from grader.protocol import ImportSpec, InterfaceResult, read_record, write_spec
from grader.sandbox import python_stage
from grader.stage import StageOutcome, from_record, stage_failure


def check_interface(ctx: GradingContext) -> StageOutcome[None]:
    """Failures of the import stage; none means the later stages can use the module."""
    workdir = ctx.stage_dir("import")
    spec = ImportSpec(assignment_id=ctx.assignment.id, module=ctx.assignment.submission.module,
                      seed=ctx.assignment.seed, threads=ctx.threads)
    write_spec(workdir, spec)
    result = ctx.sandbox.run(python_stage("grader.harness.interface", [], workdir,
                                          ctx.limits(ctx.assignment.limits.import_seconds)))
    recorded = read_record(workdir / spec.result, InterfaceResult)
    if recorded is None:
        return StageOutcome(failures=[stage_failure("import", result, f"importing {spec.module}.py")])
    return StageOutcome(failures=[from_record("import", record) for record in recorded.failures])
