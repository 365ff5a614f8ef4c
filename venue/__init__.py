"""A FIX 4.4 trading venue for crypto derivatives: see DESIGN.md in the repository."""
