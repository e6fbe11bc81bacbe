"""Windowed generalised CUBA neuron (see process.py)."""
