"""How fast the toolkit is: the performance suite (``ess bench-perf``) and its sections, every figure a
ratio to a reference measured in the same run."""
