"""secretkit.etcd."""
