#!/usr/bin/env python3
"""make bench: python -m bioloop.sim.benches (every bench, then docs/benchmarks.md)."""
import sys

from bioloop.sim.benches import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
