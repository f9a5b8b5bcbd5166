"""Tests for sr_kit.data: image reading policy, folder layouts, registry, checks, embedded set."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_kit import data
from sr_kit.data import (
    DATASETS,
    EMBEDDED_SPLIT,
    DatasetError,
    ImageError,
    PairedDataset,
    check_dataset,
    data_root,
    embedded_dataset,
    embedded_images,
    image_folder,
    list_datasets,
    modcrop,
    read_image,
    resolve_dataset,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCHMARKS = SHARED / "benchmarks"


@pytest.fixture
def shared() -> Path:
    if not (BENCHMARKS / "Set5" / "HR").is_dir():
        pytest.skip(f"needs the shared benchmark copies at {BENCHMARKS} (absent in this checkout)")
    return BENCHMARKS


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    img.save(path)
    return path


def png_bytes(w: int, h: int, bit_depth: int, color_type: int, rows: list[bytes]) -> bytes:
    """A minimal PNG written by hand (Pillow cannot write 16-bit RGB)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\x00" + r for r in rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------------------------
# read_image
# ----------------------------------------------------------------------------------------------


def test_read_rgb_png_exact(tmp_path: Path) -> None:
    a = rgb(7, 5)
    out = read_image(save(tmp_path / "a.png", a))
    assert out.dtype == np.uint8 and out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out, a)
    assert out.flags.writeable and out.flags.c_contiguous


def test_read_random_bytes_png(tmp_path: Path) -> None:
    p = tmp_path / "noise.png"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError, match=r"noise\.png") as info:
        read_image(p)
    assert info.value.__cause__ is not None  # the Pillow error is chained


def test_read_text_file_named_png(tmp_path: Path) -> None:
    p = tmp_path / "x.png"
    p.write_text("this is not an image\n")
    with pytest.raises(ImageError, match=r"x\.png.*cannot be read as an image"):
        read_image(p)


def test_read_truncated_png(tmp_path: Path) -> None:
    p = save(tmp_path / "cut.png", rgb(64, 64))
    blob = p.read_bytes()
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ImageError, match=r"cut\.png"):
        read_image(p)


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"gone\.png: file not found"):
        read_image(tmp_path / "gone.png")


def test_read_jpeg(tmp_path: Path) -> None:
    a = np.full((16, 24, 3), (200, 100, 50), np.uint8)
    out = read_image(save(tmp_path / "a.jpg", a))
    assert out.shape == (16, 24, 3)
    assert np.abs(out.astype(int) - a).max() <= 2  # flat colour survives JPEG almost exactly


def test_read_rgba_opaque_equals_rgb(tmp_path: Path) -> None:
    a = rgb(6, 9)
    rgba = np.dstack([a, np.full((6, 9), 255, np.uint8)])
    np.testing.assert_array_equal(read_image(save(tmp_path / "o.png", rgba)), a)


def test_read_rgba_transparent_names_file(tmp_path: Path) -> None:
    rgba = np.dstack([rgb(6, 9), np.full((6, 9), 255, np.uint8)])
    rgba[2, 3, 3] = 0
    rgba[4, 4, 3] = 128
    with pytest.raises(ImageError, match=r"see-through\.png: 2 of 54 pixels .*transparent"):
        read_image(save(tmp_path / "see-through.png", rgba))


def test_read_palette_converted(tmp_path: Path) -> None:
    idx = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    palette = [10, 20, 30, 200, 150, 100, 0, 255, 7] + [0] * (256 * 3 - 9)
    img = Image.frombytes("P", (3, 2), idx.tobytes())
    img.putpalette(palette)
    p = tmp_path / "pal.png"
    img.save(p)
    assert Image.open(p).mode == "P"
    out = read_image(p)
    lut = np.array(palette[:9], np.uint8).reshape(3, 3)
    np.testing.assert_array_equal(out, lut[idx])


def test_read_palette_with_transparency(tmp_path: Path) -> None:
    idx = np.array([[0, 1], [1, 1]], np.uint8)
    img = Image.frombytes("P", (2, 2), idx.tobytes())
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * (254 * 3))
    used, unused = tmp_path / "used.png", tmp_path / "unused.png"
    img.save(used, transparency=0)  # index 0 (one pixel) is transparent
    img.save(unused, transparency=5)  # transparent index not used by any pixel: opaque
    with pytest.raises(ImageError, match=r"used\.png: 1 of 4 pixels"):
        read_image(used)
    np.testing.assert_array_equal(read_image(unused)[1, 1], [0, 255, 0])
    np.testing.assert_array_equal(read_image(unused)[0, 0], [255, 0, 0])


