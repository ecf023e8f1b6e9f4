"""Stage 1, the expression tree: frozen nodes, tree operations, numeric evaluation, the printer."""
