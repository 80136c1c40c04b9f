"""Generated stubs for the Kubernetes protobuf types secretkit reads and writes (scripts/gen-protos)."""
