"""Measuring and comparing models: per-image optimisation, the quality report, diversity, judges, the peer."""
