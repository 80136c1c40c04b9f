"""``secretkit monitor``: continuous encryption coverage of etcd as Prometheus metrics.

One full scan with the audit's reader and verdicts, then an etcd watch from that
revision (cost proportional to changes); see docs/monitor.md.

Modules: ``options`` (settings), ``labels`` (bounded label values), ``coverage``
(the counts and the audit's verdicts), ``inputs`` (config and key_ids), ``follow``
(scan + watch engine), ``checks`` (history and snapshots), ``metrics``, ``http``,
``run`` (wiring).
"""
