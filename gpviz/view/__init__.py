"""Views: typed view data (records), frame validation, axes, and one adapter per source (model, trace, sweep)."""
