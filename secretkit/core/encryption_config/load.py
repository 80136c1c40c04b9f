"""Strict loading of an EncryptionConfiguration file (YAML or JSON).

Mirrors the apiserver's strict decoder: unknown or duplicated fields are errors,
defaults are applied as ``SetDefaults_KMSConfiguration`` does (kms ``apiVersion``
v1, ``timeout`` 3s, ``cachesize`` 1000 for v1 only) and key secrets are decoded
from standard base64. :func:`parse_encryption_config` returns every problem it
finds; :func:`load_encryption_config` also runs the validator and raises one
:class:`EncryptionConfigInvalid` listing all of them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from secretkit.core.durations import parse_duration
from secretkit.core.encryption_config.model import (
    DEFAULT_KMS_API_VERSION,
    DEFAULT_KMS_TIMEOUT_SECONDS,
    DEFAULT_KMS_V1_CACHESIZE,
    ConfigProblem,
    EncryptionConfig,
    IdentityProvider,
    Key,
    KMSProvider,
    LocalKeyProvider,
    Provider,
    ProviderType,
    ResourceRule,
)
from secretkit.core.yamltext import YAMLSyntaxError, parse_yaml
from secretkit.errors import ConfigError

#: (apiVersion, kind) pairs the apiserver decodes as an EncryptionConfiguration
ACCEPTED_TYPES = (
    ("apiserver.config.k8s.io/v1", "EncryptionConfiguration"),
    ("v1", "EncryptionConfig"),  # legacy, still decoded by the apiserver
)

_TOP_FIELDS = ("kind", "apiVersion", "resources")
_RULE_FIELDS = ("resources", "providers")
_PROVIDER_FIELDS = ("aescbc", "aesgcm", "secretbox", "identity", "kms")
_KEYS_FIELDS = ("keys",)
_KEY_FIELDS = ("name", "secret")
_KMS_FIELDS = ("apiVersion", "name", "endpoint", "cachesize", "timeout")



class EncryptionConfigInvalid(ConfigError):
    """An EncryptionConfiguration has one or more problems; ``problems`` lists them all."""

    def __init__(self, problems: list[ConfigProblem], *, source: str) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"invalid EncryptionConfiguration ({count} problem{'s' if count != 1 else ''}):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__(
            "\n".join(lines),
            where=source,
            hint="fix every listed field, then validate the file again",
        )


class _DuplicateJSONField(ValueError):
    """A JSON object repeats a field; the message names the field (shortened)."""


#: a repeated field name longer than this is shortened, as fileio does for YAML
_KEY_SHOWN = 20


def _reject_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            shown = key if len(key) <= _KEY_SHOWN else key[:_KEY_SHOWN] + "\u2026"
            raise _DuplicateJSONField(f"duplicate field {shown!r}")
        result[key] = value
    return result


def _decode_document(data: bytes) -> Any:
    """Decode JSON or YAML into plain Python data.

    Raises :class:`YAMLSyntaxError` or ``_DuplicateJSONField`` (both ``ValueError``,
    neither quoting content) when ``data`` does not decode.
    """
    text = data.decode("utf-8")
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicate_json_keys)
        except _DuplicateJSONField:
            raise
        except (ValueError, RecursionError):
            # not JSON after all (or too deep, or an integer over Python's digit
            # limit): YAML is a superset, let it report the error without content
            pass
    # duplicate fields are errors, as in the apiserver's strict decoder; a syntax error
    # is a YAMLSyntaxError (a ValueError) that names its position, never the content
    return parse_yaml(text, unique_keys=True)


class _Parser:
    """Walks the decoded document, builds the model and records every problem."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []

    def problem(self, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(ConfigProblem(path, message, hint))

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.problem(path or "(document)", f"must be a mapping, got {_type_name(value)}")
            return None
        for name in value:
            if name not in allowed:
                field = f"{path}.{name}" if path else str(name)
                self.problem(
                    field,
                    f"unknown field {str(name)!r}",
                    f"allowed fields here: {', '.join(allowed)}",
                )
        return value

    def string(self, value: Any, path: str, *, default: str = "") -> str:
        if value is None:
            return default
        if not isinstance(value, str):
            self.problem(path, f"must be a string, got {_type_name(value)}", "quote the value")
            return default
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, f"must be a list, got {_type_name(value)}")
            return []
        return value

    # -- document -----------------------------------------------------------------

    def document(self, doc: Any) -> tuple[ResourceRule, ...]:
        top = self.mapping(doc, "", _TOP_FIELDS)
        if top is None:
            return ()
        api_version = top.get("apiVersion")
        kind = top.get("kind")
        if kind is None:
            self.problem(
                "kind", "missing (Object 'Kind' is missing)", "set kind: EncryptionConfiguration"
            )
        if api_version is None:
            self.problem("apiVersion", "missing", "set apiVersion: apiserver.config.k8s.io/v1")
        if (
            kind is not None
            and api_version is not None
            and (api_version, kind) not in ACCEPTED_TYPES
        ):
            self.problem(
                "kind",
                f"no kind {kind!r} is registered for version {api_version!r}",
                "use apiVersion: apiserver.config.k8s.io/v1 and kind: EncryptionConfiguration",
            )
        rules = []
        for i, item in enumerate(self.sequence(top.get("resources"), "resources")):
            rule = self.rule(item, f"resources[{i}]")
            if rule is not None:
                rules.append(rule)
        return tuple(rules)

    def rule(self, value: Any, path: str) -> ResourceRule | None:
        entry = self.mapping(value, path, _RULE_FIELDS)
        if entry is None:
            return None
        names = []
        for j, res in enumerate(self.sequence(entry.get("resources"), f"{path}.resources")):
            name = self.string(res, f"{path}.resources[{j}]")
            names.append(name)
        providers = []
        for j, item in enumerate(self.sequence(entry.get("providers"), f"{path}.providers")):
            provider = self.provider(item, f"{path}.providers[{j}]")
            if provider is not None:
                providers.append(provider)
        return ResourceRule(resources=tuple(names), providers=tuple(providers))

    def provider(self, value: Any, path: str) -> Provider | None:
        entry = self.mapping(value, path, _PROVIDER_FIELDS)
        if entry is None:
            return None
        present = [name for name in _PROVIDER_FIELDS if entry.get(name) is not None]
        if not present:
            self.problem(
                path,
                "provider does not contain any of the expected providers: "
                "kms, aesgcm, aescbc, secretbox, identity",
                "give each list entry exactly one provider",
            )
            return None
        if len(present) > 1:
            self.problem(
                path,
                "more than one provider specified in a single element "
                f"({', '.join(present)}), should split into different list elements",
                "write each provider as its own `- <type>: ...` entry",
            )
        built: list[Provider] = []
        for name in present:
            sub = f"{path}.{name}"
            if name == "identity":
                if self.mapping(entry[name], sub, ()) is not None:
                    built.append(IdentityProvider())
            elif name == "kms":
                kms = self.kms(entry[name], sub)
                if kms is not None:
                    built.append(kms)
            else:
                local = self.local(ProviderType(name), entry[name], sub)
                if local is not None:
                    built.append(local)
        return built[0] if built else None

    def local(self, ptype: ProviderType, value: Any, path: str) -> LocalKeyProvider | None:
        entry = self.mapping(value, path, _KEYS_FIELDS)
        if entry is None:
            return None
        keys = []
        for k, item in enumerate(self.sequence(entry.get("keys"), f"{path}.keys")):
            key = self.key(item, f"{path}.keys[{k}]")
            if key is not None:
                keys.append(key)
        return LocalKeyProvider(type=ptype, keys=tuple(keys))

    def key(self, value: Any, path: str) -> Key | None:
        entry = self.mapping(value, path, _KEY_FIELDS)
        if entry is None:
            return None
        name = self.string(entry.get("name"), f"{path}.name")
        encoded = self.string(entry.get("secret"), f"{path}.secret")
        secret = b""
        if encoded:
            try:
                secret = base64.b64decode(encoded.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError, ValueError):
                # the value itself is secret: never echo it
                self.problem(
                    f"{path}.secret",
                    "secrets must be base64 encoded (value REDACTED)",
                    "encode the raw key with standard base64: `head -c 32 /dev/urandom | base64`",
                )
        return Key(name=name, secret=secret)

    def kms(self, value: Any, path: str) -> KMSProvider | None:
        entry = self.mapping(value, path, _KMS_FIELDS)
        if entry is None:
            return None
        api_version = (
            self.string(
                entry.get("apiVersion"), f"{path}.apiVersion", default=DEFAULT_KMS_API_VERSION
            )
            or DEFAULT_KMS_API_VERSION
        )
        name = self.string(entry.get("name"), f"{path}.name")
        endpoint = self.string(entry.get("endpoint"), f"{path}.endpoint")
        timeout = DEFAULT_KMS_TIMEOUT_SECONDS
        raw_timeout = entry.get("timeout")
        if raw_timeout is not None:
            if isinstance(raw_timeout, str):
                try:
                    timeout = parse_duration(raw_timeout)
                except ValueError as exc:
                    # Go's ParseDuration: a unit on every number, at most ~292 years
                    self.problem(
                        f"{path}.timeout",
                        str(exc),
                        "use a Go duration such as 3s, 500ms or 1m",
                    )
            else:
                self.problem(
                    f"{path}.timeout",
                    f"must be a duration string, got {_type_name(raw_timeout)}",
                    "use a Go duration such as 3s, 500ms or 1m",
                )
        cachesize: int | None = None
        raw_cache = entry.get("cachesize")
        if raw_cache is not None:
            if isinstance(raw_cache, int) and not isinstance(raw_cache, bool):
                if -(2**31) <= raw_cache < 2**31:
                    cachesize = raw_cache
                else:
                    self.problem(f"{path}.cachesize", "must fit a 32-bit integer")
            else:
                self.problem(
                    f"{path}.cachesize", f"must be an integer, got {_type_name(raw_cache)}"
                )
        elif api_version == "v1":
            cachesize = DEFAULT_KMS_V1_CACHESIZE
        return KMSProvider(
            name=name,
            endpoint=endpoint,
            api_version=api_version,
            timeout_seconds=timeout,
            cachesize=cachesize,
        )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return type(value).__name__


