"""The hidden checks and the framework tests share the grader's pytest plugin."""

pytest_plugins = ["grader.pytest_plugin"]
