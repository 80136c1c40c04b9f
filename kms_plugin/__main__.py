"""``python -m kms_plugin`` / ``secretkit-kms-plugin`` entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run the plugin daemon (implemented in kms_plugin.cli)."""
    try:
        from kms_plugin.cli import main as real_main  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - until the daemon lands
        print("secretkit-kms-plugin: not yet available", file=sys.stderr)
        sys.exit(1)
    real_main(argv)


if __name__ == "__main__":  # pragma: no cover
    main()
