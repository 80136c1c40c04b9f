"""A do-nothing v2 KMS server (sync or asyncio gRPC): the Python gRPC floor for the benchmark.

Usage: python scripts/bench/plugin_echo.py unix:///path/sock [sync|aio]
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from secretkit._proto.kms.v2 import api_pb2, api_pb2_grpc

CIPHERTEXT = b"\x01" * 60


class Echo:
    """Answers without doing any work."""

    def Status(self, request: Any, context: Any) -> Any:
        return api_pb2.StatusResponse(version="v2", healthz="ok", key_id="echo")

    def Encrypt(self, request: Any, context: Any) -> Any:
        return api_pb2.EncryptResponse(ciphertext=CIPHERTEXT, key_id="echo")

    def Decrypt(self, request: Any, context: Any) -> Any:
        return api_pb2.DecryptResponse(plaintext=b"\x5a" * 32)


class AioEcho:
    """The same, as coroutines."""

    async def Status(self, request: Any, context: Any) -> Any:
        return api_pb2.StatusResponse(version="v2", healthz="ok", key_id="echo")

    async def Encrypt(self, request: Any, context: Any) -> Any:
        return api_pb2.EncryptResponse(ciphertext=CIPHERTEXT, key_id="echo")

    async def Decrypt(self, request: Any, context: Any) -> Any:
        return api_pb2.DecryptResponse(plaintext=b"\x5a" * 32)


def run_sync(target: str) -> None:
    """Serve with the synchronous server until SIGTERM."""
    server = grpc.server(ThreadPoolExecutor(max_workers=64))
    api_pb2_grpc.add_KeyManagementServiceServicer_to_server(Echo(), server)
    server.add_insecure_port(target)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop(1).wait()


async def run_aio(target: str) -> None:
    """Serve with grpc.aio until SIGTERM."""
    server = grpc.aio.server()
    api_pb2_grpc.add_KeyManagementServiceServicer_to_server(AioEcho(), server)
    server.add_insecure_port(target)
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    endpoint = sys.argv[1].replace("unix://", "unix:")
    if len(sys.argv) > 2 and sys.argv[2] == "aio":
        asyncio.run(run_aio(endpoint))
    else:
        run_sync(endpoint)
