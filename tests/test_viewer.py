"""The OHIF viewer served by a real node: app-config.js, SPA routes, caching, gzip, traversal,
IHE Invoke Image Display (with studies stored by DCMTK storescu), licence guard."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import unquote

import pydicom
import pytest
from aiohttp import web

from mekong.shared.http.server import ROUTE_MODULES
from mekong.shared.http.viewer import DEFAULT_DIR, SPA_ROUTES, scan
from tests.conftest import dcmtk
from tests.nodeproc import AE_TITLE, NodeProcess
from tools import gendata

IMMUTABLE = "public, max-age=31536000, immutable"
# AGPL licence texts and banners; shepherd.js 14 and later are AGPL-3.0 or commercial.
AGPL_PATTERNS = [
    re.compile(rb"shepherd\.js\s+v?(?:1[4-9]|[2-9][0-9])\."),
    re.compile(rb"GNU\s+AFFERO", re.IGNORECASE),
    re.compile(rb"(?<![A-Za-z0-9+/])AGPL"),
]


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()

    def json(self) -> dict:
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return json.loads(self.body)


def get(node: NodeProcess, target: str, **headers: str) -> Reply:
    """One GET with the target sent exactly as given (no normalisation, no redirects)."""
    connection = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=30)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        connection.endheaders()
        return Reply(connection.getresponse())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def viewer_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node on the real viewer folder (build/ohif, made by `make setup`)."""
    if not (DEFAULT_DIR / "index.html").is_file():
        pytest.fail(f"{DEFAULT_DIR} has no viewer: run `make setup`")
    node = NodeProcess(tmp_path_factory.mktemp("viewer") / "data").start()
    yield node
    node.stop()


def write_config(path: Path, **http: str) -> list[str]:
    path.write_text("[http]\n" + "".join(f"{key} = {json.dumps(v)}\n" for key, v in http.items()))
    return ["--config", str(path)]


# --- app-config.js ------------------------------------------------------------------------------


def test_app_config_points_at_the_node_dicomweb(viewer_node: NodeProcess) -> None:
    reply = get(viewer_node, "/app-config.js")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-cache"
    assert reply.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    text = reply.body.decode()
    assert "http:" not in text and "https:" not in text, "nothing may come from the internet"
    config = json.loads(text.split("window.config = ", 1)[1].rstrip().rstrip(";"))
    assert config["routerBasename"] == "/"
    assert config["showStudyList"] is True
    assert config["investigationalUseDialog"] == {"option": "never"}
    assert config["defaultDataSourceName"] == "pacs"
    sources = {s["sourceName"]: s["configuration"] for s in config["dataSources"]}
    assert {"pacs", "lite"} <= set(sources)
    for name in ("pacs", "lite"):
        source = sources[name]
        for root in ("qidoRoot", "wadoRoot", "wadoUriRoot", "stowRoot"):
            lossy = name == "lite" and root == "wadoRoot"  # frames as lossy JPEG 2000
            assert source[root] == ("/dicom-web/lite" if lossy else "/dicom-web")
        assert source["qidoSupportsIncludeField"] is True
        assert source["imageRendering"] == "wadors"
        assert source["thumbnailRendering"] == "thumbnail"
        assert source["enableStudyLazyLoad"] is True
        assert source["supportsFuzzyMatching"] is False
        assert source["supportsWildcard"] is True
        assert source["singlepart"] == "bulkdata,video,pdf"
        assert source["bulkDataURI"] == {"enabled": True}
        assert source["omitQuotationForMultipartRequest"] is True


def test_app_config_is_gzipped_and_revalidated(viewer_node: NodeProcess) -> None:
    plain = get(viewer_node, "/app-config.js")
    packed = get(viewer_node, "/app-config.js", Accept_Encoding="gzip")
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.body) == plain.body
    again = get(viewer_node, "/app-config.js", If_None_Match=plain.headers["ETag"])
    assert again.status == 304 and again.body == b""


