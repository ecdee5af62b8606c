"""Regenerate cluster/etcdpb's Python modules from its .proto files with grpc_tools.protoc.

    python -m cluster.etcdpb.regen           write the modules into cluster/etcdpb/
    python -m cluster.etcdpb.regen --check   exit 1 naming each stale module, 0 when current

The modules are committed, so generation must be reproducible: the compiler is
grpcio-tools at the exact version pinned in setup.cfg's `test` extra, and protoc runs
with the repository root as its only include path (found from this file, so the cwd
does not matter). That root is also why the generated code imports its siblings as
`from cluster.etcdpb import kv_pb2`. Both modes generate into a temporary directory
first, so a failed compile never leaves a half-written package behind.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from importlib import metadata
from pathlib import Path

try:
    from grpc_tools import protoc  # type: ignore[import-untyped]  # ships no stubs
except ImportError:  # the compiler is a development dependency only
    protoc = None

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent
# The generated modules' directory relative to the include root (= their import path).
PACKAGE_PATH = PACKAGE_DIR.relative_to(REPO_ROOT)

_SERVICE = re.compile(r"^\s*service\s+\w+\s*\{", re.MULTILINE)
# Every name protoc's Python generators may produce here; used to find orphans.
_GENERATED_GLOBS = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")
_GRPC_GENERATED_VERSION = re.compile(rb"^GRPC_GENERATED_VERSION = '([^']+)'", re.MULTILINE)


class RegenError(Exception):
    """protoc rejected the .proto files (its diagnostics are already on stderr)."""


def proto_files(source_root: Path = REPO_ROOT) -> list[Path]:
    """The package's .proto files under source_root, in a stable order."""
    return sorted((source_root / PACKAGE_PATH).glob("*.proto"))


def defines_service(proto: Path) -> bool:
    """Whether the file declares a gRPC service (only those get a *_pb2_grpc module)."""
    return _SERVICE.search(proto.read_text(encoding="utf-8")) is not None


def _run_protoc(source_root: Path, out_flags: list[str], protos: list[Path]) -> None:
    args = ["grpc_tools.protoc", f"-I{source_root}", *out_flags, *(str(p) for p in protos)]
    if protoc.main(args) != 0:
        raise RegenError(f"protoc failed on {', '.join(p.name for p in protos)}")


def generate(out_root: Path, source_root: Path = REPO_ROOT) -> dict[str, bytes]:
    """Compile the .proto files of source_root's cluster/etcdpb into out_root's;
    return {file name: contents} of the generated modules.

    source_root is the repository root except in tests, which compile an edited copy.
    """
    protos = proto_files(source_root)
    _run_protoc(source_root, [f"--python_out={out_root}", f"--pyi_out={out_root}"], protos)
    services = [p for p in protos if defines_service(p)]
    if services:
        _run_protoc(source_root, [f"--grpc_python_out={out_root}"], services)
    out_dir = out_root / PACKAGE_PATH
    return {f.name: f.read_bytes() for glob in _GENERATED_GLOBS for f in out_dir.glob(glob)}


def committed() -> dict[str, bytes]:
    """The generated modules currently in the package directory."""
    return {f.name: f.read_bytes() for glob in _GENERATED_GLOBS for f in PACKAGE_DIR.glob(glob)}


def stale_files(fresh: dict[str, bytes], current: dict[str, bytes]) -> list[str]:
    """Names that differ: changed, missing from the package, or orphaned in it."""
    return sorted(name for name in fresh.keys() | current.keys() if fresh.get(name) != current.get(name))


def fresh_modules() -> dict[str, bytes]:
    """Generate into a throwaway directory and return the modules' contents."""
    with tempfile.TemporaryDirectory(prefix="etcdpb-regen-") as tmp:
        return generate(Path(tmp))


def write(fresh: dict[str, bytes]) -> list[str]:
    """Make the package's generated modules exactly `fresh`; return the names changed."""
    changed = stale_files(fresh, committed())
    for name in changed:
        target = PACKAGE_DIR / name
        if name in fresh:
            target.write_bytes(fresh[name])
        else:
            target.unlink()
    return changed


def compiler_mismatch(current: dict[str, bytes]) -> str | None:
    """Why every module may look stale: the installed grpcio-tools is not the one that
    generated the committed modules (None when they agree or cannot be told apart)."""
    installed = metadata.version("grpcio-tools")
    stamps = {m[1].decode() for text in current.values() if (m := _GRPC_GENERATED_VERSION.search(text))}
    if not stamps or stamps == {installed}:
        return None
    return (f"grpcio-tools {installed} is installed but the committed modules came from "
            f"{', '.join(sorted(stamps))}: install the version pinned in setup.cfg's test extra")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.etcdpb.regen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale modules (exit 1 if any)")
    args = parser.parse_args(argv)
    if protoc is None:
        print("grpcio-tools is not installed: pip install -e '.[test]'", file=sys.stderr)
        return 2
    try:
        fresh = fresh_modules()
    except RegenError as err:
        print(err, file=sys.stderr)
        return 2
    if args.check:
        stale = stale_files(fresh, committed())
        for name in stale:
            print(f"stale: {PACKAGE_PATH / name}", file=sys.stderr)
        if stale:
            print(compiler_mismatch(committed()) or "run: python -m cluster.etcdpb.regen", file=sys.stderr)
        return 1 if stale else 0
    for name in write(fresh):
        print(f"wrote: {PACKAGE_PATH / name}" if name in fresh else f"removed: {PACKAGE_PATH / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
