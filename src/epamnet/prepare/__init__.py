"""Data preparation stages: acquire, synthetic, pose, clips, crop, splits."""