def test_read_grayscale_replicated(tmp_path: Path) -> None:
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = read_image(save(tmp_path / "g.png", g))
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)


def test_read_bilevel_is_0_or_255(tmp_path: Path) -> None:
    bits = np.array([[0, 255, 0], [255, 255, 0]], np.uint8)
    p = save(tmp_path / "b.png", bits, mode="1")
    assert Image.open(p).mode == "1"
    out = read_image(p)
    np.testing.assert_array_equal(out[:, :, 1], bits)
    assert np.array_equal(out[:, :, 0], out[:, :, 2])


def test_read_la(tmp_path: Path) -> None:
    g = np.array([[5, 60], [120, 250]], np.uint8)
    opaque = np.dstack([g, np.full_like(g, 255)])
    out = read_image(save(tmp_path / "la.png", opaque))
    np.testing.assert_array_equal(out, np.dstack([g, g, g]))
    see = opaque.copy()
    see[0, 0, 1] = 3
    with pytest.raises(ImageError, match=r"la2\.png: 1 of 4 pixels .*mode LA"):
        read_image(save(tmp_path / "la2.png", see))


def test_read_16bit_gray_rejected(tmp_path: Path) -> None:
    p = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(p)
    assert Image.open(p).mode == "I;16"
    with pytest.raises(ImageError, match=r"deep\.png: 16-bit, .*\(mode I;16, stored as I;16B\)"):
        read_image(p)


def test_read_16bit_rgb_png_rejected(tmp_path: Path) -> None:
    # Pillow opens this as mode "RGB" and drops the low byte; we must refuse it instead.
    a = (np.arange(2 * 3 * 3, dtype=">u2").reshape(2, 3, 3) * 1000).astype(">u2")
    p = tmp_path / "rgb48.png"
    p.write_bytes(png_bytes(3, 2, 16, 2, [a[i].tobytes() for i in range(2)]))
    assert Image.open(p).mode == "RGB"
    with pytest.raises(ImageError, match=r"rgb48\.png: 16-bit, .*\(mode RGB, stored as RGB;16B\)"):
        read_image(p)


def test_read_float_tiff_rejected(tmp_path: Path) -> None:
    p = tmp_path / "f.tif"
    Image.fromarray(np.ones((3, 3), np.float32)).save(p)
    with pytest.raises(ImageError, match=r"f\.tif: 16-bit, 32-bit or float image \(mode F"):
        read_image(p)


def test_read_cmyk_rejected(tmp_path: Path) -> None:
    p = tmp_path / "c.jpg"
    Image.fromarray(rgb(8, 8)).convert("CMYK").save(p)
    with pytest.raises(ImageError, match=r"c\.jpg: unsupported image mode CMYK"):
        read_image(p)


# ----------------------------------------------------------------------------------------------
# modcrop and scale validation
# ----------------------------------------------------------------------------------------------


def test_modcrop_exact_shape_and_content() -> None:
    a = rgb(10, 13)
    out = modcrop(a, 4)
    assert out.shape == (8, 12, 3)
    np.testing.assert_array_equal(out, a[:8, :12])
    assert modcrop(a[:, :, 0], 3).shape == (9, 12)
    assert modcrop(a, 1).shape == a.shape


def test_modcrop_too_small() -> None:
    with pytest.raises(ValueError, match=r"size 3x10 .*smaller than the scale 4"):
        modcrop(rgb(3, 10), 4)


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "2"])
def test_modcrop_bad_scale(bad: object) -> None:
    with pytest.raises(ValueError, match=f"got {bad!r}"):
        modcrop(rgb(8, 8), bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, None])
