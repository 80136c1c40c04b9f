"""Generated stubs for the subset of etcd's v3 gRPC API secretkit uses (see scripts/gen-protos)."""
