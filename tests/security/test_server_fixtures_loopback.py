"""The real servers the test suite starts listen on loopback addresses only."""

from __future__ import annotations

import pytest

from tests.fixtures.servers import EtcdServer, MotoServer, OpenBaoServer
from tests.security.netcheck import is_loopback, listening, process_tree, remote_peers


def _assert_loopback_only(pid: int) -> None:
    procs = process_tree(pid)
    addresses = listening(procs)
    assert addresses, "the server listens nowhere?"
    assert [a for a in addresses if not is_loopback(a[1])] == []
    assert remote_peers(procs) == []


@pytest.mark.etcd
def test_etcd_fixture_listens_on_loopback_only(etcd_server: EtcdServer) -> None:
    _assert_loopback_only(etcd_server.pid)


@pytest.mark.vault
def test_openbao_fixture_listens_on_loopback_only(openbao_server: OpenBaoServer) -> None:
    _assert_loopback_only(openbao_server.pid)


@pytest.mark.aws
def test_moto_fixture_listens_on_loopback_only(moto_server: MotoServer) -> None:
    _assert_loopback_only(moto_server.pid)
