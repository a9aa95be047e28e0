"""Tools built on the env: reward comparison, plots, line recording, the demo, training and benchmarks."""
