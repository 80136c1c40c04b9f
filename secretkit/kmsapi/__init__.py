"""Clients for running KMS plugins over gRPC."""

from secretkit.kmsapi.client import GrpcKMSService, V1Beta1Client, map_rpc_error
from secretkit.kmsapi.endpoint import grpc_target

__all__ = ["GrpcKMSService", "V1Beta1Client", "grpc_target", "map_rpc_error"]
