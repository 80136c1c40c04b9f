"""secretkit.encryption_config."""
