#!/usr/bin/env python3
"""Release metadata for the images and the GitHub release (docs/release.md).

The release workflow (.github/workflows/release.yml) asks this script, never docker/metadata-action,
for the image tags, the OCI labels and the changelog section of a version; scripts/test unit-tests
it (scripts/test_release.py). Python 3.11+, standard library only.

  release.py tags      --tag v1.2.3 --sha SHA --image foundation [--existing v1.2.2 …]
  release.py labels    --tag v1.2.3 --sha SHA --created 2026-01-02T03:04:05Z --image foundation
  release.py changelog --tag v1.2.3 [--changelog CHANGELOG.md]
  release.py plan      --tag v1.2.3 --sha SHA --created … [--existing …] --github-output FILE
                       --notes FILE

Tags, for a release (`v1.2.3`), on every registry prefix: `1.2.3`, `1.2` and `1` (each only while
no higher release shares it), `latest` (only for the highest release), and `sha-<commit>`. A
prerelease (`v1.2.3-rc.1`) gets only its own version and the commit: it moves no floating tag. A
0.y.z release gets no `0` tag: in semver, anything may change between 0.x minors.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The repository prefixes the images are pushed under (shared with `[image] registries`).
REGISTRIES = ("docker.io/stockadedev", "ghcr.io/stockade-dev")

# The published images: name → (title, description) labels.
IMAGES = {
    "foundation": (
        "stockade foundation",
        "The base tier of stockade's sandbox images",
    ),
    "full": (
        "stockade full",
        "stockade's foundation with the full developer toolset (toolset full)",
    ),
}

# Semantic Versioning 2.0.0, with a leading `v`, without build metadata (a `+` cannot be in an
# image tag).
_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_VERSION = re.compile(
    r"v(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
)
_SHA = re.compile(r"[0-9a-f]{40}")


class ReleaseError(Exception):
    """A refusal the workflow shows as is: what is wrong and how to fix it."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: str | None = None

    @classmethod
    def parse(cls, tag: str) -> Version:
        match = _VERSION.fullmatch(tag)
        if match is None:
            hint = (
                "build metadata (`+…`) cannot be part of an image tag; drop it"
                if "+" in tag
                else "use v<major>.<minor>.<patch>, optionally -<prerelease>, e.g. v1.2.3 or v1.2.3-rc.1"
            )
            raise ReleaseError(f"{tag!r} is not a release tag: {hint}")
        return cls(
            int(match["major"]), int(match["minor"]), int(match["patch"]), match["pre"]
        )

    @property
    def prerelease(self) -> bool:
        return self.pre is not None

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.pre}" if self.pre else core


def _check_sha(sha: str) -> str:
    if _SHA.fullmatch(sha) is None:
        raise ReleaseError(f"{sha!r} is not a full git commit (40 lowercase hex digits)")
    return sha


def _check_image(image: str) -> tuple[str, str]:
    try:
        return IMAGES[image]
    except KeyError:
        raise ReleaseError(
            f"unknown image {image!r}: one of {', '.join(IMAGES)}"
        ) from None


def _releases(existing: list[str]) -> list[Version]:
    """The releases among existing tags (other tags and prereleases do not count)."""
    found = []
    for tag in existing:
        try:
            version = Version.parse(tag.strip())
        except ReleaseError:
            continue
        if not version.prerelease:
            found.append(version)
    return found


def tag_names(version: Version, sha: str, existing: list[str]) -> list[str]:
    """The tags (without repository) for this version: most specific first."""
    names = [str(version)]
    if not version.prerelease:
        others = [v for v in _releases(existing) if v != version]

        def highest(same) -> bool:
            return not any(same(v) and v > version for v in others)

        if highest(lambda v: (v.major, v.minor) == (version.major, version.minor)):
            names.append(f"{version.major}.{version.minor}")
        if version.major > 0 and highest(lambda v: v.major == version.major):
            names.append(str(version.major))
        if highest(lambda v: True):
            names.append("latest")
    names.append(f"sha-{_check_sha(sha)}")
    return names


