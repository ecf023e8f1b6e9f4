"""The explorer: a copy of a model whose parameter values the user sets, and the widget that drags them."""
