#!/usr/bin/env python3
"""Export a PyTorch model to partita in one call: its weights as safetensors and a complete
plan whose [model] section describes it, so nobody writes layer lists by hand.

Command line:
    python3 scripts/torch_export.py MODEL --out DIR [--name NAME] [--input-shape C,H,W]
MODEL is `file.py:attr` (a Python file and the name of an nn.Module in it, or of a function
that returns one) or a file written by torch.save(module). CNNs need --input-shape.

As a library (with scripts/ on sys.path):
    from torch_export import export
    export(model, "out", name="net", input_shape=(1, 28, 28))

Takes an nn.Sequential of Conv2d, ReLU, MaxPool2d, Flatten and Linear layers, or an nn.LSTM.
Writes DIR/NAME.safetensors (the module's state_dict, float32; a layer without a bias gets a
zero one) and DIR/NAME.toml (the plan: [model] with every layer, the rest at partita's
defaults). Anything partita cannot express is refused with the layer and the reason, exit 2.
Needs torch and numpy.
"""
import argparse
import json
import os
import struct
import sys


class ExportError(Exception):
    """A module partita cannot take, with the reason."""


def _pair(v, what, layer):
    if isinstance(v, int):
        return v
    if isinstance(v, (tuple, list)) and len(v) == 2 and v[0] == v[1]:
        return int(v[0])
    raise ExportError(f"{layer}: {what} {v!r}; partita takes square {what}s (one number)")


def _save_safetensors(path, tensors):
    """The safetensors format: an 8-byte header length, a JSON header, the raw data."""
    import numpy as np

    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k].detach().cpu().float().numpy(), dtype="<f4")
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def _cnn(model, input_shape):
    import torch
    from torch import nn

    if input_shape is None or len(input_shape) != 3:
        raise ExportError("a CNN needs --input-shape C,H,W (one input map, no batch axis)")
    layers, tensors = [], {}
    for i, m in enumerate(model):
        where = f"layer {i} ({type(m).__name__})"
        if isinstance(m, nn.Conv2d):
            if m.groups != 1:
                raise ExportError(f"{where}: groups={m.groups}; partita's conv2d has groups = 1")
            if _pair(m.dilation, "dilation", where) != 1:
                raise ExportError(f"{where}: dilation {m.dilation}; partita takes dilation 1")
            if isinstance(m.padding, str):
                if m.padding != "valid":
                    raise ExportError(f"{where}: padding='{m.padding}'; give a number")
                pad = 0
            else:
                pad = _pair(m.padding, "padding", where)
            if m.padding_mode != "zeros":
                raise ExportError(f"{where}: padding_mode='{m.padding_mode}'; partita pads with zeros")
            layers.append({
                "type": "conv2d", "out_channels": m.out_channels,
                "kernel": _pair(m.kernel_size, "kernel", where),
                "stride": _pair(m.stride, "stride", where), "padding": pad,
                "_doc": repr(m),
            })
            tensors[f"{i}.weight"] = m.weight
            tensors[f"{i}.bias"] = m.bias if m.bias is not None else torch.zeros(m.out_channels)
        elif isinstance(m, nn.Linear):
            layers.append({"type": "dense", "out_features": m.out_features, "_doc": repr(m)})
            tensors[f"{i}.weight"] = m.weight
            tensors[f"{i}.bias"] = m.bias if m.bias is not None else torch.zeros(m.out_features)
        elif isinstance(m, nn.ReLU):
            layers.append({"type": "relu", "_doc": repr(m)})
        elif isinstance(m, nn.MaxPool2d):
            if m.ceil_mode or m.return_indices:
                raise ExportError(f"{where}: ceil_mode/return_indices; partita's max-pool floors and returns values")
            if _pair(m.padding, "padding", where) != 0 or _pair(m.dilation, "dilation", where) != 1:
                raise ExportError(f"{where}: padding or dilation; partita's max-pool has neither")
            k = _pair(m.kernel_size, "kernel", where)
            s = _pair(m.stride if m.stride is not None else m.kernel_size, "stride", where)
            layers.append({"type": "maxpool", "kernel": k, "stride": s, "_doc": repr(m)})
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ExportError(f"{where}: start_dim={m.start_dim}, end_dim={m.end_dim}; partita flattens a whole map (start_dim 1)")
            layers.append({"type": "flatten", "_doc": repr(m)})
        else:
            raise ExportError(
                f"{where} is not supported: partita's CNN layers are Conv2d, ReLU, MaxPool2d, Flatten and Linear"
            )
    # The stack must run on the input shape (a Linear needs a Flatten before it, as in torch).
    with torch.no_grad():
        try:
            model(torch.zeros(1, *input_shape))
        except Exception as e:  # noqa: BLE001 - torch's own message says what is wrong
            raise ExportError(f"the model does not run on input shape {tuple(input_shape)}: {e}")
    head = {"kind": "cnn", "input_shape": list(input_shape)}
    return head, layers, tensors


