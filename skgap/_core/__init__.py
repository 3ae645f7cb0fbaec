"""Kernels and helpers below every stage: norms, sphere sums, the shift, threads, layout, validation."""
