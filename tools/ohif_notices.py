"""Write docs/third-party/ohif-notices.md: the npm packages inside the vendored OHIF viewer.

Developer tool (needs node and npm; `make setup` does not run it). Two steps:

    python3 -m tools.ohif_notices prepare /tmp/ohif-npm   # scratch `npm install`, no scripts run
    python3 -m tools.ohif_notices write /tmp/ohif-npm     # docs/third-party/ohif-notices.md

Which packages: the webpack module paths (`node_modules/<name>/...`) left in the dist's
JavaScript (build/ohif/, made by tools/fetch_viewer.py), i.e. what the served files contain.
Versions, licences and copyright lines: the package.json and LICENSE files of the scratch
install. The install holds @ohif/app's exact third-party pins; OHIF's own workspace packages
are not all published at 3.12.10, so their dependency ranges come from the nearest published
versions (STAND_INS), and the few bundled packages none of them brings are installed at their
latest version, for their licence only (LATEST_ONLY). The table says which case each row is.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

from tools import fetch_viewer

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "third-party" / "ohif-notices.md"
MODULE_PATH = re.compile(rb"node_modules/((?:@[A-Za-z0-9._-]+/)?[A-Za-z0-9._-]+)/")
COPYRIGHT = re.compile(
    r"^\s*(?:copyright\b|\(c\)|©)(?!\s*(?:holders?|notices?|licen[cs]e|owners?|statement"
    r"|and permission|you must|\[yyyy\]|\{yyyy\}|\[year\]|<year>)).*",
    re.IGNORECASE | re.MULTILINE,
)
# OHIF workspace packages (their code is OHIF's, MIT) at the nearest published version, for the
# third-party dependencies they bring; plus the dependencies of @ohif/extension-dicom-microscopy.
STAND_INS = {
    "@ohif/core": "3.12.1",
    "@ohif/ui": "3.12.1",
    "@ohif/extension-cornerstone": "3.12.10",
    "@ohif/ui-next": "3.11.0",
    "@ohif/extension-default": "3.13.0",
    "@ohif/extension-cornerstone-dicom-sr": "3.13.13",
    "@ohif/extension-cornerstone-dicom-seg": "3.13.0",
    "dicom-microscopy-viewer": "^0.44.0",
    "colormap": "^2.3",
    "dicomicc": "^0.1",
}
# Bundled, but brought by none of the above: version unknown, licence of the latest release.
LATEST_ONLY = {
    "@radix-ui/react-toggle-group": "OHIF ui-next",
    "@radix-ui/react-use-escape-keydown": "OHIF ui-next",
    "@radix-ui/react-use-previous": "OHIF ui-next",
    "xstate": "OHIF measurement tracking",
    "@xstate/react": "OHIF measurement tracking",
    "i18next-locize-backend": "OHIF i18n",
    "locize-editor": "OHIF i18n",
    "locize-lastused": "OHIF i18n",
    "css-loader": "webpack runtime helpers",
    "gulp-browserify": "paths inside object-hash's prebuilt browser file",
    "crypto-browserify": "inside object-hash's prebuilt browser file",
    "process": "inside object-hash's prebuilt browser file",
}
PACKAGE_KINDS = {
    "pinned": "exact pin of @ohif/app 3.12.10",
    "resolved": "npm resolution of OHIF's ranges",
    "latest": "latest release; bundled version not determined",
}


def bundled_packages(dist: Path) -> dict[str, set[str]]:
    """npm package name -> the served .js files that hold its modules."""
    found: dict[str, set[str]] = {}
    for path in sorted(dist.rglob("*.js")):
        for name in set(MODULE_PATH.findall(path.read_bytes())):
            found.setdefault(name.decode(), set()).add(path.relative_to(dist).as_posix())
    return found


def app_manifest(tarball: Path) -> dict:
    with tarfile.open(tarball, "r:gz") as archive:
        member = archive.extractfile("package/package.json")
        assert member is not None
        return json.load(member)


def prepare(scratch: Path, tarball: Path) -> None:
    pins = app_manifest(tarball)["dependencies"]
    dependencies = {k: v for k, v in pins.items() if not k.startswith("@ohif/")}
    dependencies |= STAND_INS | {name: "*" for name in LATEST_ONLY}
    scratch.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "ohif-notices-scratch", "private": True, "dependencies": dependencies}
    (scratch / "package.json").write_text(json.dumps(manifest, indent=1))
    npm = ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev",
           "--legacy-peer-deps"]  # fmt: skip
    subprocess.run(npm, cwd=scratch, check=True)


def installed(node_modules: Path) -> dict[str, dict[str, Path]]:
    """package name -> {version: folder} for every package folder under node_modules."""
    result: dict[str, dict[str, Path]] = {}
    for manifest in node_modules.rglob("package.json"):
        parts = manifest.parent.relative_to(node_modules).parts
        cut = max((i for i, p in enumerate(parts) if p == "node_modules"), default=-1) + 1
        name_parts = parts[cut:]
        if len(name_parts) != (2 if name_parts and name_parts[0].startswith("@") else 1):
            continue
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if data.get("name") == "/".join(name_parts) and data.get("version"):
            result.setdefault(data["name"], {})[data["version"]] = manifest.parent
    return result


def license_of(folder: Path) -> str:
    data = json.loads((folder / "package.json").read_text())
    value = data.get("license") or data.get("licenses")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, list):
        value = " OR ".join(str(v.get("type", v) if isinstance(v, dict) else v) for v in value)
    return str(value) if value else "see its LICENSE file"


def copyright_lines(folder: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted(folder.glob("*")):
        if path.is_file() and re.match(r"(?i)(licen[cs]e|copying|notice)", path.name):
            text = path.read_text(errors="replace")
            lines += [" ".join(m.split()) for m in COPYRIGHT.findall(text)]
    return list(dict.fromkeys(line for line in lines if len(line) < 200))


def rows(bundled: dict[str, set[str]], node_modules: Path, pins: dict) -> list:
    packages = installed(node_modules)
    table = []
    for name in sorted(bundled, key=str.lower):
        versions = packages.get(name, {})
        kind = "latest" if name in LATEST_ONLY else "pinned" if name in pins else "resolved"
        if kind == "latest":  # only the top-level install, the one asked for
            versions = {v: f for v, f in versions.items() if f == node_modules / name}
        licences = sorted({license_of(folder) for folder in versions.values()}) or ["unknown"]
        notices = [line for folder in versions.values() for line in copyright_lines(folder)]
        version_text = pins.get(name) if kind == "pinned" else ", ".join(sorted(versions))
        table.append((name, version_text or "?", " / ".join(licences), kind,
                      list(dict.fromkeys(notices))))  # fmt: skip
    return table


def render(table: list, dist: Path) -> str:
    counts = Counter(row[2] for row in table)
    template = (ROOT / "tools" / "ohif_notices_head.md").read_text()
    head = template.format(
        version=fetch_viewer.VERSION,
        count=len(table),
        summary=", ".join(f"{licence} {n}" for licence, n in counts.most_common()),
        ohif_license=(dist / fetch_viewer.LICENSE_NAME).read_text().strip(),
    )
    lines = [head, "## Bundled npm packages", "",
             "| package | version | licence | version source |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| `{n}` | {v} | {lic} | {PACKAGE_KINDS[k]} |" for n, v, lic, k, _ in table]
    lines += ["", "## Copyright lines from the packages' licence files", ""]
    lines += [f"- `{n}`: " + "; ".join(c) for n, _, _, _, c in table if c]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("prepare", "write"))
    parser.add_argument("scratch", type=Path, help="folder for the scratch npm install")
    parser.add_argument("--dist", type=Path, default=fetch_viewer.DEFAULT_DEST)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    tarball = fetch_viewer.DEFAULT_CACHE / fetch_viewer.URL.rsplit("/", 1)[-1]
    if args.step == "prepare":
        prepare(args.scratch, tarball)
        return 0
    pins = app_manifest(tarball)["dependencies"]
    bundled = bundled_packages(args.dist)
    table = rows(bundled, args.scratch / "node_modules", pins)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(table, args.dist))
    missing = [row[0] for row in table if row[1] == "?"]
    print(f"{args.out}: {len(table)} packages; without a version: {missing or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
