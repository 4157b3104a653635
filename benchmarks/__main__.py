"""`python -m benchmarks [--smoke | --full]`: every benchmark, one markdown table."""
from benchmarks.run import main

raise SystemExit(main())
