"""secretkit.sandbox."""