# --- SPA routes, assets, caching ------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/viewer?StudyInstanceUIDs=1.2.3",
        "/viewer/lite?StudyInstanceUIDs=1.2.3,1.2.4",
        "/segmentation",
        "/tmtv?StudyInstanceUIDs=1.2.3",
        "/microscopy",
        "/localbasic",
    ],
)
def test_viewer_routes_serve_index_html(viewer_node: NodeProcess, target: str) -> None:
    reply = get(viewer_node, target)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-cache"
    assert reply.body == (DEFAULT_DIR / "index.html").read_bytes()
    assert b'<div id="root">' in reply.body and b'src="/app-config.js"' in reply.body


def app_bundle_name() -> str:
    index = (DEFAULT_DIR / "index.html").read_text()
    match = re.search(r'src="/(app\.bundle\.[0-9a-f]{16,}\.js)"', index)
    assert match, "index.html no longer names a hashed app bundle"
    return match.group(1)


def test_hashed_bundle_is_immutable_and_gzipped(viewer_node: NodeProcess) -> None:
    name = app_bundle_name()
    original = (DEFAULT_DIR / name).read_bytes()
    packed = get(viewer_node, f"/{name}", Accept_Encoding="gzip, deflate, br")
    assert packed.status == 200
    assert packed.headers["Cache-Control"] == IMMUTABLE
    assert packed.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert len(packed.body) < len(original) / 3
    assert gzip.decompress(packed.body) == original
    plain = get(viewer_node, f"/{name}")
    assert "Content-Encoding" not in plain.headers and plain.body == original


def test_wasm_mime_type_and_unhashed_files_revalidated(viewer_node: NodeProcess) -> None:
    wasm = next(p.name for p in DEFAULT_DIR.glob("*.wasm") if re.match(r"[0-9a-f]{16,}\.", p.name))
    reply = get(viewer_node, f"/{wasm}", Accept_Encoding="gzip")
    assert reply.headers["Content-Type"] == "application/wasm"
    assert reply.headers["Cache-Control"] == IMMUTABLE
    assert gzip.decompress(reply.body) == (DEFAULT_DIR / wasm).read_bytes()
    css = get(viewer_node, "/app.bundle.css")  # no hash in the name: must be revalidated
    assert css.status == 200 and css.headers["Cache-Control"] == "no-cache"
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    revalidated = get(viewer_node, "/app.bundle.css", If_None_Match=css.headers["ETag"])
    assert revalidated.status == 304


def test_catch_all_is_the_last_route() -> None:
    app = web.Application()
    for module in ROUTE_MODULES:
        app.add_routes(module.routes)
    resources = list(app.router.resources())
    assert resources[-1].canonical == "/{path}"
    assert [r.canonical for r in resources].count("/{path}") == 1


def test_api_and_dicomweb_routes_keep_priority(viewer_node: NodeProcess) -> None:
    assert get(viewer_node, "/api/health").json()["mode"] == "edge"
    for target in ("/api/no-such-route", "/dicom-web/no-such-route", "/no-such-file.js"):
        reply = get(viewer_node, target)
        assert reply.status == 404 and reply.json()["status"] == 404, target
    assert get(viewer_node, "/.mekong-viewer.json").status == 404  # the fetch stamp
    index = (DEFAULT_DIR / "index.html").read_bytes()
    for target in ("/login", "/login?next=%2Fviewer", "/logout", "/callback"):  # not OHIF's OIDC
        assert get(viewer_node, target).body != index, target


# --- folder boundaries, configuration ----------------------------------------------------------


@pytest.fixture
def fake_viewer(tmp_path: Path) -> Path:
    """A tiny viewer folder with a secret next to it and a link that leads to the secret."""
    site = tmp_path / "site"
    (site / "ohif" / "assets").mkdir(parents=True)
    (site / "ohif" / "index.html").write_text("<!doctype html><div id=root></div>")
    (site / "ohif" / "assets" / "a.js").write_text("console.log(1)")
    (site / "ohif" / ".hidden").write_text("SECRET")
    (site / "secret.txt").write_text("SECRET")
    (site / "ohif" / "link.txt").symlink_to(site / "secret.txt")
    return site / "ohif"


TRAVERSALS = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/assets/..%2f..%2fsecret.txt",
    "/assets/%2e%2e/%2e%2e/secret.txt",
    "//secret.txt",
    "/link.txt",
    "/.hidden",
    "/assets/a.js%00",
]


