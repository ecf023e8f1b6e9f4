"""Values: tensors to numpy, keys and batch members, bounds, prior facts (base), then parameter frames and units."""
