"""Analysis: the fit tracer (frame store, value reader, recording, summary, loss plot, fit-mode comparison)."""
