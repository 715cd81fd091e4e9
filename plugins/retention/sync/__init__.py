"""Segment sync: the engine that pushes warehouse segments to destinations."""
