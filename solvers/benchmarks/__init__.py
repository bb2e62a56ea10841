"""Training benchmarks (scripts; they print ratios measured side by side in one run)."""
