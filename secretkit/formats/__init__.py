"""secretkit.formats."""