def test_nothing_outside_the_viewer_folder_is_served(node_factory, fake_viewer: Path) -> None:
    config = write_config(fake_viewer.parent / "node.toml", viewer_dir=str(fake_viewer))
    node = node_factory(extra_args=config).start()
    assert get(node, "/assets/a.js").body == b"console.log(1)"
    for target in TRAVERSALS:
        reply = get(node, target)
        assert reply.status in (400, 404), (target, reply.status)
        assert b"SECRET" not in reply.body, target
    spa = get(node, "/viewer/..%2f..%2fsecret.txt")  # a viewer route: index.html, nothing else
    assert spa.body == (fake_viewer / "index.html").read_bytes()


def test_frame_ancestors_from_config(node_factory, fake_viewer: Path) -> None:
    sources = "'self' https://his.example.org"
    config = write_config(
        fake_viewer.parent / "node.toml", viewer_dir=str(fake_viewer), frame_ancestors=sources
    )
    node = node_factory(extra_args=config).start()
    reply = get(node, "/viewer?StudyInstanceUIDs=1.2.3")
    assert reply.headers["Content-Security-Policy"] == f"frame-ancestors {sources}"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_missing_viewer_answers_503_and_the_node_runs(node_factory, tmp_path: Path) -> None:
    config = write_config(tmp_path / "node.toml", viewer_dir=str(tmp_path / "no-viewer"))
    node = node_factory(extra_args=config).start()
    for target in ("/viewer?StudyInstanceUIDs=1.2.3", "/segmentation"):
        reply = get(node, target)
        assert reply.status == 503
        assert reply.json()["error"] == "viewer not installed: run `make setup`"
    assert get(node, "/api/health").json()["status"] == "ok"


def test_viewer_files_are_public_but_iid_needs_images_read(node_factory, tmp_path: Path) -> None:
    node = node_factory(trusted_loopback=False).start()  # no trusted LAN: nobody is signed in
    assert get(node, "/viewer?StudyInstanceUIDs=1.2.3").status == 200
    assert get(node, "/app-config.js").status == 200
    iid = "/IHEInvokeImageDisplay?requestType=STUDY&studyUID=1.2.3"
    reply = get(node, iid)
    assert reply.status == 401 and "sign in" in reply.json()["error"]
    browser = get(node, iid, Accept="text/html,application/xhtml+xml")  # sign in, then back
    assert browser.status == 302
    location = browser.headers["Location"]
    assert location.startswith("/login?next=") and unquote(location[12:]) == iid
    assert get(node, "/dicom-web/studies").status == 401


# --- IHE Invoke Image Display ------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient_studies(viewer_node: NodeProcess, tmp_path_factory: pytest.TempPathFactory) -> list:
    """Two studies of patient IID01 (2019, then 2024) stored with storescu; newest first."""
    out = tmp_path_factory.mktemp("iid")
    uids = [gendata.uid(0, "iid", n) for n in (1, 2)]
    files = []
    for n, (study_uid, date) in enumerate(zip(uids, ("20190301", "20240115"), strict=True)):
        path = gendata.ct_series(out / str(n), 1, 32, 32, patient_id="IID01", study_uid=study_uid)
        ds = pydicom.dcmread(path[0])
        ds.StudyDate = date
        ds.save_as(path[0])
        files += path
    result = dcmtk("storescu", "-R", "-aec", AE_TITLE, "127.0.0.1", str(viewer_node.dicom_port),
                   *map(str, files))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return uids[::-1]


def test_iid_study_redirects_to_the_viewer(viewer_node: NodeProcess) -> None:
    reply = get(viewer_node, "/IHEInvokeImageDisplay?requestType=STUDY&studyUID=1.2.3,1.2.40")
    assert reply.status == 302
    assert reply.headers["Location"] == "/viewer?StudyInstanceUIDs=1.2.3,1.2.40"


