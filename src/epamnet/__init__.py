"""epamnet: a reproducibility pipeline for EPAM-Net (Neurocomputing 2025)."""

__version__ = "0.1.0"
