"""Uploaded bundles: zip files and folder uploads, spiff-arena's model folders, and what is refused."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

import engine
from engine._specs import kind_of, parse_bundle, read_bundle
from engine.bundle_import import MAX_FILES, MAX_TOTAL_BYTES, read_uploaded_files, read_zip
from tests.conftest import FIXTURES

MODEL = FIXTURES / "spiff_arena" / "vendor-check"
DECISION = FIXTURES / "decision"


def _zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _model_entries(prefix: str = "vendor-check/") -> dict[str, bytes]:
    return {f"{prefix}{p.name}": p.read_bytes() for p in sorted(MODEL.iterdir()) if p.is_file()}


BPMN = (FIXTURES / "approval" / "approval.bpmn").read_bytes()


def test_a_zipped_spiff_arena_folder_reads_as_its_files_and_metadata() -> None:
    imported = read_zip(_zip(_model_entries()))
    assert [f.name for f in imported.files] == [
        "approve-vendor-schema.json",
        "approve-vendor-uischema.json",
        "vendor-details-schema.json",
        "vendor-details-uischema.json",
        "vendor_check.bpmn20.xml",
    ]
    assert {f.name: f.kind for f in imported.files}["vendor_check.bpmn20.xml"] == "bpmn"
    assert imported.process_id == "Process_vendor_check_7d1x3qk"
    assert imported.display_name == "Vendor check"
    assert imported.description == ("Check a new vendor against the vendor registry before the first order.")
    assert imported.warnings == []
    for item in imported.files:
        assert item.content == (MODEL / item.name).read_text(encoding="utf-8")


def test_zip_round_trip_gives_the_same_bundle_as_the_folder() -> None:
    from_zip = read_zip(_zip(_model_entries(prefix="")))
    from_upload = read_uploaded_files(list(_model_entries().items()))
    from_folder = read_bundle(MODEL)
    assert from_zip.files == from_upload.files == from_folder
    assert engine.bundle_import.ImportedBundle(files=from_zip.files).files == from_folder
    again = read_zip(_zip({f.name: f.content.encode() for f in from_zip.files}))
    assert again.files == from_zip.files


def test_files_in_subfolders_keep_their_paths() -> None:
    imported = read_zip(_zip({"model/main.bpmn": BPMN, "model/forms/a.json": b"{}", "model/x.dmn": b"<x/>"}))
    assert [(f.name, f.kind) for f in imported.files] == [
        ("forms/a.json", "form"),
        ("main.bpmn", "bpmn"),
        ("x.dmn", "dmn"),
    ]


def test_other_files_are_left_out_with_a_warning_and_litter_silently() -> None:
    imported = read_zip(
        _zip(
            {
                "m/main.bpmn": BPMN,
                "m/README.md": b"# notes",
                "m/.DS_Store": b"\0\1",
                "__MACOSX/m/._main.bpmn": b"\0\1\2",
                "m/.git/config": b"[core]",
            }
        )
    )
    assert [f.name for f in imported.files] == ["main.bpmn"]
    assert [(w.severity, w.file) for w in imported.warnings] == [("warning", "README.md")]
    assert "not a BPMN, DMN or JSON file" in imported.warnings[0].message


def test_process_model_metadata_that_does_not_fit_gives_warnings() -> None:
    metadata = b'{"display_name": 5, "primary_file_name": "gone.bpmn", "primary_process_id": "nope"}'
    imported = read_uploaded_files([("main.bpmn", BPMN), ("process_model.json", metadata)])
    assert imported.display_name is None and imported.process_id == "nope"
    fields = sorted(w.field or "" for w in imported.warnings)
    assert fields == ["/display_name", "/primary_file_name", "/primary_process_id"]
    assert all(w.file == "process_model.json" for w in imported.warnings)


def test_process_model_json_that_is_not_json_is_refused() -> None:
    with pytest.raises(engine.DeploymentError, match="invalid JSON") as info:
        read_uploaded_files([("main.bpmn", BPMN), ("process_model.json", b"{nope")])
    assert info.value.file == "process_model.json"


@pytest.mark.parametrize(
    "name",
    ["../evil.bpmn", "m/../../evil.bpmn", "/etc/evil.bpmn", "C:/evil.bpmn", "c:evil.bpmn", "m\\evil.bpmn"],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(engine.DeploymentError) as from_zip:
        read_zip(_zip({"main.bpmn": BPMN, name: BPMN}))
    with pytest.raises(engine.DeploymentError) as from_upload:
        read_uploaded_files([("main.bpmn", BPMN), (name, BPMN)])
    assert from_zip.value.file == from_upload.value.file == name


def test_two_files_of_one_name_are_refused() -> None:
    with pytest.raises(engine.DeploymentError, match="two files of this name") as info:
        read_uploaded_files([("main.bpmn", BPMN), ("./main.bpmn", BPMN)])
    assert info.value.file == "main.bpmn"


def test_symbolic_links_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.bpmn", BPMN)
        link = zipfile.ZipInfo("secrets.json")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(engine.DeploymentError, match="symbolic links") as info:
        read_zip(buffer.getvalue())
    assert info.value.file == "secrets.json"


def test_a_zip_bomb_is_stopped_while_decompressing() -> None:
    # 50 MB of zeros compress to about 50 kB.
    bomb = _zip({"main.bpmn": BPMN, "huge.json": b"0" * (50 * 1024 * 1024)})
    assert len(bomb) < 200_000
    with pytest.raises(engine.DeploymentError, match="larger than") as info:
        read_zip(bomb)
    assert info.value.file == "huge.json"


def test_a_header_that_understates_the_size_does_not_help() -> None:
    data = bytearray(_zip({"main.bpmn": BPMN, "huge.json": b"0" * (8 * 1024 * 1024)}))
    # Claim 10 bytes in the central directory entry of huge.json (uncompressed size field).
    entry = data.rfind(b"PK\x01\x02")
    data[entry + 24 : entry + 28] = (10).to_bytes(4, "little")
    assert zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("huge.json").file_size == 10
    with pytest.raises(engine.DeploymentError) as info:
        read_zip(bytes(data))
    assert info.value.file == "huge.json"


def test_the_total_size_is_limited() -> None:
    part = b"1" * (4 * 1024 * 1024)
    entries = {"main.bpmn": BPMN, **{f"f{i}.json": part for i in range(MAX_TOTAL_BYTES // len(part) + 1)}}
    with pytest.raises(engine.DeploymentError, match="in all"):
        read_zip(_zip(entries))
    with pytest.raises(engine.DeploymentError, match="in all"):
        read_uploaded_files(list(entries.items()))


def test_the_number_of_files_is_limited() -> None:
    entries = {"main.bpmn": BPMN, **{f"f{i}.json": b"{}" for i in range(MAX_FILES)}}
    with pytest.raises(engine.DeploymentError, match=f"more than {MAX_FILES}"):
        read_zip(_zip(entries))


def test_text_that_is_not_utf8_is_refused_naming_the_file() -> None:
    with pytest.raises(engine.DeploymentError, match="not UTF-8") as info:
        read_zip(_zip({"m/main.bpmn": BPMN, "m/form.json": '{"title": "Å"}'.encode("latin-1")}))
    assert info.value.file == "form.json"


def test_a_bundle_without_a_diagram_and_a_file_that_is_not_a_zip_are_refused() -> None:
    with pytest.raises(engine.DeploymentError, match=r"no \.bpmn"):
        read_zip(_zip({"form.json": b"{}"}))
    with pytest.raises(engine.DeploymentError, match="not a zip file"):
        read_zip(b"PK but not really")


def test_bpmn20_xml_is_a_diagram_everywhere(tmp_path: Path) -> None:
    assert kind_of("x/Model.BPMN20.XML") == "bpmn" and kind_of("x.xml") is None
    (tmp_path / "approval.bpmn20.xml").write_bytes(BPMN)
    for name in ("approve.schema.json", "request.schema.json"):
        (tmp_path / name).write_bytes((FIXTURES / "approval" / name).read_bytes())
    files = read_bundle(tmp_path)
    assert (files[0].name, files[0].kind) == ("approval.bpmn20.xml", "bpmn")
    assert parse_bundle(files).executable == ["approval"]


# -- what the schema refuses but SpiffWorkflow runs ------------------------------------------------


def test_schema_findings_are_warnings_with_file_line_and_element() -> None:
    parsed = parse_bundle(read_bundle(MODEL))
    (warning,) = parsed.warnings
    assert (warning.severity, warning.file, warning.line, warning.element) == (
        "warning",
        "vendor_check.bpmn20.xml",
        6,
        "Flow_registry_lookup",
    )
    assert "bpmn:messageFlow" in warning.message and "{http" not in warning.message


def test_an_unknown_attribute_is_a_warning_and_the_model_still_parses() -> None:
    text = BPMN.decode().replace('<bpmn:userTask id="approve"', '<bpmn:userTask id="approve" colour="red"')
    parsed = parse_bundle(
        [
            engine.BundleFile("approval.bpmn", "bpmn", text),
            *[f for f in read_bundle(FIXTURES / "approval") if f.kind == "form"],
        ]
    )
    (warning,) = parsed.warnings
    assert warning.element == "approve" and "colour" in warning.message
    assert "approve" in parsed.specs["approval"].task_specs


def test_decision_tables_are_checked_leniently_too() -> None:
    files = read_bundle(DECISION)
    dmn = next(f for f in files if f.kind == "dmn")
    changed = dmn.content.replace("<decision ", '<decision legacyFlag="1" ', 1)
    assert changed != dmn.content
    files = [f if f is not dmn else engine.BundleFile(dmn.name, "dmn", changed) for f in files]
    parsed = parse_bundle(files)
    assert [(w.file, w.severity) for w in parsed.warnings] == [(dmn.name, "warning")]
    assert "legacyFlag" in parsed.warnings[0].message


def test_what_spiffworkflow_cannot_parse_is_still_an_error() -> None:
    broken = BPMN.decode().replace("</bpmn:process>", "<bpmn:task id='dangling'></bpmn:process>")
    with pytest.raises(engine.DeploymentError, match="malformed XML"):
        parse_bundle([engine.BundleFile("approval.bpmn", "bpmn", broken)])
    unknown_message = (
        (MODEL / "vendor_check.bpmn20.xml")
        .read_text()
        .replace(
            '<bpmn:intermediateThrowEvent id="Event_vendor_checked" name="Vendor checked">',
            '<bpmn:intermediateThrowEvent id="Event_vendor_checked" name="Vendor checked">'
            '<bpmn:messageEventDefinition id="M1" messageRef="[object Object]" />',
        )
    )
    files = [f for f in read_bundle(MODEL) if f.kind == "form"]
    with pytest.raises(engine.DeploymentError) as info:
        parse_bundle([engine.BundleFile("vendor_check.bpmn20.xml", "bpmn", unknown_message), *files])
    assert info.value.element == "Event_vendor_checked"