def test_iid_patient_opens_all_studies_newest_first(
    viewer_node: NodeProcess, patient_studies: list[str]
) -> None:
    reply = get(viewer_node, "/IHEInvokeImageDisplay?requestType=PATIENT&patientID=IID01")
    assert reply.status == 302
    assert reply.headers["Location"] == "/viewer?StudyInstanceUIDs=" + ",".join(patient_studies)
    with_issuer = "patientID=IID01%5E%5E%5E%261.2.3%26ISO"  # CX: IID01^^^&1.2.3&ISO
    reply = get(viewer_node, f"/IHEInvokeImageDisplay?requestType=PATIENT&{with_issuer}")
    assert reply.headers["Location"].endswith(",".join(patient_studies))
    viewer = get(viewer_node, reply.headers["Location"])
    assert viewer.status == 200 and b'<div id="root">' in viewer.body
    assert wait_for_audit(viewer_node, "images.query", "IID01"), "the look-up was not audited"


def wait_for_audit(node: NodeProcess, action: str, patient_id: str, timeout: float = 10) -> bool:
    """True once the node's audit trail (read straight from index.db) holds such an event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with closing(sqlite3.connect(f"file:{node.data_dir / 'index.db'}?mode=ro", uri=True)) as db:
            sql = "SELECT count(*) FROM audit_event WHERE action = ? AND patient_id = ?"
            if db.execute(sql, (action, patient_id)).fetchone()[0]:
                return True
        time.sleep(0.2)
    return False


def test_iid_accession_number(viewer_node: NodeProcess, patient_studies: list[str]) -> None:
    accession = "A" + patient_studies[0][-15:]  # as tools/gendata.py sets it
    reply = get(
        viewer_node, f"/IHEInvokeImageDisplay?requestType=STUDY&accessionNumber={accession}"
    )
    assert reply.status == 302
    assert reply.headers["Location"] == f"/viewer?StudyInstanceUIDs={patient_studies[0]}"


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, "requestType must be STUDY or PATIENT"),
        ("requestType=SERIES&studyUID=1.2.3", 400, "requestType must be STUDY or PATIENT"),
        ("requestType=STUDY", 400, "studyUID is missing"),
        ("requestType=STUDY&studyUID=1.2.abc", 400, "is not a DICOM UID"),
        ("requestType=STUDY&studyUID=1.2.3,", 400, "is not a DICOM UID"),
        ("requestType=STUDY&studyUID=1." + "2" * 64, 400, "is not a DICOM UID"),
        ("requestType=STUDY&studyUID=1.2&accessionNumber=A1", 400, "not both"),
        ("requestType=PATIENT", 400, "patientID is missing"),
        ("requestType=PATIENT&patientID=IID*", 400, "without"),
        ("requestType=PATIENT&patientID=NOBODY", 404, "no studies stored for patient"),
        ("requestType=STUDY&accessionNumber=NONE", 404, "no studies stored with accession"),
    ],
)
def test_iid_bad_requests(viewer_node: NodeProcess, query: str, status: int, message: str) -> None:
    reply = get(viewer_node, f"/IHEInvokeImageDisplay?{query}")
    assert reply.status == status
    assert message in reply.json()["error"]


# --- licence guard -------------------------------------------------------------------------------


def test_no_agpl_code_in_served_javascript() -> None:
    """Fails if any served .js carries an AGPL banner (OHIF 3.13 bundles shepherd.js 15)."""
    assert any(p.search(b"/*! shepherd.js 15.2.2 */") for p in AGPL_PATTERNS)  # guard works
    assert not any(p.search(b"/*! shepherd.js 13.0.3 */") for p in AGPL_PATTERNS)
    served = [asset.path for name, asset in scan(DEFAULT_DIR).items() if name.endswith(".js")]
    assert len(served) > 50, "the viewer is not installed: run `make setup`"
    offenders = []
    for path in served:
        text = path.read_bytes()
        offenders += [
            f"{path.name}: {m.group(0)!r}" for p in AGPL_PATTERNS if (m := p.search(text))
        ]
    assert not offenders, offenders


def test_every_ohif_mode_route_falls_back_to_index_html() -> None:
    """The mode routes named in the bundle are all SPA routes of the server."""
    named = set()
    for asset in scan(DEFAULT_DIR).values():
        if asset.path.suffix == ".js":
            named |= set(re.findall(rb"routeName: '([A-Za-z0-9-]+)'", asset.path.read_bytes()))
    assert {"viewer", "segmentation", "tmtv", "microscopy"} <= {n.decode() for n in named}
    assert {n.decode() for n in named} <= SPA_ROUTES
