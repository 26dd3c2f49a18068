#!/usr/bin/env python3
"""Writes the golden output of MediaPipe's selfie segmentation, run by MediaPipe itself (its
Python solution, which registers the model's custom op), on a fixed synthetic 256x256 image, so a
test can check the Rust runtime against the original runtime.

Usage: python golden_selfie.py selfie-golden.bin
Needs `pip install mediapipe==0.10.21` (Python 3.11 or older).

The input (mirrored in the Rust test): RGB bytes `128 + 127 sin(x 0.05 + c) cos(y 0.04 - c / 2)`,
plus a brighter disc (a head-sized blob) so the mask is not flat. A 256x256 image is the model's
own input size, so MediaPipe neither resizes it nor the mask. The output is the mask as f32 at
every third row and column (86x86 values; 3 is odd, so all four taps of the final 2x2 transposed
convolution are covered).
"""
import sys

import mediapipe as mp
import numpy as np


def golden_input():
    y, x, c = np.meshgrid(np.arange(256), np.arange(256), np.arange(3), indexing="ij")
    v = 128 + 127 * np.sin(x * 0.05 + c) * np.cos(y * 0.04 - c / 2)
    disc = (x - 128) ** 2 + (y - 110) ** 2 < 60 ** 2
    v = np.where(disc, 200 - 20 * c, v)
    return np.floor(v).astype(np.uint8)


def main(out):
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        mask = seg.process(golden_input()).segmentation_mask
    assert mask.shape == (256, 256), mask.shape
    open(out, "wb").write(mask[::3, ::3].astype("<f4").tobytes())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
