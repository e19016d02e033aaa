"""labkit's benchmarks (python -m bench): measured and reported, never asserted in tests. See README, "Performance"."""
