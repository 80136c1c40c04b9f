"""The apiserver's EncryptionConfiguration rules, as a list of problems.

Follows ``k8s.io/apiserver/pkg/apis/apiserver/validation/validation_encryption.go``
(messages kept close to upstream so they can be searched for) plus the
"masked by earlier rule" check that upstream performs while building transformers
(``encryptionconfig/config.go``). Secrets are never echoed: key values show as
``REDACTED``.
"""

from __future__ import annotations

from secretkit.core.encryption_config.endpoint import parse_endpoint
from secretkit.core.encryption_config.model import (
    KMS_API_VERSIONS,
    ConfigProblem,
    EncryptionConfig,
    Key,
    KMSProvider,
    LocalKeyProvider,
    ProviderType,
)
from secretkit.core.resources import is_served, unknown_resource_hint
from secretkit.errors import ConfigError

AES_KEY_SIZES = (16, 24, 32)
SECRETBOX_KEY_SIZES = (32,)
#: resources the apiserver keeps outside the REST storage: nothing to encrypt
NON_REST_RESOURCES = frozenset(
    {"apiserveripinfo", "serviceipallocations", "servicenodeportallocations"}
)


def parse_group_resource(name: str) -> tuple[str, str]:
    """Split a config resource name into ``(group, resource)`` like ``schema.ParseGroupResource``.

    ``secrets`` → ``("", "secrets")``, ``deployments.apps`` → ``("apps", "deployments")``,
    ``*.`` → ``("", "*")``, ``*.*`` → ``("*", "*")``.
    """
    resource, dot, group = name.partition(".")
    return (group, resource) if dot else ("", name)


def group_resource_name(group: str, resource: str) -> str:
    """Render ``(group, resource)`` the way the config file spells it (``*.`` for core)."""
    if group == "" and resource == "*":
        return "*."
    return f"{resource}.{group}" if group else resource


def validate_encryption_config(cfg: EncryptionConfig) -> list[ConfigProblem]:
    """Return every rule violation in ``cfg`` (empty when the apiserver would accept it)."""
    problems: list[ConfigProblem] = []
    if not cfg.rules:
        problems.append(
            ConfigProblem(
                "resources",
                "at least one resources is required",
                "add a `resources:` entry, e.g. resources: [secrets] with providers",
            )
        )
        return problems
    kms_names: set[str] = set()
    configured: set[tuple[str, str]] = set()
    for i, rule in enumerate(cfg.rules):
        rpath = f"resources[{i}].resources"
        ppath = f"resources[{i}].providers"
        if not rule.resources:
            problems.append(
                ConfigProblem(rpath, "at least one resource is required", "list e.g. secrets")
            )
        problems += _resource_overlap(rule.resources, rpath)
        problems += _resource_names(rule.resources, rpath)
        problems += _masked(rule.resources, rpath, configured)
        if not rule.providers:
            problems.append(
                ConfigProblem(
                    ppath, "at least one provider is required", "add e.g. `- identity: {}`"
                )
            )
        for j, provider in enumerate(rule.providers):
            path = f"{ppath}[{j}]"
            if isinstance(provider, KMSProvider):
                problems += _kms(provider, f"{path}.kms", kms_names)
                kms_names.add(provider.name)
            elif isinstance(provider, LocalKeyProvider):
                sizes = (
                    SECRETBOX_KEY_SIZES
                    if provider.type is ProviderType.SECRETBOX
                    else AES_KEY_SIZES
                )
                problems += _keys(provider.keys, f"{path}.{provider.type.value}.keys", sizes)
    return problems


