"""Helpers of the end-to-end check (ci/e2e.py) and of ci/bench_stack.py: the compose stack, the
webserver's API, checks run inside the user_code image, the stack's expected definitions."""
