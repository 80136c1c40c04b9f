"""secretkit.cli."""