def test_dataset_scale_must_be_int_ge_2(tmp_path: Path, bad: object) -> None:
    save(tmp_path / "a.png", rgb(8, 8))
    with pytest.raises(ValueError, match=rf"integer >= 2 .*got {bad!r}"):
        image_folder(tmp_path, bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# image_folder layouts
# ----------------------------------------------------------------------------------------------


def test_folder_of_hr_images_layout_b(tmp_path: Path) -> None:
    d = tmp_path / "mine"
    save(d / "b.png", np.full((10, 13, 3), (9, 99, 199), np.uint8))
    save(d / "a.jpg", rgb(16, 16))
    (d / "README.txt").write_text("notes")
    (d / ".DS_Store").write_bytes(b"\x00\x01")
    (d / "._a.png").write_bytes(b"resource fork, not an image")
    ds = image_folder(d, 2)
    assert ds.name == "mine" and ds.scale == 2 and ds.lr_source == "bicubic"
    assert ds.names == ("a.jpg", "b.png") and len(ds) == 2
    assert ds.lr_paths is None and ds.root == d
    pair = ds[1]
    assert pair.name == "b.png"
    assert pair.hr.shape == (10, 12, 3) and pair.lr.shape == (5, 6, 3)
    # bicubic of a flat image is the same flat colour
    assert (pair.lr == np.array([9, 99, 199], np.uint8)).all()
    assert repr(ds) == "PairedDataset(name='mine', scale=2, images=2, lr_source='bicubic')"
    assert image_folder(d, 4, name="custom").name == "custom"


def test_hr_lr_layout_a_uses_files(tmp_path: Path) -> None:
    hr, lr = rgb(13, 9, seed=1), rgb(6, 4, seed=2)
    save(tmp_path / "HR" / "pic.png", hr)
    save(tmp_path / "LR_bicubic" / "X2" / "picx2.png", lr)
    save(tmp_path / "LR_bicubic" / "X3" / "picx3.png", rgb(4, 3))
    ds = image_folder(tmp_path, 2)
    assert ds.lr_source == "files"
    assert ds.lr_paths == (tmp_path / "LR_bicubic" / "X2" / "picx2.png",)
    pair = ds[0]
    np.testing.assert_array_equal(pair.hr, hr[:12, :8])
    np.testing.assert_array_equal(pair.lr, lr)
    # no X4 folder: LR is made with the kit's bicubic
    ds4 = image_folder(tmp_path, 4)
    assert ds4.lr_source == "bicubic" and ds4[0].lr.shape == (3, 2, 3)


@pytest.mark.parametrize("lr_name", ["pic.png", "picx3.png", "pic.bmp"])
def test_explicit_lr_dir_layout_c(tmp_path: Path, lr_name: str) -> None:
    lr = rgb(3, 5, seed=3)
    save(tmp_path / "hr" / "pic.png", rgb(9, 15))
    save(tmp_path / "low" / lr_name, lr)
    ds = image_folder(tmp_path / "hr", 3, lr_dir=tmp_path / "low")
    assert ds.lr_source == "files"
    np.testing.assert_array_equal(ds[0].lr, lr)


def test_explicit_lr_dir_ambiguous(tmp_path: Path) -> None:
    save(tmp_path / "hr" / "pic.png", rgb(8, 8))
    save(tmp_path / "low" / "pic.png", rgb(4, 4))
    save(tmp_path / "low" / "picx2.png", rgb(4, 4))
    with pytest.raises(DatasetError, match=r"several LR files .*picx2\.png"):
        image_folder(tmp_path / "hr", 2, lr_dir=tmp_path / "low")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=rf"No images found in {tmp_path}.*\.png, \.jpg"):
        image_folder(tmp_path, 2)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"Dataset folder not found: .*nope"):
        image_folder(tmp_path / "nope", 2)


def test_path_is_a_file(tmp_path: Path) -> None:
    f = save(tmp_path / "a.png", rgb(4, 4))
    with pytest.raises(DatasetError, match=r"a\.png is not a folder"):
        image_folder(f, 2)


def test_hr_without_lr_match(tmp_path: Path) -> None:
    save(tmp_path / "HR" / "a.png", rgb(8, 8))
    save(tmp_path / "HR" / "b.png", rgb(8, 8))
    save(tmp_path / "LR_bicubic" / "X2" / "ax2.png", rgb(4, 4))
    lr_dir = tmp_path / "LR_bicubic" / "X2"
    with pytest.raises(DatasetError, match=rf"b\.png has no matching LR file in {lr_dir}.*bx2"):
        image_folder(tmp_path, 2)


def test_lr_wrong_size_at_load_and_validate(tmp_path: Path) -> None:
    save(tmp_path / "HR" / "a.png", rgb(9, 10))
    save(tmp_path / "LR_bicubic" / "X2" / "ax2.png", rgb(5, 5))
    ds = image_folder(tmp_path, 2)  # listing is fine; the size is checked on load
    msg = r"ax2\.png: LR image is 5x5 \(HxW\), expected 4x5"
    with pytest.raises(DatasetError, match=msg):
        ds[0]
    with pytest.raises(DatasetError, match=msg):
        ds.validate()


