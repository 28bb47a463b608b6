"""Dots: the smallest demo, and the one README.md walks through."""
