"""secretkit.kube."""
