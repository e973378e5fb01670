"""Tests of the edge stage."""
