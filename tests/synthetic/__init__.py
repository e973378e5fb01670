"""Tests of the synthetic stage."""
