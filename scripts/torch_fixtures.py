#!/usr/bin/env python3
"""Write PyTorch reference fixtures for partita's float golden model.

Run once, with torch, numpy and safetensors installed:
    python3 scripts/torch_fixtures.py tests/fixtures/torch
The fixtures are committed, so the tests need no Python. Each case has a plan, a
safetensors state_dict, an input .npy and torch's output .npy (float64).
"""
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

torch.set_default_dtype(torch.float64)
out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/torch"
os.makedirs(out, exist_ok=True)

LSTM_CASES = [
    # name, input, hidden, layers, seq, batch (None = unbatched), prefix, weight dtype
    ("lstm_a", 5, 7, 1, 6, None, "", torch.float64),
    ("lstm_b", 8, 16, 2, 10, 3, "encoder.lstm.", torch.float64),
    ("lstm_c", 3, 33, 2, 4, 2, "", torch.float64),
    ("lstm_d", 16, 32, 1, 12, None, "", torch.float32),
]

for i, (name, isz, hsz, layers, seq, batch, prefix, wdtype) in enumerate(LSTM_CASES):
    torch.manual_seed(100 + i)
    lstm = torch.nn.LSTM(isz, hsz, layers, batch_first=True)
    with torch.no_grad():
        for p in lstm.parameters():  # larger than default init, to exercise saturation
            p.mul_(2.0)
            p.copy_(p.to(wdtype).to(torch.float64))
    shape = (batch, seq, isz) if batch else (seq, isz)
    x = torch.randn(*shape)
    with torch.no_grad():
        y, _ = lstm(x)
    sd = {prefix + k: v.to(wdtype).contiguous() for k, v in lstm.state_dict().items()}
    save_file(sd, f"{out}/{name}.safetensors")
    np.save(f"{out}/{name}_x.npy", x.numpy())
    np.save(f"{out}/{name}_y.npy", y.numpy())
    with open(f"{out}/{name}.toml", "w") as f:
        f.write(
            f'# torch.nn.LSTM({isz}, {hsz}, {layers}) reference, written by scripts/torch_fixtures.py\n'
            f'[model]\nkind = "lstm"\ninput_size = {isz}\nhidden_size = {hsz}\nnum_layers = {layers}\n'
            f'weights = "{name}.safetensors"\nweights_prefix = "{prefix}"\n'
        )

torch.manual_seed(7)
cnn = torch.nn.Sequential(
    torch.nn.Conv2d(2, 4, 3, padding=1),
    torch.nn.ReLU(),
    torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(4, 6, 3, stride=2),
    torch.nn.ReLU(),
    torch.nn.Flatten(),
    torch.nn.Linear(6 * 2 * 2, 5),
)
x = torch.randn(3, 2, 10, 10)
with torch.no_grad():
    y = cnn(x)
save_file({k: v.contiguous() for k, v in cnn.state_dict().items()}, f"{out}/cnn_a.safetensors")
np.save(f"{out}/cnn_a_x.npy", x.numpy())
np.save(f"{out}/cnn_a_y.npy", y.numpy())
with open(f"{out}/cnn_a.toml", "w") as f:
    f.write(
        "# nn.Sequential(Conv2d(2,4,3,padding=1), ReLU, MaxPool2d(2), Conv2d(4,6,3,stride=2), ReLU,\n"
        "#               Flatten, Linear(24, 5)), written by scripts/torch_fixtures.py\n"
        '[model]\nkind = "cnn"\ninput_shape = [2, 10, 10]\nweights = "cnn_a.safetensors"\n\n'
        '[[model.layer]]\ntype = "conv2d"\nout_channels = 4\nkernel = 3\npadding = 1\n\n'
        '[[model.layer]]\ntype = "relu"\n\n'
        '[[model.layer]]\ntype = "maxpool"\nkernel = 2\n\n'
        '[[model.layer]]\ntype = "conv2d"\nout_channels = 6\nkernel = 3\nstride = 2\n\n'
        '[[model.layer]]\ntype = "relu"\n\n'
        '[[model.layer]]\ntype = "flatten"\n\n'
        '[[model.layer]]\ntype = "dense"\nout_features = 5\n'
    )
print("wrote fixtures to", out)
