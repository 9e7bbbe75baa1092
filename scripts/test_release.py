"""Unit tests of scripts/release.py (run by scripts/test: python3 -m unittest discover -s scripts)."""

import io
import re
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import release
from release import ReleaseError, Version

SHA = "0123456789abcdef0123456789abcdef01234567"
CARGO = """\
[workspace.package]
version = "1.2.3"
license = "MIT OR Apache-2.0"
repository = "https://github.com/stockade-dev/stockade"
"""
CHANGELOG = """\
# Changelog

All notable changes to this project are documented in this file.

## [Unreleased]

### Added

- Something not released yet.

## [1.2.3] - 2026-11-26

### Added

- The release pipeline.

### Security

- Signed images.

## [1.2.3-rc.1] - 2026-11-20

### Added

- A candidate.

## [1.0.0] - 2026-01-01

- First.

[Unreleased]: https://github.com/stockade-dev/stockade/compare/v1.2.3...HEAD
[1.2.3]: https://github.com/stockade-dev/stockade/compare/v1.0.0...v1.2.3
"""


class TempFiles(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.root = Path(self.dir.name)
        self.cargo = self.write("Cargo.toml", CARGO)
        self.changelog = self.write("CHANGELOG.md", CHANGELOG)

    def write(self, name, text):
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path

    def run_main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = release.main(list(argv))
        return code, out.getvalue(), err.getvalue()


class VersionTest(unittest.TestCase):
    def test_parses_releases_and_prereleases(self):
        self.assertEqual(Version.parse("v1.2.3"), Version(1, 2, 3))
        self.assertEqual(Version.parse("v0.10.0"), Version(0, 10, 0))
        rc = Version.parse("v1.2.3-rc.1")
        self.assertEqual((rc, str(rc), rc.prerelease), (Version(1, 2, 3, "rc.1"), "1.2.3-rc.1", True))
        self.assertFalse(Version.parse("v1.2.3").prerelease)
        self.assertEqual(str(Version.parse("v2.0.0-alpha.beta-1.0")), "2.0.0-alpha.beta-1.0")

    def test_refuses_what_is_not_a_release_tag(self):
        for tag in ["1.2.3", "v1.2", "v01.2.3", "v1.2.3-", "v1.2.3-rc..1", "v1.2.3-01", "vx",
                    "v1.2.3 ", "release-1.2.3", "v1.2.3\nv1.2.4"]:
            with self.subTest(tag=tag), self.assertRaisesRegex(ReleaseError, "not a release tag: use v<major>"):
                Version.parse(tag)

    def test_build_metadata_is_refused_with_the_reason(self):
        with self.assertRaisesRegex(ReleaseError, r"build metadata \(`\+…`\) cannot be part of an image tag"):
            Version.parse("v1.2.3+build.5")


class TagsTest(unittest.TestCase):
    def names(self, tag, existing=()):
        return release.tag_names(Version.parse(tag), SHA, list(existing))

    def test_first_release_gets_every_tag(self):
        self.assertEqual(self.names("v1.2.3"), ["1.2.3", "1.2", "1", "latest", f"sha-{SHA}"])

    def test_prerelease_gets_only_its_version_and_the_commit(self):
        self.assertEqual(self.names("v1.2.3-rc.1"), ["1.2.3-rc.1", f"sha-{SHA}"])
        self.assertEqual(self.names("v2.0.0-beta.2", ["v1.0.0"]), ["2.0.0-beta.2", f"sha-{SHA}"])

    def test_major_zero_gets_no_major_tag(self):
        self.assertEqual(self.names("v0.1.0"), ["0.1.0", "0.1", "latest", f"sha-{SHA}"])

    def test_floating_tags_stay_on_the_highest_release(self):
        # A patch of an older line: 1.2.4 after 1.3.0 and 2.0.0 moves only 1.2.
        existing = ["v1.2.3", "v1.3.0", "v2.0.0"]
        self.assertEqual(self.names("v1.2.4", existing), ["1.2.4", "1.2", f"sha-{SHA}"])
        # The newest of the 1.x line, under 2.0.0: 1.3 and 1, not latest.
        self.assertEqual(self.names("v1.3.1", existing), ["1.3.1", "1.3", "1", f"sha-{SHA}"])
        # An old patch under a higher one of its minor: nothing floats.
        self.assertEqual(self.names("v1.2.1", existing), ["1.2.1", f"sha-{SHA}"])
        # The highest: everything.
        self.assertEqual(self.names("v2.0.1", existing), ["2.0.1", "2.0", "2", "latest", f"sha-{SHA}"])

    def test_prereleases_and_other_tags_do_not_hold_floating_tags(self):
        existing = ["v1.3.0-rc.1", "v9.9.9-beta", "nightly", "v1.2", "", "v1.2.3"]
        self.assertEqual(self.names("v1.2.3", existing), ["1.2.3", "1.2", "1", "latest", f"sha-{SHA}"])

    def test_re_running_a_release_keeps_its_tags(self):
        # The tag itself is among the existing ones when the workflow is re-run.
        self.assertEqual(self.names("v1.2.3", ["v1.2.3", "v1.2.2"]), ["1.2.3", "1.2", "1", "latest", f"sha-{SHA}"])

    def test_tags_name_every_registry(self):
        self.assertEqual(
            release.tags(Version.parse("v1.2.3-rc.1"), SHA, "full"),
            [
                "docker.io/stockadedev/full:1.2.3-rc.1",
                f"docker.io/stockadedev/full:sha-{SHA}",
                "ghcr.io/stockade-dev/full:1.2.3-rc.1",
                f"ghcr.io/stockade-dev/full:sha-{SHA}",
            ],
        )
        self.assertEqual(
            release.tags(Version.parse("v0.1.0"), SHA, "foundation", ["127.0.0.1:5000/x/"]),
            [
                "127.0.0.1:5000/x/foundation:0.1.0",
                "127.0.0.1:5000/x/foundation:0.1",
                "127.0.0.1:5000/x/foundation:latest",
                f"127.0.0.1:5000/x/foundation:sha-{SHA}",
            ],
        )

    def test_every_tag_is_a_valid_image_tag(self):
        tag = re.compile(r"[\w][\w.-]{0,127}")
        for name in self.names("v10.20.30-rc.1-x") + self.names("v10.20.30"):
            self.assertRegex(name, tag)
            self.assertTrue(tag.fullmatch(name), name)

    def test_refusals(self):
        version = Version.parse("v1.2.3")
        with self.assertRaisesRegex(ReleaseError, "not a full git commit"):
            release.tags(version, SHA[:7], "foundation")
        with self.assertRaisesRegex(ReleaseError, "not a full git commit"):
            release.tags(version, SHA.upper(), "foundation")
        with self.assertRaisesRegex(ReleaseError, "unknown image 'gateway': one of foundation, full"):
            release.tags(version, SHA, "gateway")
        with self.assertRaisesRegex(ReleaseError, "no registry given"):
            release.tags(version, SHA, "full", [])


class LabelsTest(TempFiles):
    def test_labels_are_the_oci_set_from_cargo_toml(self):
        labels = release.labels(Version.parse("v1.2.3"), SHA, "2026-11-26T09:30:00+01:00", "foundation", self.cargo)
        self.assertEqual(
            labels,
            {
                "org.opencontainers.image.created": "2026-11-26T08:30:00Z",
                "org.opencontainers.image.description": "The base tier of stockade's sandbox images",
                "org.opencontainers.image.licenses": "MIT OR Apache-2.0",
                "org.opencontainers.image.revision": SHA,
                "org.opencontainers.image.source": "https://github.com/stockade-dev/stockade",
                "org.opencontainers.image.title": "stockade foundation",
                "org.opencontainers.image.version": "1.2.3",
            },
        )
        self.assertEqual(list(labels), sorted(labels))

    def test_full_has_its_own_title_and_the_prerelease_version(self):
        labels = release.labels(Version.parse("v1.2.3-rc.1"), SHA, "2026-11-26T08:30:00Z", "full", self.cargo)
        self.assertEqual(labels["org.opencontainers.image.title"], "stockade full")
        self.assertEqual(labels["org.opencontainers.image.version"], "1.2.3-rc.1")
        self.assertEqual(labels["org.opencontainers.image.created"], "2026-11-26T08:30:00Z")

    def test_the_repository_cargo_toml_has_what_labels_need(self):
        labels = release.labels(Version.parse("v0.1.0"), SHA, "2026-11-26T08:30:00Z", "full")
        self.assertEqual(labels["org.opencontainers.image.source"], "https://github.com/stockade-dev/stockade")
        for value in labels.values():
            self.assertNotRegex(value, '["\n\r]')

    def test_refusals(self):
        version = Version.parse("v1.2.3")
        for created in ["yesterday", "26/11/2026 08:30Z", "2026-13-01T00:00:00Z"]:
            with self.subTest(created=created), self.assertRaisesRegex(ReleaseError, "is not a build time: use RFC 3339"):
                release.labels(version, SHA, created, "full", self.cargo)
        with self.assertRaisesRegex(ReleaseError, "has no time zone"):
            release.labels(version, SHA, "2026-11-26T08:30:00", "full", self.cargo)
        bare = self.write("Bare.toml", '[workspace.package]\nversion = "1.2.3"\n')
        with self.assertRaisesRegex(ReleaseError, r"\[workspace.package\] lacks repository, license"):
            release.labels(version, SHA, "2026-11-26T08:30:00Z", "full", bare)
        quoted = self.write("Quoted.toml", CARGO.replace('"MIT OR Apache-2.0"', "'MIT \"or\" Apache'"))
        with self.assertRaisesRegex(ReleaseError, "the licenses label .* has a quote or a line break"):
            release.labels(version, SHA, "2026-11-26T08:30:00Z", "full", quoted)
        with self.assertRaisesRegex(ReleaseError, "cannot read .*Missing.toml"):
            release.labels(version, SHA, "2026-11-26T08:30:00Z", "full", self.root / "Missing.toml")

    def test_the_tag_must_match_the_cargo_version(self):
        release.check_version(Version.parse("v1.2.3"), self.cargo)
        with self.assertRaisesRegex(
            ReleaseError, "the tag says 1.2.4 but .*Cargo.toml \\[workspace.package\\] version is '1.2.3': bump"
        ):
            release.check_version(Version.parse("v1.2.4"), self.cargo)


class ChangelogTest(unittest.TestCase):
    def section(self, tag, text=CHANGELOG):
        return release.changelog_section(text, Version.parse(tag))

    def test_a_middle_section_ends_at_the_next_heading(self):
        self.assertEqual(
            self.section("v1.2.3"),
            "### Added\n\n- The release pipeline.\n\n### Security\n\n- Signed images.\n",
        )

    def test_a_prerelease_has_its_own_section(self):
        self.assertEqual(self.section("v1.2.3-rc.1"), "### Added\n\n- A candidate.\n")

    def test_a_prerelease_without_a_section_gets_the_unreleased_one(self):
        self.assertEqual(self.section("v1.3.0-rc.1"), "### Added\n\n- Something not released yet.\n")
        with self.assertRaisesRegex(ReleaseError, r"the `## \[Unreleased\]` section is empty"):
            self.section("v1.3.0-rc.1", "## [Unreleased]\n\n## [1.2.3]\n- x\n")
        with self.assertRaisesRegex(ReleaseError, r"has no `## \[1.3.0-rc.1\]` section"):
            self.section("v1.3.0-rc.1", "## [1.2.3]\n- x\n")

    def test_the_last_section_leaves_out_the_link_definitions(self):
        self.assertEqual(self.section("v1.0.0"), "- First.\n")

    def test_a_missing_or_empty_section_is_refused(self):
        with self.assertRaisesRegex(ReleaseError, r"CHANGELOG.md has no `## \[2.0.0\]` section: move the Unreleased"):
            self.section("v2.0.0")
        with self.assertRaisesRegex(ReleaseError, r"the `## \[1.0.0\]` section is empty"):
            self.section("v1.0.0", "## [1.0.0] - 2026-01-01\n\n## [0.9.0]\n- x\n")

    def test_the_repository_changelog_is_keep_a_changelog(self):
        text = (release.ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        self.assertIn("https://keepachangelog.com/en/1.1.0/", text)
        headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
        self.assertEqual(headings[0], "Unreleased")
        for heading in headings[1:]:
            Version.parse(f"v{heading}")
        for kind in re.findall(r"^### (.+)$", text, re.M):
            self.assertIn(kind, ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"])
        unreleased = text.split("## [Unreleased]", 1)[1].split("\n## [", 1)[0]
        self.assertRegex(unreleased, r"### Added\n\n- ")


class GithubOutputTest(unittest.TestCase):
    def parse(self, text):
        """Read $GITHUB_OUTPUT as the runner does: `name<<DELIM` … `DELIM`, or name=value."""
        values, lines = {}, iter(text.splitlines())
        for line in lines:
            name, sep, delimiter = line.partition("<<")
            self.assertTrue(sep, line)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            values[name] = "\n".join(body)
        return values

    def test_multi_line_values_round_trip(self):
        values = {"version": "1.2.3", "foundation-tags": "a:1\nb:2", "empty": ""}
        self.assertEqual(self.parse(release.github_output(values)), values)

    def test_a_value_cannot_close_its_block(self):
        out = release.github_output({"x": "EOF\nEOF_\nprerelease<<EOF"})
        delimiter = out.splitlines()[0].split("<<", 1)[1]
        self.assertRegex(delimiter, r"^EOF_[0-9a-f]{32}$")
        self.assertEqual(self.parse(out), {"x": "EOF\nEOF_\nprerelease<<EOF"})


class CommandLineTest(TempFiles):
    def test_plan_writes_outputs_and_notes(self):
        output, notes = self.root / "output", self.root / "notes.md"
        output.write_text("earlier=1\n", encoding="utf-8")
        code, out, err = self.run_main(
            "plan", "--tag", "v1.2.3", "--sha", SHA, "--created", "2026-11-26T08:30:00Z",
            "--existing", "v1.2.2", "v1.2.3", "--cargo-toml", str(self.cargo),
            "--changelog", str(self.changelog), "--github-output", str(output), "--notes", str(notes),
        )
        self.assertEqual((code, err), (0, ""))
        text = output.read_text(encoding="utf-8")
        self.assertTrue(text.startswith("earlier=1\n"), "appended, not overwritten")
        values = GithubOutputTest.parse(self, text.split("\n", 1)[1])
        self.assertEqual(
            list(values),
            ["version", "prerelease", "registries", "primary-registry", "created", "source",
             "foundation-tags", "foundation-labels", "full-tags", "full-labels"],
        )
        self.assertEqual(values["registries"], "docker.io/stockadedev\nghcr.io/stockade-dev")
        self.assertEqual(values["primary-registry"], "docker.io/stockadedev")
        self.assertEqual(values["created"], "2026-11-26T08:30:00Z")
        self.assertEqual(values["source"], "https://github.com/stockade-dev/stockade")
        self.assertEqual((values["version"], values["prerelease"]), ("1.2.3", "false"))
        self.assertEqual(
            values["full-tags"].splitlines(),
            [f"{r}/full:{t}" for r in release.REGISTRIES for t in ["1.2.3", "1.2", "1", "latest", f"sha-{SHA}"]],
        )
        self.assertIn("org.opencontainers.image.title=stockade foundation", values["foundation-labels"].splitlines())
        self.assertEqual(len(values["full-labels"].splitlines()), 7)
        self.assertEqual(notes.read_text(encoding="utf-8"), release.changelog_section(CHANGELOG, Version(1, 2, 3)))
        self.assertIn("version:\n  1.2.3\n", out)

    def test_plan_refuses_a_tag_that_is_not_the_cargo_version(self):
        output = self.root / "output"
        code, out, err = self.run_main(
            "plan", "--tag", "v1.3.0", "--sha", SHA, "--created", "2026-11-26T08:30:00Z",
            "--cargo-toml", str(self.cargo), "--changelog", str(self.changelog),
            "--github-output", str(output), "--notes", str(self.root / "notes.md"),
        )
        self.assertEqual((code, out), (1, ""))
        self.assertRegex(err, r"^release.py: the tag says 1.3.0 but .* version is '1.2.3'")
        self.assertFalse(output.exists(), "nothing written on a refusal")

    def test_tags_labels_and_changelog_print_one_item_a_line(self):
        code, out, _ = self.run_main("tags", "--tag", "v1.2.3-rc.1", "--sha", SHA, "--image", "foundation",
                                     "--registry", "r.example/a")
        self.assertEqual((code, out), (0, f"r.example/a/foundation:1.2.3-rc.1\nr.example/a/foundation:sha-{SHA}\n"))
        code, out, _ = self.run_main("labels", "--tag", "v1.2.3", "--sha", SHA, "--image", "full",
                                     "--created", "2026-11-26T08:30:00Z", "--cargo-toml", str(self.cargo))
        self.assertEqual(code, 0)
        self.assertEqual(out.splitlines()[0], "org.opencontainers.image.created=2026-11-26T08:30:00Z")
        code, out, _ = self.run_main("changelog", "--tag", "v1.2.3-rc.1", "--changelog", str(self.changelog))
        self.assertEqual((code, out), (0, "### Added\n\n- A candidate.\n"))

    def test_a_refusal_is_one_line_on_stderr(self):
        code, out, err = self.run_main("tags", "--tag", "1.2.3", "--sha", SHA, "--image", "full")
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err.count("\n"), 1)
        self.assertTrue(err.startswith("release.py: '1.2.3' is not a release tag"))


if __name__ == "__main__":
    unittest.main()
