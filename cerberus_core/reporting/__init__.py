"""The reporting layer (no torch): claims and their tests, tables, figures, display names and style."""
