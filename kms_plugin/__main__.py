"""``python -m kms_plugin`` / ``secretkit-kms-plugin`` entry point."""

from __future__ import annotations

from kms_plugin.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
