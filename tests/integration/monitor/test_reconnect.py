"""The monitor follows a 3-member etcd cluster across the death of its member."""

from __future__ import annotations

import pytest

from secretkit.etcd import EtcdClient
from tests.fixtures.servers import EtcdCluster
from tests.integration.monitor.helpers import (
    PLAINTEXT_SECRET,
    fast_options,
    objects,
    running_monitor,
    scrape,
    value,
    wait_for,
)

pytestmark = pytest.mark.etcd


def test_killing_the_member_it_watches_resumes_on_another_without_a_full_scan(
    etcd_cluster: EtcdCluster,
) -> None:
    with EtcdClient(etcd_cluster.client_config()) as writer_setup:
        writer_setup.put(b"/registry/secrets/default/before", PLAINTEXT_SECRET)
    client = EtcdClient(etcd_cluster.client_config())
    with client, running_monitor(fast_options(), client) as monitor:
        address = monitor.address
        assert objects(scrape(address), "plaintext") == 1
        watched = etcd_cluster.endpoints.index(client.endpoint)
        etcd_cluster.members[watched].kill()
        others = [e for i, e in enumerate(etcd_cluster.endpoints) if i != watched]
        # the writer waits out a leader election (the killed member may have led)
        with EtcdClient(etcd_cluster.client_config(endpoints=tuple(others), timeout=30)) as writer:
            for i in range(5):
                writer.put(f"/registry/secrets/default/after-{i}".encode(), PLAINTEXT_SECRET)
            writer.delete(b"/registry/secrets/default/before")
        wait_for(
            lambda: objects(scrape(address), "plaintext") == 5,
            what="the changes made while its member was dead",
        )
        samples = scrape(address)
        assert value(samples, "secretkit_monitor_watch_resumes_total") >= 1
        assert value(samples, "secretkit_monitor_full_scans_total", reason="start") == 1
        assert sum(
            v for (name, _), v in samples.items() if name == "secretkit_monitor_full_scans_total"
        ) == 1, "a resumed watch needs no second full scan"
        assert value(samples, "secretkit_monitor_errors_total", kind="etcd_unavailable") >= 1
        assert client.endpoint != etcd_cluster.endpoints[watched]

        # the member comes back; killing the next one is survived the same way
        etcd_cluster.members[watched].restart()
        second = etcd_cluster.endpoints.index(client.endpoint)
        etcd_cluster.members[second].kill()
        alive = [e for i, e in enumerate(etcd_cluster.endpoints) if i != second]
        with EtcdClient(etcd_cluster.client_config(endpoints=tuple(alive), timeout=30)) as writer:
            writer.delete(b"/registry/secrets/default/after-0")
        wait_for(lambda: objects(scrape(address), "plaintext") == 4, what="the delete")
        assert value(scrape(address), "secretkit_monitor_following") == 1
