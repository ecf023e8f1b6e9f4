"""Stage 3, models: one record per model family, and the whole-model expression (covariance, noise, mean)."""
