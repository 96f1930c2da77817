"""Prompt screening: extraction, normalization, guideline matching and decisions."""
