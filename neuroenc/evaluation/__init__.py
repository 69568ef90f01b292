"""MOABB-style evaluations: splits, runs, results store, statistics and plots."""
