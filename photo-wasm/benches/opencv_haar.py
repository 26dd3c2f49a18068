#!/usr/bin/env python3
"""OpenCV's Haar frontal-face cascade on the shared photos, beside photo-wasm's BlazeFace.

python3 opencv_haar.py PHOTOS_DIR NATIVE_DETECTIONS_JSON
Needs `opencv-python-headless<5` (OpenCV 5 dropped the cascades). Same protocol (CPU time, one thread) as
shared/reference/face-detectors.md: file read, decode, area downscale to a long side of 1000 px,
detection; the face verdict per labels.json; agreement = same face count and every Haar face
overlapping one of ours (IoU > 0.3).
"""
import json
import statistics
import sys
import time
from pathlib import Path

import cv2


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter) if inter else 0.0


def verdict(label, count):
    return count == label["faces"] if label["frontal"] else count != 1


def main():
    photos, native_path = Path(sys.argv[1]), Path(sys.argv[2])
    labels = json.loads((photos / "labels.json").read_text())
    native = json.loads(native_path.read_text())
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    cv2.setNumThreads(1)
    times, haar_ok, ours_ok, agree = [], 0, 0, 0
    for name, label in sorted(labels.items()):
        runs = []
        for _ in range(3):
            t = time.process_time()
            img = cv2.imread(str(photos / name))
            f = min(1.0, 1000 / max(img.shape[:2]))
            small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else img
            grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
            found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
            runs.append((time.process_time() - t) * 1000)
        times.append(statistics.median(runs))
        haar = [[v / f for v in box] for box in found]
        ours = [face[:4] for face in native[name]["faces"] if face[4]]  # frontal faces
        haar_ok += verdict(label, len(haar))
        ours_ok += verdict(label, len(ours))
        same = len(haar) == len(ours) and all(any(iou(h, o) > 0.3 for o in ours) for h in haar)
        agree += same
        if not same:
            print(f"  differ: {name}: Haar {len(haar)} faces, photo-wasm {len(ours)}")
    n = len(labels)
    print(json.dumps({
        "haar_verdict": f"{haar_ok}/{n}",
        "photo_wasm_verdict": f"{ours_ok}/{n}",
        "agreement": f"{agree}/{n}",
        "haar_median_ms": round(statistics.median(times), 2),
        "photo_wasm_median_cpu_ms": native.get("median_cpu_ms"),
    }))


if __name__ == "__main__":
    main()
