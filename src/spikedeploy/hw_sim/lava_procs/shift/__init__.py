"""Per-element stream delay that also sums its incoming connections (see process.py)."""