def tags(
    version: Version,
    sha: str,
    image: str,
    registries: list[str] | tuple[str, ...] = REGISTRIES,
    existing: list[str] | None = None,
) -> list[str]:
    """Fully qualified tags: every registry, each of `tag_names`."""
    _check_image(image)
    if not registries:
        raise ReleaseError("no registry given: pass --registry PREFIX at least once")
    names = tag_names(version, sha, existing or [])
    return [f"{prefix.rstrip('/')}/{image}:{name}" for prefix in registries for name in names]


def _cargo_package(cargo_toml: Path) -> dict:
    try:
        with cargo_toml.open("rb") as file:
            return tomllib.load(file).get("workspace", {}).get("package", {})
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ReleaseError(f"cannot read {cargo_toml}: {error}") from None


def _check_created(created: str) -> str:
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise ReleaseError(
            f"{created!r} is not a build time: use RFC 3339 UTC, e.g. 2026-01-02T03:04:05Z"
        ) from None
    if moment.tzinfo is None:
        raise ReleaseError(f"{created!r} has no time zone: end it with Z (UTC)")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def labels(
    version: Version,
    sha: str,
    created: str,
    image: str,
    cargo_toml: Path = ROOT / "Cargo.toml",
) -> dict[str, str]:
    """The `org.opencontainers.image.*` labels of one image (sorted by key)."""
    title, description = _check_image(image)
    package = _cargo_package(cargo_toml)
    missing = [key for key in ("repository", "license") if not package.get(key)]
    if missing:
        raise ReleaseError(
            f"{cargo_toml}: [workspace.package] lacks {', '.join(missing)}, which the labels need"
        )
    values = {
        "created": _check_created(created),
        "description": description,
        "licenses": package["license"],
        "revision": _check_sha(sha),
        "source": package["repository"],
        "title": title,
        "version": str(version),
    }
    for key, value in values.items():
        # build-push-action reads its `labels` input one item a line, as CSV: a quote or a line
        # break would split or merge labels.
        if any(c in value for c in '"\n\r'):
            raise ReleaseError(f"the {key} label {value!r} has a quote or a line break")
    return {f"org.opencontainers.image.{key}": value for key, value in sorted(values.items())}


def check_version(version: Version, cargo_toml: Path = ROOT / "Cargo.toml") -> None:
    """The tag must name the version the binaries are built as."""
    package = _cargo_package(cargo_toml)
    if package.get("version") != str(version):
        raise ReleaseError(
            f"the tag says {version} but {cargo_toml} [workspace.package] version is "
            f"{package.get('version')!r}: bump the version in a commit, then tag that commit"
        )


_HEADING = re.compile(r"^## \[(?P<name>[^\]]+)\](?P<rest>.*)$")


def _section(lines: list[str], name: str) -> list[str] | None:
    """The lines under `## [<name>]` up to the next `## [` heading, or None without one."""
    start = None
    for index, line in enumerate(lines):
        match = _HEADING.match(line)
        if match and start is not None:
            return lines[start:index]
        if match and match["name"] == name:
            start = index + 1
    return None if start is None else lines[start:]


def changelog_section(text: str, version: Version, path: str = "CHANGELOG.md") -> str:
    """The body of `## [<version>]` in a Keep a Changelog file, without its heading. A
    prerelease without a section of its own gets the Unreleased one: what the candidate holds."""
    lines = text.splitlines()
    name = str(version)
    body = _section(lines, name)
    if body is None and version.prerelease:
        name = "Unreleased"
        body = _section(lines, name)
    if body is None:
        raise ReleaseError(
            f"{path} has no `## [{version}]` section: move the Unreleased entries under "
            f"`## [{version}] - YYYY-MM-DD` before tagging"
        )
    # Link reference definitions at the end belong to the file, not the section.
    while body and (not body[-1].strip() or re.match(r"^\[[^\]]+\]:\s", body[-1])):
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    if not any(line.strip() for line in body):
        raise ReleaseError(f"{path}: the `## [{name}]` section is empty")
    return "\n".join(body) + "\n"


