"""secretkit.audit."""
