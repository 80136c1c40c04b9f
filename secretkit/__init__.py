"""secretkit: protect the Secrets a Kubernetes cluster keeps in etcd."""

__version__ = "0.1.0"
