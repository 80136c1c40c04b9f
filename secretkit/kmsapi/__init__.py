"""secretkit.kmsapi."""
