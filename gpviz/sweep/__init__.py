"""Analysis: cross-validation sweeps (cells, the cell cache, the runner, the result and its scores)."""
