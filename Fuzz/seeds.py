#!/usr/bin/env python3
"""Writes small valid seed inputs for the fuzz targets: fuzz/seeds.py OUTDIR (makes OUTDIR/<target>/)."""
import json, os, struct, sys

out = sys.argv[1]
for name in ("safetensors", "npy", "config"):
    os.makedirs(os.path.join(out, name), exist_ok=True)

def safetensors(tensors, metadata=None):
    header, data = {}, b""
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data

f32 = lambda vals: struct.pack("<%df" % len(vals), *vals)
bf16 = lambda vals: b"".join(struct.pack("<f", v)[2:] for v in vals)
f16 = lambda vals: struct.pack("<%de" % len(vals), *vals)
seeds = {
    "f32_bf16": safetensors([("w1", "F32", [2, 3], f32([1, 2, 3, 4, 5, 6])), ("b1", "BF16", [3], bf16([1, -2, 0.5]))],
                            {"format": "pt"}),
    "f16": safetensors([("x", "F16", [2, 2], f16([1, 2, 3, 4]))]),
    "i64_empty": safetensors([("n", "I64", [1], struct.pack("<q", 7)), ("e", "F32", [0, 4], b"")]),
    "empty": safetensors([]),
}
for k, v in seeds.items():
    open(os.path.join(out, "safetensors", k), "wb").write(v)

def npy(descr, shape, payload, major=1):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, "(%s)" % ", ".join(map(str, shape)) if len(shape) != 1 else "(%d,)" % shape[0])
    prefix = 10 if major == 1 else 12
    pad = (64 - (prefix + len(d) + 1) % 64) % 64
    h = d.encode() + b" " * pad + b"\n"
    ln = struct.pack("<H", len(h)) if major == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([major, 0]) + ln + h + payload

npys = {
    "f4": npy("<f4", [2, 3], f32([1, 2, 3, 4, 5, 6])),
    "f2": npy("<f2", [3, 2], f16([1, 2, 3, 4, 5, 6])),
    "f8_v2": npy("<f8", [1, 2], struct.pack("<2d", 1.5, -2), major=2),
    "f4_v3_empty": npy("<f4", [0, 5], b"", major=3),
}
for k, v in npys.items():
    open(os.path.join(out, "npy", k), "wb").write(v)

# config: a valid-looking layer (byte layout follows Fuzz/config/main.swift's Reader).
def small(v): return bytes([0, v])
cfg = bytes([1]) + bytes([0, 16]) + small(32) + small(64) + small(128) + small(8) + small(2) \
    + bytes([0, 1, 0, 0, 1, 1, 0, 0, 0, 0]) + small(1) + small(128) + b"gelu_tanh"
open(os.path.join(out, "config", "valid"), "wb").write(cfg)
open(os.path.join(out, "config", "names"), "wb").write(bytes([0]) + b"\x00" * 40 + b"BF16")