def _lstm(m):
    import torch

    if m.bidirectional:
        raise ExportError("nn.LSTM: bidirectional=True; partita's LSTM runs one direction")
    if getattr(m, "proj_size", 0):
        raise ExportError(f"nn.LSTM: proj_size={m.proj_size}; partita's LSTM has no projection")
    tensors = {}
    for k, v in m.state_dict().items():
        tensors[k] = v
    if not m.bias:
        for l in range(m.num_layers):
            tensors[f"bias_ih_l{l}"] = torch.zeros(4 * m.hidden_size)
            tensors[f"bias_hh_l{l}"] = torch.zeros(4 * m.hidden_size)
    head = {"kind": "lstm", "input_size": m.input_size, "hidden_size": m.hidden_size,
            "num_layers": m.num_layers}
    return head, [], tensors


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def export(model, out_dir, name="model", input_shape=None, source=None):
    """Write OUT_DIR/NAME.safetensors and OUT_DIR/NAME.toml; returns the plan's path."""
    from torch import nn

    if isinstance(model, nn.LSTM):
        head, layers, tensors = _lstm(model)
    elif isinstance(model, nn.Sequential):
        head, layers, tensors = _cnn(model, input_shape)
    else:
        raise ExportError(
            f"{type(model).__name__} is not supported: give an nn.Sequential (Conv2d, ReLU, MaxPool2d, Flatten, Linear) or an nn.LSTM"
        )
    os.makedirs(out_dir, exist_ok=True)
    _save_safetensors(os.path.join(out_dir, f"{name}.safetensors"), tensors)
    lines = [
        f"# Written by scripts/torch_export.py{' from ' + source if source else ''}: the [model]",
        "# section of this module; everything else is at partita's defaults. Run",
        "# `partita calibrate` on sample inputs to fit the fixed-point formats to its values.",
        "[model]",
    ]
    for k, v in head.items():
        lines.append(f"{k} = {_toml_value(v)}")
    lines.append(f'weights = "{name}.safetensors"')
    for layer in layers:
        lines.append("")
        lines.append(f"[[model.layer]]          # {layer['_doc']}")
        for k, v in layer.items():
            if k != "_doc":
                lines.append(f"{k} = {_toml_value(v)}")
    plan = os.path.join(out_dir, f"{name}.toml")
    tmp = plan + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, plan)
    return plan


def _load(spec):
    import importlib.util

    import torch

    if ":" in spec:
        path, attr = spec.rsplit(":", 1)
        if not os.path.isfile(path):
            raise ExportError(f"`{path}` is not a file; MODEL is file.py:attr or a torch.save file")
        mod_spec = importlib.util.spec_from_file_location("partita_user_model", path)
        mod = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(mod)
        if not hasattr(mod, attr):
            raise ExportError(f"`{path}` has no `{attr}`")
        obj = getattr(mod, attr)
        return obj() if callable(obj) and not isinstance(obj, torch.nn.Module) else obj
    if not os.path.isfile(spec):
        raise ExportError(f"`{spec}` is not a file; MODEL is file.py:attr or a torch.save file")
    return torch.load(spec, weights_only=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="file.py:attr, or a torch.save file")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--name", default="model", help="file stem (default: model)")
    p.add_argument("--input-shape", help="C,H,W of one input map (CNNs)")
    a = p.parse_args(argv)
    try:
        shape = None
        if a.input_shape:
            try:
                shape = tuple(int(x) for x in a.input_shape.split(","))
            except ValueError:
                raise ExportError(f"--input-shape `{a.input_shape}`: give C,H,W as three whole numbers")
        import torch  # noqa: F401 - a clear message if torch is missing

        model = _load(a.model)
        model.eval()
        plan = export(model, a.out, name=a.name, input_shape=shape, source=a.model)
    except ImportError as e:
        print(f"error: {e}; install torch and numpy (bash scripts/ensure-tools.sh torch)", file=sys.stderr)
        return 2
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {plan} and {os.path.splitext(plan)[0]}.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
