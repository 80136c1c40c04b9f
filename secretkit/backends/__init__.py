"""secretkit.backends."""
