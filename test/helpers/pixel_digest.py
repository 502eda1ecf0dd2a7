#!/usr/bin/env python3
"""The oracle of the compression-at-rest tests (pydicom, GDCM for compressed pixel data).

Usage: pixel_digest.py FILE... ; prints one JSON object per file on stdout, one a line:
  {"file", "transferSyntax", "pixels": sha256 of the pixel values (little endian, frame by frame,
   colour by pixel) or null when pydicom cannot decode them, "shape", "attributes": sha256 of every
   data set element but the pixel data, group lengths and the attributes a transfer syntax governs
   (Photometric Interpretation, Planar Configuration, the offset tables)}
"""
import hashlib
import json
import sys
import warnings

import pydicom

warnings.simplefilter("ignore")

GOVERNED = {0x00280004, 0x00280006, 0x7FE00001, 0x7FE00002, 0x7FE00010}


def attributes_digest(ds):
    h = hashlib.sha256()
    for elem in ds.iterall():
        tag = int(elem.tag)
        if tag in GOVERNED or (tag & 0xFFFF) == 0 or (tag >> 16) == 0x0002:
            continue
        # An ambiguous VR resolved by pydicom is an enum member, a read one a string.
        vr = getattr(elem.VR, "value", elem.VR)
        if vr == "SQ":
            h.update(f"{tag:08X} SQ {len(elem.value)}\n".encode())
            continue
        h.update(f"{tag:08X} {vr} {elem.value!r}\n".encode())
    return h.hexdigest()


def pixel_digest(ds):
    try:
        arr = ds.pixel_array
    except Exception as e:  # noqa: BLE001 (reported, not raised: the caller decides)
        return None, str(e)
    if arr.dtype.itemsize > 1:
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return hashlib.sha256(arr.tobytes()).hexdigest(), list(arr.shape)


def main():
    for path in sys.argv[1:]:
        ds = pydicom.dcmread(path)
        digest, shape = pixel_digest(ds)
        print(
            json.dumps(
                {
                    "file": path,
                    "transferSyntax": str(ds.file_meta.TransferSyntaxUID),
                    "pixels": digest,
                    "shape": shape,
                    "photometric": str(ds.get("PhotometricInterpretation", "")),
                    "attributes": attributes_digest(ds),
                }
            )
        )


if __name__ == "__main__":
    main()