def test_undecodable_image_fails_lazily(tmp_path: Path) -> None:
    save(tmp_path / "a.png", rgb(8, 8))
    (tmp_path / "b.png").write_bytes(b"garbage")
    ds = image_folder(tmp_path, 2)
    assert len(ds) == 2 and ds[0].hr.shape == (8, 8, 3)
    with pytest.raises(ImageError, match=r"b\.png"):
        ds[1]
    with pytest.raises(ImageError, match=r"b\.png"):
        ds.validate()


def test_hr_smaller_than_scale(tmp_path: Path) -> None:
    save(tmp_path / "tiny.png", rgb(3, 8))
    msg = r"tiny\.png: HR image is 3x8 .*smaller than the scale 4"
    with pytest.raises(DatasetError, match=msg):
        image_folder(tmp_path, 4)[0]


def test_indexing_slicing_iteration(tmp_path: Path) -> None:
    for i, n in enumerate("cab"):
        save(tmp_path / f"{n}.png", np.full((4, 4, 3), i, np.uint8))
    ds = image_folder(tmp_path, 2)
    assert [p.name for p in ds] == ["a.png", "b.png", "c.png"]
    assert ds[-1].name == "c.png" and ds[-1].hr[0, 0, 0] == 0
    assert [p.name for p in ds[1:]] == ["b.png", "c.png"]
    with pytest.raises(IndexError):
        ds[3]


def test_paired_dataset_direct(tmp_path: Path) -> None:
    hr = save(tmp_path / "h.png", rgb(8, 8))
    with pytest.raises(ValueError, match="1 HR files but 0 LR files"):
        PairedDataset("x", 2, [hr], [])


# ----------------------------------------------------------------------------------------------
# Registry, data root, resolve / check / list
# ----------------------------------------------------------------------------------------------


def fake_set(root: Path, folder: str, n: int) -> Path:
    for i in range(n):
        save(root / folder / "HR" / f"im{i}.png", rgb(8, 12, seed=i))
    return root / folder


def test_registry_contents() -> None:
    expected = {"set5": 5, "set14": 14, "b100": 100, "urban100": 100, "manga109": 109}
    for key, n in expected.items():
        assert DATASETS[key].num_images == n and DATASETS[key].hr_subdir == "HR"
    assert DATASETS["div2k"].num_images == 800 and DATASETS["div2k"].hr_subdir == "DIV2K_train_HR"
    assert DATASETS["div2k-val"].num_images == 100
    assert DATASETS["div2k-val"].hr_subdir == "DIV2K_valid_HR"


def test_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_KIT_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("SR_KIT_DATA")
    repo = Path(__file__).resolve().parents[1]
    assert data_root() == repo / "data"  # this checkout has data/ (README, manifests)
    monkeypatch.setattr(data.registry, "_REPO_ROOT", tmp_path / "not-a-checkout")
    monkeypatch.chdir(tmp_path)
    assert data_root() == tmp_path / "data"


