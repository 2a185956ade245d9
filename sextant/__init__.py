"""Sextant: the receiving end of a Segment destination."""
