#!/usr/bin/env python3
"""Build the AWS Lambda deployment zip for stelae, reproducibly.

    python terraform/build_lambda.py [--out dist/lambda/stelae-lambda.zip] [--architecture arm64]

prints ``<sha256 hex>  <zip path>`` on stdout (diagnostics go to stderr). The one zip holds every
handler: ``stelae.lambda.write.handler``, ``stelae.lambda.sequence.handler`` and the optional
witness's ``stelae.lambda.witness.handler``.

What it does:

1. copies the project's packaging files and the ``stelae/`` tree into a temporary directory, so
   that building never writes ``build/`` or ``*.egg-info`` into the work tree;
2. builds a wheel of the project from that copy (non-editable);
3. installs the wheel and its runtime dependencies with ``pip install --target`` for the Lambda
   runtime and the architecture the module deploys (``--architecture arm64``, the default:
   ``--platform manylinux2014_aarch64``; ``x86_64``: ``manylinux2014_x86_64``; always
   ``--only-binary=:all: --python-version 3.11 --implementation cp``), leaving out boto3 and
   botocore, which the runtime provides (``--with-boto3`` keeps them, to pin a newer SDK than
   the runtime's);
4. checks that every installed wheel is pure Python or built for that architecture: its
   ``WHEEL`` tags, and the ELF machine of every ``.so`` (a builder cannot run arm64 code, so the
   files are read, not imported);
5. drops what would make two builds differ without changing behaviour (``__pycache__``, console
   script stubs with the builder's interpreter path, pip's ``direct_url.json`` naming a temporary
   directory);
6. writes a deterministic zip: entries sorted, timestamps fixed at 1980-01-01, permissions
   normalised, one compression level.

Same source and same resolved dependency versions give a byte-identical zip. Dependency versions
are whatever PyPI resolves today unless ``--constraint FILE`` pins them; pin them for releases.

Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "dist" / "lambda" / "stelae-lambda.zip"

# The Lambda architecture (terraform: lambda_architecture) -> pip's platform tag and the ELF
# e_machine of its shared objects (https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html).
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
ELF_MACHINES = {"arm64": 0xB7, "x86_64": 0x3E}
WHEEL_ARCH = {"arm64": "aarch64", "x86_64": "x86_64"}
DEFAULT_ARCHITECTURE = "arm64"  # what the module deploys: cheaper per GB-second than x86_64
LAMBDA_PLATFORM = PLATFORMS[DEFAULT_ARCHITECTURE]
LAMBDA_PYTHON = "3.11"

# The Lambda Python runtime ships these; bundling them only makes the zip ~20 MB bigger.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore"})

# Files at the repository root that setuptools may need to build the wheel.
PACKAGING_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in")
PACKAGE_DIR = "stelae"

# 1980-01-01 00:00:00, the earliest time a zip entry can carry.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class BuildError(Exception):
    """A step of the build failed; the message says which and why."""


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise BuildError(f"couldn't parse the requirement {requirement!r}")
    return normalize(match.group(1))


def run(cmd: Sequence[str], what: str) -> None:
    print(f"build_lambda: {what}", file=sys.stderr)
    result = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"couldn't {what} (exit {result.returncode}):\n{result.stdout}")


def stage_source(src_root: Path, dest: Path) -> None:
    """Copy what the wheel is built from, without caches or earlier build output."""
    dest.mkdir(parents=True)
    copied = False
    for name in PACKAGING_FILES:
        if (src_root / name).is_file():
            shutil.copy2(src_root / name, dest / name)
            copied = True
    if not copied:
        raise BuildError(f"{src_root} has no pyproject.toml or setup.py")
    for path in src_root.iterdir():
        if path.is_file() and re.match(r"(README|LICENSE|COPYING|NOTICE)", path.name, re.I):
            shutil.copy2(path, dest / path.name)
    # pyproject.toml names its readme; a missing one would fail the build for a reason that has
    # nothing to do with the Lambda package.
    pyproject = (dest / "pyproject.toml").read_text() if (dest / "pyproject.toml").exists() else ""
    readme = re.search(r'^\s*readme\s*=\s*"([^"]+)"', pyproject, re.M)
    if readme and not (dest / readme.group(1)).exists():
        print(
            f"build_lambda: warning: {readme.group(1)} is missing; using an empty one",
            file=sys.stderr,
        )
        (dest / readme.group(1)).write_text("")
    shutil.copytree(
        src_root / PACKAGE_DIR,
        dest / PACKAGE_DIR,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )


def runtime_requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist entries that apply without extras."""
    with zipfile.ZipFile(wheel) as zf:
        metadata_name = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
        if metadata_name is None:
            raise BuildError(f"{wheel.name} has no METADATA")
        metadata = email.parser.Parser().parsestr(zf.read(metadata_name).decode("utf-8"))
    requirements = metadata.get_all("Requires-Dist") or []
    return [r for r in requirements if not re.search(r"\bextra\s*==", r)]


