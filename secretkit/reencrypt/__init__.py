"""Re-encrypt every stored object: through the Kubernetes API (an empty merge patch per
object, rewritten inside the server's own compare-and-swap) or directly in etcd
(compare-and-swap), resumable.

Entry points: :func:`run_api` and :func:`run_etcd` (see docs/reencrypt.md).
"""

from secretkit.reencrypt.api_engine import ApiReencryptor, ApiRunOptions
from secretkit.reencrypt.checkpoint import Checkpoint, CheckpointFile
from secretkit.reencrypt.etcd_engine import EtcdReencryptor, EtcdRunOptions, EtcdScope
from secretkit.reencrypt.runner import RunControl, run_api, run_etcd, scopes_for
from secretkit.reencrypt.stale import is_stale, is_unreadable
from secretkit.reencrypt.summary import ObjectError, Summary
from secretkit.reencrypt.verify import verify_no_stale

__all__ = [
    "ApiReencryptor",
    "ApiRunOptions",
    "Checkpoint",
    "CheckpointFile",
    "EtcdReencryptor",
    "EtcdRunOptions",
    "EtcdScope",
    "ObjectError",
    "RunControl",
    "Summary",
    "is_stale",
    "is_unreadable",
    "run_api",
    "run_etcd",
    "scopes_for",
    "verify_no_stale",
]
