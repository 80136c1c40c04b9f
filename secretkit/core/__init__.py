"""The pure core: bytes and dataclasses in, bytes and dataclasses out.

Storage formats (:mod:`.formats`), EncryptionConfiguration models, parsing and rules
(:mod:`.encryption_config`), the transformer chain (:mod:`.transformers`), the one
judgement of a stored value (:mod:`.readability`), the etcd key layout
(:mod:`.layout`), the KMS service shape (:mod:`.kms_service`), Go durations and
resource names. No network, no files, no clock, no flags: its only imports are the
standard library, the crypto libraries, a YAML parser and :mod:`secretkit.errors`
(tests/unit/test_core_contract.py enforces it). File reading and writing, CLI flags
and hints about them live in the callers.
"""
