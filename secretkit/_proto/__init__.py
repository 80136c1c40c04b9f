"""Generated protobuf and gRPC modules (do not edit; see scripts/gen-protos)."""
