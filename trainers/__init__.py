"""Training core for every matcher family (see DESIGN.md)."""
