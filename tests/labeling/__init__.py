"""Tests of the labeling stage."""
