# The two commands of the README, and the test tiers. Each target bootstraps what it needs.
# A relative GRADER_DATA_DIR (as in the README) must mean the same in every child process.
ifneq ($(GRADER_DATA_DIR),)
export GRADER_DATA_DIR := $(abspath $(GRADER_DATA_DIR))
endif

.PHONY: bootstrap grade-examples test test-fast bench

bootstrap:
	@scripts/bootstrap.sh

grade-examples: bootstrap
	.venv/bin/grader examples --out reports/examples

test: bootstrap
	scripts/test.sh

test-fast: bootstrap
	.venv/bin/python -m pytest -m "not real_data and not slow and not docker and not cluster and not service and not postgres and not browser" -q

bench: bootstrap
	.venv/bin/python -m bench
