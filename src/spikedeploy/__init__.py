"""spikedeploy: snnTorch -> NIR -> Lava, with equivalence checks and energy reports.

Stages (one-way): models -> export -> NIR (ir) -> hw_sim / energy; deploy
orchestrates them and owns the command line.
"""
__version__ = "0.1.0"
