"""The hostile submissions are data for the tests, never tests or conftests of this test run."""

collect_ignore = ["submissions"]
