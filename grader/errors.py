"""The one exception type that reaches a TA: its message is a single, complete sentence."""


class GraderError(Exception):
    """A problem with the grader's own inputs (config, data, paths), not with a submission."""