def test_resolve_unknown_name_lists_known(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        resolve_dataset("set6", 2, data_root=tmp_path)
    msg = str(info.value)
    for name in ("set5", "set14", "b100", "urban100", "manga109", "div2k", "embedded"):
        assert name in msg
    assert "does not exist" in msg and "'set6'" in msg


def test_resolve_registered_missing(tmp_path: Path) -> None:
    msg = (
        rf"Set5 not found: expected {tmp_path}/Set5/HR with 5 images\. Put the files there "
        r"\(see data/README\.md\), or point --data-root / SR_KIT_DATA elsewhere\."
    )
    with pytest.raises(DatasetError, match=msg):
        resolve_dataset("set5", 2, data_root=tmp_path)


def test_resolve_registered_case_insensitive(tmp_path: Path) -> None:
    fake_set(tmp_path, "Set5", 5)
    ds = resolve_dataset("Set5", 4, data_root=tmp_path)
    assert ds.name == "Set5" and len(ds) == 5 and ds.lr_source == "bicubic"
    assert ds[0].hr.shape == (8, 12, 3) and ds[0].lr.shape == (2, 3, 3)


def test_resolve_registered_wrong_count(tmp_path: Path) -> None:
    fake_set(tmp_path, "Set5", 4)
    with pytest.raises(DatasetError, match=r"expected 5 images in .*Set5/HR, found 4"):
        resolve_dataset("set5", 2, data_root=tmp_path)


def test_resolve_div2k_layout(tmp_path: Path) -> None:
    for i in range(100):
        save(tmp_path / "DIV2K" / "DIV2K_valid_HR" / f"{801 + i:04d}.png", rgb(4, 4))
    ds = resolve_dataset("div2k-val", 2, data_root=tmp_path)
    assert ds.name == "DIV2K-val" and len(ds) == 100 and ds.names[0] == "0801.png"


def test_resolve_path_and_embedded(tmp_path: Path) -> None:
    save(tmp_path / "x" / "a.png", rgb(6, 6))
    ds = resolve_dataset(str(tmp_path / "x"), 3)
    assert ds.name == "x" and len(ds) == 1
    assert resolve_dataset(tmp_path / "x", 2).scale == 2
    assert resolve_dataset("embedded", 2).name == "embedded"
    assert resolve_dataset("Embedded:train", 2).name == "embedded-train"
    assert len(resolve_dataset("embedded:val", 2)) == len(EMBEDDED_SPLIT["val"])


def write_manifest(manifest_dir: Path, key: str, folder: Path) -> None:
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}"
        for p in sorted(folder.rglob("*.png"))
    ]
    manifest_dir.mkdir(parents=True, exist_ok=True)
    (manifest_dir / f"{key}.sha256").write_text("\n".join(lines) + "\n")


def test_check_dataset_checksums(tmp_path: Path) -> None:
    root, manifests = tmp_path / "root", tmp_path / "manifests"
    folder = fake_set(root, "Set5", 5)
    write_manifest(manifests, "set5", folder)
    report = check_dataset("SET5", data_root=root, manifest_dir=manifests)
    assert report.ok and report.checksum_ok is True and report.problems == []
    assert (report.key, report.found, report.expected, report.path) == ("set5", 5, 5, folder)

    save(folder / "HR" / "im2.png", rgb(8, 12, seed=99))  # a different copy of one image
    (folder / "HR" / "im4.png").unlink()
    report = check_dataset("set5", data_root=root, manifest_dir=manifests)
    assert not report.ok and report.checksum_ok is False and report.found == 4
    assert "expected 5 HR images" in report.problems[0]
    assert any("checksum mismatch: HR/im2.png" in p for p in report.problems)
    assert any("missing: HR/im4.png" in p for p in report.problems)


def test_check_dataset_no_manifest_and_missing(tmp_path: Path) -> None:
    fake_set(tmp_path, "Set14", 14)
    report = check_dataset("set14", data_root=tmp_path, manifest_dir=tmp_path / "none")
    assert report.ok and report.checksum_ok is None and report.found == 14
    missing = check_dataset("urban100", data_root=tmp_path)
    assert not missing.ok and missing.found == 0 and missing.checksum_ok is None
    assert "Urban100 not found" in missing.problems[0]
    with pytest.raises(DatasetError, match="known names are set5, set14"):
        check_dataset("set99", data_root=tmp_path)


def test_list_datasets(tmp_path: Path) -> None:
    fake_set(tmp_path, "Set5", 5)
    fake_set(tmp_path, "Set14", 3)
    rows = {r["key"]: r for r in list_datasets(tmp_path)}
    assert list(rows) == list(DATASETS)
    assert rows["set5"]["present"] and rows["set5"]["complete"] and rows["set5"]["found"] == 5
    assert rows["set14"]["present"] and not rows["set14"]["complete"]
    assert rows["b100"]["found"] == 0 and not rows["b100"]["present"]
    assert rows["set5"]["path"] == str(tmp_path / "Set5" / "HR")
    assert rows["div2k"]["path"] == str(tmp_path / "DIV2K" / "DIV2K_train_HR")


# ----------------------------------------------------------------------------------------------
# Embedded set
# ----------------------------------------------------------------------------------------------


def test_embedded_split_fixed_and_disjoint() -> None:
    assert EMBEDDED_SPLIT["val"] == (
        "camera.png",
        "chelsea.png",
        "coffee.png",
        "grace_hopper.jpg",
        "page.png",
    )
    assert len(EMBEDDED_SPLIT["train"]) == 11 and "astronaut.png" in EMBEDDED_SPLIT["train"]
    assert not set(EMBEDDED_SPLIT["train"]) & set(EMBEDDED_SPLIT["val"])