def _resource_overlap(resources: tuple[str, ...], path: str) -> list[ConfigProblem]:
    parsed = [parse_group_resource(r) for r in resources]
    duplicate = len(set(parsed)) != len(parsed)
    overlap = False
    for i, (g1, r1) in enumerate(parsed):
        for j, (g2, r2) in enumerate(parsed):
            if i == j or (g1, r1) == (g2, r2):
                continue
            if (g1, r1) == ("*", "*") or (g1 == g2 and "*" in (r1, r2)):
                overlap = True
    problems = []
    if duplicate:
        problems.append(
            ConfigProblem(
                path,
                "the same resource cannot be specified multiple times",
                "remove the repeated resource name",
            )
        )
    if overlap:
        problems.append(
            ConfigProblem(
                path,
                "using overlapping resources such as 'secrets' and '*.' in the same resource "
                "list is not allowed as they will be masked",
                "move the specific resource to its own earlier rule, or drop it",
            )
        )
    return problems


def _resource_names(resources: tuple[str, ...], path: str) -> list[ConfigProblem]:
    problems = []
    for j, name in enumerate(resources):
        where = f"{path}[{j}]"
        group, resource = parse_group_resource(name)
        if name.lower() != name:
            problems.append(
                ConfigProblem(
                    where,
                    f"resource name {name!r} should not contain capital letters",
                    f"use the lower-case plural resource name, e.g. {name.lower()!r}",
                )
            )
        elif name == "*":
            problems.append(
                ConfigProblem(
                    where,
                    "use '*.' to encrypt all the resources from core API group or *.* to "
                    "encrypt all resources",
                    "replace '*' with '*.' or '*.*'",
                )
            )
        elif name in NON_REST_RESOURCES:
            problems.append(
                ConfigProblem(
                    where,
                    f"{name!r}: resources which do not have REST API/s cannot be encrypted",
                    "remove it; it is not stored as an API object",
                )
            )
        elif group == "events.k8s.io":
            problems.append(
                ConfigProblem(
                    where,
                    "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. "
                    "Use 'events' instead in the config file",
                    "write 'events' (core group)",
                )
            )
        elif group == "extensions":
            problems.append(
                ConfigProblem(
                    where,
                    "'extensions' group has been removed and cannot be used for encryption",
                    "use the resource's current group, e.g. 'ingresses.networking.k8s.io'",
                )
            )
        elif group == "*" and resource != "*":
            problems.append(
                ConfigProblem(
                    where,
                    "encrypting the same resource across groups is not supported",
                    f"name the group explicitly, e.g. '{resource}.<group>'",
                )
            )
        elif not name:
            problems.append(ConfigProblem(where, "resource name is empty", "remove the entry"))
    return problems


def _masked(
    resources: tuple[str, ...], path: str, configured: set[tuple[str, str]]
) -> list[ConfigProblem]:
    """Upstream refuses a resource that an earlier ``*.<group>`` or ``*.*`` already covers."""
    problems = []
    for j, name in enumerate(resources):
        group, resource = parse_group_resource(name)
        for wildcard in ((group, "*"), ("*", "*")):
            if wildcard in configured:
                problems.append(
                    ConfigProblem(
                        f"{path}[{j}]",
                        f"resource {group_resource_name(group, resource)!r} is masked by "
                        f"earlier rule {group_resource_name(*wildcard)!r}",
                        "move this rule above the wildcard rule, or delete it",
                    )
                )
                break
        configured.add((group, resource))
    return problems


def _keys(keys: tuple[Key, ...], path: str, sizes: tuple[int, ...]) -> list[ConfigProblem]:
    if not keys:
        return [
            ConfigProblem(
                path,
                "at least one keys is required",
                "add a key: `- name: key1` with `secret: <base64 of 32 random bytes>`",
            )
        ]
    problems = []
    for k, key in enumerate(keys):
        where = f"{path}[{k}]"
        if not key.name:
            problems.append(
                ConfigProblem(
                    f"{where}.name", "name is a mandatory field for a key", "name the key"
                )
            )
        if not key.secret:
            problems.append(
                ConfigProblem(
                    f"{where}.secret",
                    "secret is a mandatory field for a key",
                    "set secret to the base64 of a random key",
                )
            )
        elif len(key.secret) not in sizes:
            problems.append(
                ConfigProblem(
                    f"{where}.secret",
                    f"secret (REDACTED) is not of the expected length, got {len(key.secret)}, "
                    f"expected one of {list(sizes)}",
                    f"use {sizes[-1]} random bytes, base64-encoded",
                )
            )
    return problems