def pip_target_args(target: Path, platform: str | None) -> list[str]:
    args = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        str(target),
        "--no-compile",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ]
    if platform is not None:
        args += [
            "--platform",
            platform,
            "--only-binary=:all:",
            "--python-version",
            LAMBDA_PYTHON,
            "--implementation",
            "cp",
        ]
    return args


def remove_runtime_provided(target: Path) -> None:
    """Delete boto3/botocore if a dependency pulled them in anyway: the runtime has them."""
    for entry in sorted(target.iterdir()):
        name = entry.name
        dist = name.split("-")[0] if name.endswith(".dist-info") else name
        if normalize(dist) in RUNTIME_PROVIDED:
            print(
                f"build_lambda: leaving out {name} (provided by the Lambda runtime)",
                file=sys.stderr,
            )
            shutil.rmtree(entry)


def scrub(target: Path) -> None:
    """Remove what differs from build to build without changing what the code does."""
    # Console-script stubs carry the builder's interpreter path; Lambda never runs them.
    if (target / "bin").is_dir():
        shutil.rmtree(target / "bin")
    for cache in sorted(target.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    for direct_url in target.glob("*.dist-info/direct_url.json"):
        direct_url.unlink()
        record = direct_url.parent / "RECORD"
        if record.exists():
            lines = record.read_text().splitlines(keepends=True)
            stale = f"{direct_url.parent.name}/direct_url.json,"
            record.write_text("".join(line for line in lines if not line.startswith(stale)))


def elf_machine(path: Path) -> int | None:
    """The ELF header's e_machine of ``path`` (little-endian, as on both Lambda architectures),
    or None if it is not an ELF file."""
    with path.open("rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little")


def check_architecture(target: Path, architecture: str) -> None:
    """Every wheel in ``target`` is pure Python or for ``architecture``; BuildError otherwise.

    Reads the ``Tag:`` lines of each ``*.dist-info/WHEEL`` (PEP 427) and the ELF machine of
    every ``.so``, so it works for a package this machine cannot run."""
    arch = WHEEL_ARCH[architecture]
    wrong: list[str] = []
    for wheel in sorted(target.glob("*.dist-info/WHEEL")):
        tags = [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        ]
        for tag in tags:
            platform = tag.rsplit("-", 1)[-1]
            if platform != "any" and not platform.endswith("_" + arch):
                wrong.append(f"{wheel.parent.name}: wheel tag {tag}")
    for so in sorted(target.rglob("*.so*")):
        machine = elf_machine(so) if so.is_file() else None
        if machine is not None and machine != ELF_MACHINES[architecture]:
            wrong.append(f"{so.relative_to(target)}: ELF machine {machine:#x}")
    if wrong:
        raise BuildError(f"not built for {architecture}: " + "; ".join(wrong))


def write_zip(source: Path, out: Path) -> str:
    """Zip *source* deterministically into *out*; return the SHA-256 hex of the zip."""
    files = sorted(
        (p for p in source.rglob("*") if p.is_file() and not p.is_symlink()),
        key=lambda p: p.relative_to(source).as_posix(),
    )
    if not files:
        raise BuildError("nothing to zip: the install produced no files")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_EPOCH)
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.create_system = 3  # Unix, so the permissions above are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    os.replace(tmp, out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def build(
    out: Path,
    *,
    src_root: Path = REPO_ROOT,
    platform: str | None = LAMBDA_PLATFORM,
    architecture: str = DEFAULT_ARCHITECTURE,
    with_boto3: bool = False,
    constraint: Path | None = None,
    build_isolation: bool = True,
) -> str:
    """Build the deployment zip at *out* and return its SHA-256 hex.

    *platform* is pip's platform tag, normally ``PLATFORMS[architecture]``; the installed
    wheels are checked against *architecture*. *platform* None installs wheels for the running
    interpreter instead of the Lambda runtime (for tests on machines that cannot download
    manylinux wheels), unchecked; such a zip may not run on Lambda.
    """
    with tempfile.TemporaryDirectory(prefix="stelae-lambda-") as tmp_name:
        tmp = Path(tmp_name)
        stage_source(src_root, tmp / "src")

        wheel_cmd = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "--wheel-dir",
            str(tmp / "wheel"),
            str(tmp / "src"),
        ]
        if not build_isolation:
            wheel_cmd.append("--no-build-isolation")
        run(wheel_cmd, "build the stelae wheel")
        wheels = sorted((tmp / "wheel").glob("*.whl"))
        if len(wheels) != 1:
            raise BuildError(f"expected one wheel, got {[w.name for w in wheels]}")
        wheel = wheels[0]

        requirements = runtime_requirements(wheel)
        if not with_boto3:
            requirements = [r for r in requirements if requirement_name(r) not in RUNTIME_PROVIDED]

        target = tmp / "target"
        extra = ["--constraint", str(constraint)] if constraint is not None else []
        where = f"for {platform} / CPython {LAMBDA_PYTHON}" if platform else "for this interpreter"
        if requirements:
            names = ", ".join(sorted(requirement_name(r) for r in requirements))
            run(
                [*pip_target_args(target, platform), *extra, *requirements],
                f"install dependencies {where}: {names}",
            )
        run([*pip_target_args(target, platform), "--no-deps", str(wheel)], f"install {wheel.name}")

        if not with_boto3:
            remove_runtime_provided(target)
        if platform is not None:
            check_architecture(target, architecture)
        scrub(target)
        return write_zip(target, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the stelae Lambda deployment zip (both handlers) reproducibly.",
        epilog="example: python terraform/build_lambda.py --out dist/lambda/stelae-lambda.zip",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"zip to write (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=REPO_ROOT,
        help="project root to build (default: this repository)",
    )
    parser.add_argument(
        "--architecture",
        choices=sorted(PLATFORMS),
        default=DEFAULT_ARCHITECTURE,
        help="Lambda architecture to build for; must match the module's lambda_architecture "
        f"(default: {DEFAULT_ARCHITECTURE})",
    )
    parser.add_argument(
        "--with-boto3",
        action="store_true",
        help="bundle boto3/botocore instead of using the runtime's",
    )
    parser.add_argument(
        "--constraint", type=Path, help="pip constraints file pinning dependency versions"
    )
    parser.add_argument(
        "--local-platform",
        action="store_true",
        help="wheels for this interpreter, not Lambda's manylinux/CPython 3.11 (tests only)",
    )
    parser.add_argument(
        "--no-build-isolation",
        action="store_true",
        help="build the wheel with the current environment's setuptools",
    )
    args = parser.parse_args(argv)

    try:
        digest = build(
            args.out.resolve(),
            src_root=args.source.resolve(),
            platform=None if args.local_platform else PLATFORMS[args.architecture],
            architecture=args.architecture,
            with_boto3=args.with_boto3,
            constraint=args.constraint,
            build_isolation=not args.no_build_isolation,
        )
    except BuildError as err:
        print(f"build_lambda: error: {err}", file=sys.stderr)
        return 1
    print(f"{digest}  {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
