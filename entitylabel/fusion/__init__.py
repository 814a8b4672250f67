"""Stage 5: the compact entity-guided fusion model (train, fuse) and the fusion metrics (evaluate)."""
