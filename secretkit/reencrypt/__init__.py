"""secretkit.reencrypt."""