def parse_encryption_config(
    data: bytes, *, source: str = "<config>"
) -> tuple[EncryptionConfig | None, list[ConfigProblem]]:
    """Decode ``data`` strictly; return the model (None if unusable) and decode problems.

    Only structural problems are reported here; :func:`check_encryption_config`
    adds the validator's findings.
    """
    if not data.strip():
        return None, [
            ConfigProblem(
                "(file)",
                "encryption provider configuration file is empty",
                "generate one with `secretkit config generate`",
            )
        ]
    try:
        doc = _decode_document(data)
    except UnicodeDecodeError:
        return None, [ConfigProblem("(file)", "not UTF-8 text", "save the file as UTF-8")]
    except (YAMLSyntaxError, _DuplicateJSONField) as exc:
        # both messages are ours and hold no document content
        return None, [ConfigProblem("(file)", f"cannot decode YAML/JSON: {exc}")]
    parser = _Parser()
    rules = parser.document(doc)
    return EncryptionConfig(rules=rules, raw=data, source=source), parser.problems


def check_encryption_config(
    data: bytes, *, source: str = "<config>"
) -> tuple[EncryptionConfig | None, list[ConfigProblem]]:
    """Decode and validate; return the model (None if undecodable) and every problem."""
    from secretkit.core.encryption_config.validate import validate_encryption_config

    cfg, problems = parse_encryption_config(data, source=source)
    if cfg is None:
        return None, problems
    seen = {p.path for p in problems}
    # a field the decoder already rejected (e.g. bad base64) is not reported twice
    problems += [p for p in validate_encryption_config(cfg) if p.path not in seen]
    return cfg, problems


def load_encryption_config(data: bytes, *, source: str = "<config>") -> EncryptionConfig:
    """Decode and validate ``data``; raise :class:`EncryptionConfigInvalid` with every problem."""
    cfg, problems = check_encryption_config(data, source=source)
    if problems or cfg is None:
        raise EncryptionConfigInvalid(problems, source=source)
    return cfg
