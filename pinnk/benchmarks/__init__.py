"""Performance benchmarks: scripts that measure ratios side by side in one run."""
