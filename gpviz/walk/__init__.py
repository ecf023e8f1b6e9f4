"""Stage 2, walking kernels: the handler registry, the built-in handlers, the walker and kernel expressions."""
