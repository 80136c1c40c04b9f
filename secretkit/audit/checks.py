"""Findings of the CIS-style checks (``audit etcd-access``, ``audit config``) and their output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from secretkit.audit.model import CHECKS_SCHEMA


class Severity(StrEnum):
    """How bad a finding is; ordered from worst to harmless."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical ... 4 for info."""
        return list(Severity).index(self)


@dataclass(frozen=True)
class CheckFinding:
    """One check result: ``passed`` checks are listed too, so the report proves coverage.

    ``bypass`` marks findings that let someone read or write Secrets in etcd without
    going through the apiserver.
    """

    check: str
    severity: Severity
    title: str
    passed: bool
    detail: str = ""
    remediation: str = ""
    where: str = ""
    bypass: bool = False

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of one check."""
        return {
            "check": self.check,
            "severity": self.severity.value,
            "title": self.title,
            "passed": self.passed,
            "detail": self.detail,
            "remediation": self.remediation,
            "where": self.where,
            "bypass": self.bypass,
        }


@dataclass
class CheckReport:
    """The result of one check command."""

    command: str
    subject: str
    findings: list[CheckFinding] = field(default_factory=list)

    def add(self, finding: CheckFinding) -> None:
        """Append one finding."""
        self.findings.append(finding)

    @property
    def failed(self) -> list[CheckFinding]:
        """Failed checks, worst first."""
        return sorted((f for f in self.findings if not f.passed), key=lambda f: f.severity.rank)

    def fails_at(self, threshold: Severity) -> bool:
        """True when a failed check is at least as severe as ``threshold``."""
        return any(f.severity.rank <= threshold.rank for f in self.failed)

    def to_json(self) -> dict[str, Any]:
        """The documented ``-o json`` document of a check command."""
        return {
            "schema": CHECKS_SCHEMA,
            "command": self.command,
            "subject": self.subject,
            "checks": [f.to_json() for f in self.findings],
            "failed": len(self.failed),
            "bypass": any(f.bypass for f in self.failed),
        }

    def to_text(self) -> str:
        """Human output: failed checks worst first with remediation, then passed checks."""
        lines = [f"{self.command}: {self.subject}", ""]
        for f in self.failed:
            lines.append(
                f"[{f.severity.value.upper()}] FAIL: {f.title}"
                + ("  (apiserver bypass)" if f.bypass else "")
            )
            if f.where:
                lines.append(f"    where: {f.where}")
            if f.detail:
                lines.append(f"    {f.detail}")
            if f.remediation:
                lines.append(f"    fix: {f.remediation}")
        passed = [f for f in self.findings if f.passed]
        if passed:
            if self.failed:
                lines.append("")
            for f in passed:
                lines.append(f"[PASS] {f.title}" + (f" ({f.detail})" if f.detail else ""))
        lines.append("")
        bypass = [f for f in self.failed if f.bypass]
        if bypass:
            lines.append(
                f"{len(bypass)} finding(s) let someone read or write Secrets in etcd "
                "without going through the apiserver."
            )
        lines.append(
            f"{len(self.failed)} failed, {len(passed)} passed" if self.findings else "no checks ran"
        )
        return "\n".join(lines)

    def to_json_text(self) -> str:
        """:meth:`to_json` serialized like the other commands' JSON output."""
        return json.dumps(self.to_json(), indent=2, sort_keys=True)
