"""secretkit.rotation."""
