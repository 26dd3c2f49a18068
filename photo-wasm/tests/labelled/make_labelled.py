"""Builds this directory's photos from the source repositories' snapshots (see MANIFEST.md):
each resized to at most 800 px on its long side, EXIF orientation applied, JPEG quality 85.
Usage: make_labelled.py MIRRORS_DIR MATPLOTLIB_WHEEL (MIRRORS_DIR holding owner+name/repo git
directories; the wheel is matplotlib-3.9.2-cp311-*.whl from PyPI, for its sample photo)."""
import io, subprocess, sys, zipfile
from PIL import Image, ImageDraw, ImageOps

MIRRORS = sys.argv[1]
OUT = __file__.rsplit("/", 1)[0]

def source(repo, path):
    git = f"{MIRRORS}/{repo.replace('/', '+')}/repo"
    data = subprocess.run(["git", "-C", git, "show", f"HEAD:{path}"], capture_output=True, check=True).stdout
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    img.thumbnail((800, 800), Image.LANCZOS)
    return img

def save(img, name):
    img.save(f"{OUT}/{name}", "JPEG", quality=85)

# (file, repo, path)
PHOTOS = [
    *[(f"deepface-{n}.jpg", "serengil/deepface", f"tests/unit/dataset/{n}.jpg") for n in
      ["img3", "img12", "img14", "img16", "img18", "img21", "img24", "img25", "img29", "img32",
       "img33", "img61", "img6", "img8", "img9", "img50", "img51"]],
    *[(f"hivision-{n}.jpg", "Zeyi-Lin/HivisionIDPhotos", f"demo/images/{n}.jpg") for n in ["test3", "test4"]],
    ("facerec-kit-rose.jpg", "ageitgey/face_recognition", "examples/knn_examples/test/kit_with_rose.jpg"),
]
for name, repo, path in PHOTOS:
    save(source(repo, path), name)
for line in open(f"{OUT}/mask-dataset-paths.tsv"):
    name, path = line.rstrip("\n").split("\t")
    save(source("chandrikadeb7/Face-Mask-Detection", path), name)

# A portrait in a Navy officer's cap (Grace Hopper, US Navy photograph: public domain), shipped
# as matplotlib's sample data.
with zipfile.ZipFile(sys.argv[2]) as wheel:
    data = wheel.read("matplotlib/mpl-data/sample_data/grace_hopper.jpg")
hopper = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
hopper.thumbnail((800, 800), Image.LANCZOS)
save(hopper, "grace-hopper.jpg")

# Derived: dark lenses drawn over both eyes (centres from the check's own report of the source).
def lenses(src, out, eyes, radius, tint):
    img = Image.open(f"{OUT}/{src}").convert("RGB")
    d = ImageDraw.Draw(img, "RGBA")
    for x, y in eyes:
        d.ellipse([x - radius, y - radius * 0.75, x + radius, y + radius * 0.75], fill=tint)
    d.line([eyes[0][0] + radius, eyes[0][1], eyes[1][0] - radius, eyes[1][1]], fill=(20, 20, 20, 255), width=max(2, int(radius / 8)))
    save(img, out)

# Derived: cut just below the chin (no shoulders in the photo).
def cut(src, out, bottom):
    img = Image.open(f"{OUT}/{src}")
    save(img.crop((0, 0, img.width, bottom)), out)

import json
for spec in json.load(open(f"{OUT}/derived.json")):
    if spec["kind"] == "lenses":
        lenses(spec["from"], spec["file"], spec["eyes"], spec["radius"], tuple(spec["tint"]))
    else:
        cut(spec["from"], spec["file"], spec["bottom"])
