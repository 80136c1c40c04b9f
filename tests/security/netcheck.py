"""Which addresses a process tree listens on, and whether they are loopback."""

from __future__ import annotations

import ipaddress

import psutil


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8, ::1 and their IPv4-mapped forms (dual-stack sockets)."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def process_tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its descendants."""
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def listening(procs: list[psutil.Process]) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every listening TCP socket and bound UDP socket."""
    found = []
    for proc in procs:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN or not conn.raddr:
                found.append((proc.pid, conn.laddr.ip, conn.laddr.port))
    return found


def remote_peers(procs: list[psutil.Process]) -> list[tuple[int, str]]:
    """(pid, ip) of every connection whose peer is not loopback."""
    return [
        (proc.pid, conn.raddr.ip)
        for proc in procs
        for conn in proc.net_connections(kind="inet")
        if conn.raddr and not is_loopback(conn.raddr.ip)
    ]
