"""Hostile: when imported under pytest, every test report is forced to "passed"; the code itself is broken."""

import sys as _sys

if "_pytest.reports" in _sys.modules:
    from _pytest.reports import TestReport as _TestReport

    _from_item_and_call = _TestReport.from_item_and_call.__func__

    def _always_passed(cls, item, call):
        report = _from_item_and_call(cls, item, call)
        report.outcome, report.longrepr = "passed", None
        return report

    _TestReport.from_item_and_call = classmethod(_always_passed)


def evaluate(model, loader, device):  # noqa: F811
    return 1.0
