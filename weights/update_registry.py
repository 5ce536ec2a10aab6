"""Recompute the sha256 of a registered local model after retraining it.

Usage: ``python weights/update_registry.py [NAME]`` (default: the registry's default model).
It hashes every file the checkpoint is loaded from (config.json, model.safetensors) and
rewrites ``weights/registry.json`` atomically.
"""

from __future__ import annotations

import sys

from gkaan_cli.model.registry import load_registry, update_registry_hashes


def main(argv: list[str]) -> int:
    name = argv[0] if argv else load_registry().default
    if name is None:
        print("usage: python weights/update_registry.py NAME", file=sys.stderr)
        return 2
    for file_name, digest in update_registry_hashes(name).items():
        print(f"{name}: {file_name} {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
