"""Labeling assets: weak supervision (weak.py) and the human loop (human.py)."""
