"""Generated KMS gRPC bindings."""
