"""File formats: atomic writes, skeleton annotations, videos."""