def github_output(values: dict[str, str]) -> str:
    """`name<<DELIMITER` blocks for $GITHUB_OUTPUT; the delimiter is random and absent from
    the values, so no value can end its block early and set another output."""
    out = []
    for name, value in values.items():
        while True:
            delimiter = f"EOF_{secrets.token_hex(16)}"
            if delimiter not in value:
                break
        out.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(out)


def plan(args: argparse.Namespace) -> dict[str, str]:
    """Everything the workflow needs, as step outputs (multi-line lists one item a line)."""
    version = Version.parse(args.tag)
    check_version(version, args.cargo_toml)
    registries = [prefix.rstrip("/") for prefix in args.registry or REGISTRIES]
    values = {
        "version": str(version),
        "prerelease": "true" if version.prerelease else "false",
        "registries": "\n".join(registries),
        "primary-registry": registries[0],
        "created": _check_created(args.created),
        "source": _cargo_package(args.cargo_toml).get("repository", ""),
    }
    for image in IMAGES:
        values[f"{image}-tags"] = "\n".join(
            tags(version, args.sha, image, registries, args.existing)
        )
        values[f"{image}-labels"] = "\n".join(
            f"{key}={value}"
            for key, value in labels(
                version, args.sha, args.created, image, args.cargo_toml
            ).items()
        )
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, *options: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name)
        sub.add_argument("--tag", required=True, help="the git tag: v1.2.3 or v1.2.3-rc.1")
        if "sha" in options:
            sub.add_argument("--sha", required=True, help="the tagged commit (40 hex digits)")
        if "created" in options:
            sub.add_argument("--created", required=True, help="build time, RFC 3339 UTC")
        if "image" in options:
            sub.add_argument("--image", required=True, choices=sorted(IMAGES))
        if "registry" in options:
            sub.add_argument(
                "--registry",
                action="append",
                metavar="PREFIX",
                help="repository prefix (repeat); default: " + " ".join(REGISTRIES),
            )
            sub.add_argument(
                "--existing",
                nargs="*",
                default=[],
                metavar="TAG",
                help="the repository's other tags (git tag -l 'v*'): floating tags stay on the highest",
            )
        if "cargo" in options:
            sub.add_argument("--cargo-toml", type=Path, default=ROOT / "Cargo.toml")
        if "changelog" in options:
            sub.add_argument("--changelog", type=Path, default=ROOT / "CHANGELOG.md")
        return sub

    command("tags", "sha", "image", "registry")
    command("labels", "sha", "created", "image", "cargo")
    command("changelog", "changelog")
    sub = command("plan", "sha", "created", "registry", "cargo", "changelog")
    sub.add_argument("--github-output", type=Path, required=True)
    sub.add_argument("--notes", type=Path, required=True, help="write the release notes here")

    args = parser.parse_args(argv)
    try:
        if args.command == "tags":
            version = Version.parse(args.tag)
            print("\n".join(tags(version, args.sha, args.image, args.registry or REGISTRIES, args.existing)))
        elif args.command == "labels":
            version = Version.parse(args.tag)
            for key, value in labels(version, args.sha, args.created, args.image, args.cargo_toml).items():
                print(f"{key}={value}")
        elif args.command == "changelog":
            print(changelog_section(_read(args.changelog), Version.parse(args.tag), str(args.changelog)), end="")
        else:
            values = plan(args)
            notes = changelog_section(_read(args.changelog), Version.parse(args.tag), str(args.changelog))
            args.notes.write_text(notes, encoding="utf-8")
            with args.github_output.open("a", encoding="utf-8") as out:
                out.write(github_output(values))
            for name, value in values.items():
                print(f"{name}:\n  " + value.replace("\n", "\n  "))
    except ReleaseError as error:
        print(f"release.py: {error}", file=sys.stderr)
        return 1
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise ReleaseError(f"cannot read {path}: {error}") from None


if __name__ == "__main__":
    sys.exit(main())
