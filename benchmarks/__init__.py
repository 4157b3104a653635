"""runsync's benchmarks against the sandbox: `python -m benchmarks` (see run.py)."""
