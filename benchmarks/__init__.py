"""Benchmarks: ``evaluation/`` (room classification, localization, the ESS comparison) and ``perf/`` (the
performance suite); ``machine`` and ``readme`` are shared by both."""