def _kms(provider: KMSProvider, path: str, seen_names: set[str]) -> list[ConfigProblem]:
    problems = []
    name = provider.name
    if not name:
        problems.append(
            ConfigProblem(f"{path}.name", "name is a mandatory field for a provider", "name it")
        )
    if provider.api_version != "v1" and ":" in name:
        problems.append(
            ConfigProblem(
                f"{path}.name",
                f"invalid KMS provider name {name}, must not contain ':'",
                "rename the provider (the name becomes part of the etcd value prefix)",
            )
        )
    # v2 names must be unique across all kms providers; v1 names only with automatic reload,
    # which this check cannot know about, so v1 duplicates are left to the apiserver
    if provider.api_version != "v1" and name and name in seen_names:
        problems.append(
            ConfigProblem(
                f"{path}.name",
                f"duplicate KMS provider name {name}, names must be unique",
                "give every kms provider its own name",
            )
        )
    if provider.timeout_seconds <= 0:
        problems.append(
            ConfigProblem(f"{path}.timeout", "timeout should be a positive value", "use e.g. 3s")
        )
    problems += _endpoint(provider.endpoint, f"{path}.endpoint")
    if provider.api_version != "v1" and provider.cachesize is not None:
        problems.append(
            ConfigProblem(
                f"{path}.cachesize",
                "cachesize is not supported in v2",
                "remove cachesize (kms v2 caches DEK seeds itself)",
            )
        )
    if provider.api_version == "v1" and provider.cachesize == 0:
        problems.append(
            ConfigProblem(
                f"{path}.cachesize",
                "cachesize should be a positive value, or negative to disable",
                "use e.g. 1000, or -1 to disable the cache",
            )
        )
    if provider.api_version not in KMS_API_VERSIONS:
        problems.append(
            ConfigProblem(
                f"{path}.apiVersion",
                f"unsupported apiVersion {provider.api_version} for KMS provider, "
                "only v1 and v2 are supported",
                "use apiVersion: v2",
            )
        )
    return problems


def _endpoint(endpoint: str, path: str) -> list[ConfigProblem]:
    """The endpoint checks of the plugin and every client (one parser, one wording).

    Upstream's validator only checks the scheme, but kube-apiserver then dials the
    URL's path: ``unix:@name``, ``unix:relative`` or ``unix://host/path`` pass its
    validation and reach no socket (or another one), so they are reported here.
    """
    if not endpoint:
        return [
            ConfigProblem(
                path,
                "endpoint is a mandatory field for a kms",
                "use unix:///path/to/plugin.sock (abstract socket: unix:///@name)",
            )
        ]
    try:
        parse_endpoint(endpoint, where=path)
    except ConfigError as exc:
        return [ConfigProblem(path, exc.what, exc.hint)]
    return []


def unserved_resource_warnings(cfg: EncryptionConfig) -> list[ConfigProblem]:
    """Resource names kube-apiserver does not serve: the apiserver accepts them, encrypts nothing.

    ``secret`` (for ``secrets``) or ``deployments`` (core group; the resource is
    ``deployments.apps``) passes upstream validation, yet no object is ever
    encrypted by that rule. Only names in kube-apiserver's own API groups can be
    judged offline; custom resources (``widgets.example.com``) are not warned about.
    Names that already are problems (see :func:`validate_encryption_config`) are
    skipped.
    """
    warnings: list[ConfigProblem] = []
    for i, rule in enumerate(cfg.rules):
        rpath = f"resources[{i}].resources"
        flagged = {p.path for p in _resource_names(rule.resources, rpath)}
        for j, name in enumerate(rule.resources):
            where = f"{rpath}[{j}]"
            if where in flagged or not name:
                continue
            group, resource = parse_group_resource(name)
            if is_served(group, resource) is False:
                warnings.append(
                    ConfigProblem(
                        where,
                        f"no kube-apiserver serves resource {name!r}: this entry encrypts nothing",
                        unknown_resource_hint(name),
                    )
                )
    return warnings