def test_embedded_images_shapes_and_copies() -> None:
    imgs = embedded_images()
    assert list(imgs) == [*EMBEDDED_SPLIT["train"], *EMBEDDED_SPLIT["val"]]
    for img in imgs.values():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert imgs["astronaut.png"].shape == (512, 512, 3)
    assert imgs["grace_hopper.jpg"].shape == (600, 512, 3)
    cam = imgs["camera.png"]  # grayscale source: three equal channels
    assert (cam[:, :, 0] == cam[:, :, 1]).all() and (cam[:, :, 1] == cam[:, :, 2]).all()
    val = embedded_images("val")
    assert list(val) == list(EMBEDDED_SPLIT["val"])
    val["coffee.png"][:] = 0  # callers get copies: the cache is unharmed
    again = embedded_images("val")["coffee.png"]
    np.testing.assert_array_equal(again, imgs["coffee.png"])
    assert again.any()
    with pytest.raises(DatasetError, match="Unknown embedded split 'test'"):
        embedded_images("test")


def test_embedded_dataset_pairs_deterministic() -> None:
    ds = embedded_dataset(4)
    assert repr(ds) == "PairedDataset(name='embedded', scale=4, images=5, lr_source='bicubic')"
    assert ds.names == EMBEDDED_SPLIT["val"]
    shapes = {p.name: (p.hr.shape, p.lr.shape) for p in ds}
    assert shapes["page.png"] == ((188, 384, 3), (47, 96, 3))  # 191 rows modcropped to 188
    assert shapes["chelsea.png"] == ((300, 448, 3), (75, 112, 3))
    first, second = ds[0], embedded_dataset(4)[0]
    np.testing.assert_array_equal(first.lr, second.lr)
    first.lr[:] = 0  # copies again
    assert embedded_dataset(4)[0].lr.any()
    assert embedded_dataset(2, split="train").name == "embedded-train"
    with pytest.raises(DatasetError):
        embedded_dataset(2, split="all")


def test_import_is_light() -> None:
    code = (
        "import sys, sr_kit.data; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'skimage') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------------------------
# With the shared benchmark copies (../shared); skipped when absent
# ----------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_shared_set5_with_lr_files(shared: Path) -> None:
    ds = resolve_dataset("set5", 4, data_root=shared)
    assert len(ds) == 5 and ds.lr_source == "files" and ds.name == "Set5"
    assert ds.names == ("baby.png", "bird.png", "butterfly.png", "head.png", "woman.png")
    for pair in ds:
        h, w = pair.hr.shape[:2]
        assert h % 4 == 0 and w % 4 == 0
        assert pair.lr.shape == (h // 4, w // 4, 3)
    assert ds[0].hr.shape == (512, 512, 3)


@pytest.mark.shared
def test_shared_set14_modcrop_and_gray(shared: Path) -> None:
    ds = resolve_dataset("Set14", 3, data_root=shared)
    assert len(ds) == 14 and ds.lr_source == "files"
    pairs = {p.name: p for p in ds}
    assert pairs["ppt3.png"].hr.shape == (654, 528, 3)  # 656x529 cropped to multiples of 3
    assert pairs["ppt3.png"].lr.shape == (218, 176, 3)
    bridge = pairs["bridge.png"]  # stored as 8-bit grayscale
    assert (bridge.hr[:, :, 0] == bridge.hr[:, :, 2]).all()
    assert (bridge.lr[:, :, 0] == bridge.lr[:, :, 1]).all()


@pytest.mark.shared
@pytest.mark.parametrize("key", ["set5", "set14"])
def test_shared_checksums(shared: Path, key: str) -> None:
    report = check_dataset(key, data_root=shared)
    assert report.ok, report.problems
    assert report.checksum_ok is True and report.found == report.expected


@pytest.mark.shared
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shared_generated_lr_matches_files(shared: Path, scale: int) -> None:
    made = image_folder(shared / "Set5" / "HR", scale)  # layout (b): LR from the kit's bicubic
    assert made.lr_source == "bicubic"
    close = total = 0
    for pair in made:
        stem = Path(pair.name).stem
        ref = read_image(shared / "Set5" / "LR_bicubic" / f"X{scale}" / f"{stem}x{scale}.png")
        assert pair.lr.shape == ref.shape
        diff = np.abs(pair.lr.astype(np.int16) - ref.astype(np.int16))
        close += int((diff <= 1).sum())
        total += diff.size
    assert close / total >= 0.999
