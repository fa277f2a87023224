#!/usr/bin/env python3
"""Train a small CNN on scikit-learn's 8x8 digits with numpy alone, and write it as partita
fixtures: the state_dict as safetensors (nn.Sequential keys), the plan, calibration and test
images (.npy) and the test labels.

    pip install numpy scikit-learn
    python3 scripts/train_digits_cnn.py tests/fixtures/digits

The network is what this nn.Sequential computes (cross-correlation, zero padding, floor-mode
max-pool, Flatten in (C, H, W) order):
    Conv2d(1, 8, 3, padding=1), ReLU, MaxPool2d(2),
    Conv2d(8, 16, 3, padding=1), ReLU, MaxPool2d(2), Flatten, Linear(64, 10)
Inputs are the digits' 0..16 pixel values as given (not scaled), so activations and logits
grow well past 8: a plan with [quant]'s defaults saturates, and `partita calibrate` fixes it.
Deterministic: fixed seeds, float64 training, float32 weights written.
"""
import json
import os
import struct
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/digits"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1234)

digits = load_digits()
x = digits.images.astype(np.float64)[:, None, :, :]  # (n, 1, 8, 8), values 0..16
y = digits.target.astype(np.int64)
x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)


def im2col(a, k, pad):
    """(n, c, h, w) -> (n, h*w, c*k*k) windows of a stride-1 'same' conv."""
    n, c, h, w = a.shape
    p = np.pad(a, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, h, w, c, k, k))
    for dy in range(k):
        for dx in range(k):
            cols[:, :, :, :, dy, dx] = p[:, :, dy:dy + h, dx:dx + w].transpose(0, 2, 3, 1)
    return cols.reshape(n, h * w, c * k * k)


def col2im(g, shape, k, pad):
    n, c, h, w = shape
    g = g.reshape(n, h, w, c, k, k)
    p = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for dy in range(k):
        for dx in range(k):
            p[:, :, dy:dy + h, dx:dx + w] += g[:, :, :, :, dy, dx].transpose(0, 3, 1, 2)
    return p[:, :, pad:pad + h, pad:pad + w]


def conv_fwd(a, w, b):
    n, c, h, wd = a.shape
    o = w.shape[0]
    cols = im2col(a, 3, 1)
    z = cols @ w.reshape(o, -1).T + b
    return z.reshape(n, h, wd, o).transpose(0, 3, 1, 2), cols


def conv_bwd(g, cols, a_shape, w):
    n, o, h, wd = g.shape
    g2 = g.transpose(0, 2, 3, 1).reshape(n, h * wd, o)
    dw = np.einsum("npo,npk->ok", g2, cols).reshape(w.shape)
    db = g2.sum(axis=(0, 1))
    dcols = g2 @ w.reshape(o, -1)
    return col2im(dcols, a_shape, 3, 1), dw, db


def pool_fwd(a):
    n, c, h, w = a.shape
    r = a.reshape(n, c, h // 2, 2, w // 2, 2)
    m = r.max(axis=(3, 5))
    mask = r == m[:, :, :, None, :, None]
    # one winner per window (the first), as the gradient of max
    flat = mask.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    first = np.zeros_like(flat)
    idx = flat.argmax(axis=-1)
    np.put_along_axis(first, idx[..., None], True, axis=-1)
    return m, first


def pool_bwd(g, first, shape):
    n, c, h, w = shape
    d = first * g[..., None]
    return d.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def init(shape, fan_in):
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


params = {
    "0.weight": init((8, 1, 3, 3), 9), "0.bias": init((8,), 9),
    "3.weight": init((16, 8, 3, 3), 72), "3.bias": init((16,), 72),
    "7.weight": init((10, 64), 64), "7.bias": init((10,), 64),
}


def forward(xb, keep=False):
    z1, c1 = conv_fwd(xb, params["0.weight"], params["0.bias"])
    a1 = np.maximum(z1, 0)
    p1, m1 = pool_fwd(a1)
    z2, c2 = conv_fwd(p1, params["3.weight"], params["3.bias"])
    a2 = np.maximum(z2, 0)
    p2, m2 = pool_fwd(a2)
    f = p2.reshape(len(xb), -1)
    logits = f @ params["7.weight"].T + params["7.bias"]
    if keep:
        return logits, (xb, z1, c1, a1, p1, m1, z2, c2, a2, p2, m2, f)
    return logits


def backward(logits, cache, yb):
    xb, z1, c1, a1, p1, m1, z2, c2, a2, p2, m2, f = cache
    n = len(yb)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    g = prob
    g[np.arange(n), yb] -= 1
    g /= n
    grads = {"7.weight": g.T @ f, "7.bias": g.sum(0)}
    gf = (g @ params["7.weight"]).reshape(p2.shape)
    ga2 = pool_bwd(gf, m2, a2.shape) * (z2 > 0)
    gp1, grads["3.weight"], grads["3.bias"] = conv_bwd(ga2, c2, p1.shape, params["3.weight"])
    ga1 = pool_bwd(gp1, m1, a1.shape) * (z1 > 0)
    _, grads["0.weight"], grads["0.bias"] = conv_bwd(ga1, c1, xb.shape, params["0.weight"])
    return grads


m = {k: np.zeros_like(v) for k, v in params.items()}
v = {k: np.zeros_like(v) for k, v in params.items()}
lr, b1, b2, t = 2e-3, 0.9, 0.999, 0
for epoch in range(40):
    order = rng.permutation(len(x_tr))
    for i in range(0, len(order), 32):
        bi = order[i:i + 32]
        logits, cache = forward(x_tr[bi], keep=True)
        grads = backward(logits, cache, y_tr[bi])
        t += 1
        for k in params:
            m[k] = b1 * m[k] + (1 - b1) * grads[k]
            v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
            mh, vh = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
            params[k] -= lr * mh / (np.sqrt(vh) + 1e-8)

# Written as float32, as torch.save of a float32 model would hold them; accuracy is measured
# with those float32 values.
params = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}
acc = (forward(x_te).argmax(1) == y_te).mean()
largest = np.abs(forward(x_te)).max()
print(f"test accuracy {acc:.4f} on {len(y_te)} images; largest |logit| {largest:.2f}")


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k], dtype="<f4")
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


save_safetensors(f"{out}/digits_cnn.safetensors", params)
np.save(f"{out}/digits_test_x.npy", x_te.astype(np.float32))
np.save(f"{out}/digits_test_y.npy", y_te)
np.save(f"{out}/digits_calib_x.npy", x_tr[:64].astype(np.float32))
with open(f"{out}/README.md", "w") as fh:
    fh.write(
        "# The digits CNN\n\n"
        "Written by `python3 scripts/train_digits_cnn.py tests/fixtures/digits` (numpy and\n"
        "scikit-learn; no torch). `digits_cnn.toml` is the plan with `[quant]`'s defaults;\n"
        f"float test accuracy {acc:.4f} on the {len(y_te)} held-out images (`digits_test_x.npy`,\n"
        f"labels `digits_test_y.npy`); largest |logit| {largest:.2f}. `digits_calib_x.npy`\n"
        "holds 64 training images for `partita calibrate`.\n"
    )
