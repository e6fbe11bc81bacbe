"""ReLU MLPs (Linear / ReLU / Flatten chains) read from and written to ONNX files.

Fast-SNN conversion (:mod:`.fastsnn`) starts from a ReLU network trained
anywhere: :func:`relu_mlp_from_onnx` reads Gemm, MatMul+Add, Relu, Flatten
and Identity/Dropout chains into an ``nn.Sequential``; :func:`write_relu_onnx`
writes one (Gemm with transB=1, Relu), float32. The ``onnx`` package is an
optional dependency (``pip install spikedeploy[onnx]``).
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SpikedeployError, first_line


def relu_mlp_from_onnx(path) -> nn.Sequential:
    """Read a ReLU MLP from an ONNX file (Gemm / MatMul+Add / Relu / Flatten / Identity)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:   # pragma: no cover - onnx is a declared dependency
        raise SpikedeployError("reading ONNX files needs the 'onnx' package (pip install onnx)")
    path = Path(path)
    if not path.is_file():
        raise SpikedeployError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as exc:   # noqa: BLE001 - onnx raises many types for bad files
        raise SpikedeployError(f"{path}: not a valid ONNX model ({type(exc).__name__}: "
                               f"{first_line(exc)})")
    graph = proto.graph
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).astype(np.float64)
    inputs = [i.name for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise SpikedeployError(f"{path}: expected one data input, found {inputs}")
    current = inputs[0]
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    counts = {"fc": 0, "relu": 0, "flatten": 0}

    def add(kind, module):
        counts[kind] += 1
        layers[f"{kind}{counts[kind]}"] = module

    def linear(weight, bias):
        fc = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            fc.weight.copy_(torch.from_numpy(weight))
            if bias is not None:
                fc.bias.copy_(torch.from_numpy(np.broadcast_to(bias, (weight.shape[0],)).copy()))
        return fc

    def attrs(node):
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    for node in graph.node:
        if node.op_type == "Constant":
            continue
        where = f"{path}: node '{node.name or node.output[0]}' ({node.op_type})"
        data_inputs = [i for i in node.input if i and i not in consts]
        if data_inputs != [current]:
            raise SpikedeployError(f"{where}: only a chain of layers is supported")
        if node.op_type == "Gemm":
            a = attrs(node)
            if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                raise SpikedeployError(f"{where}: only Gemm with transA=0, alpha=beta=1")
            w = consts[node.input[1]]
            w = w if a.get("transB", 0) else w.T
            add("fc", linear(w, consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None))
        elif node.op_type == "MatMul":
            add("fc", linear(consts[node.input[1]].T, None))
        elif node.op_type == "Add":
            last = next(reversed(layers.values()), None)
            bias_name = next(i for i in node.input if i in consts)
            if not isinstance(last, nn.Linear) or last.bias is not None:
                raise SpikedeployError(f"{where}: Add must follow a MatMul (its bias)")
            name = next(reversed(layers))
            layers[name] = linear(last.weight.detach().numpy().astype(np.float64), consts[bias_name])
        elif node.op_type == "Relu":
            add("relu", nn.ReLU())
        elif node.op_type == "Flatten":
            if attrs(node).get("axis", 1) != 1:
                raise SpikedeployError(f"{where}: only Flatten with axis=1")
            add("flatten", nn.Flatten())
        elif node.op_type in ("Identity", "Dropout"):
            pass
        else:
            raise SpikedeployError(f"{where}: operator not supported for Fast-SNN conversion "
                                   "(Gemm, MatMul, Add, Relu, Flatten, Identity, Dropout)")
        current = node.output[0]
    if not layers:
        raise SpikedeployError(f"{path}: the ONNX graph has no layers")
    return nn.Sequential(layers)


def write_relu_onnx(model: nn.Sequential, path, input_size: int) -> Path:
    """Write a Linear/ReLU/Flatten network as ONNX (Gemm with transB=1, Relu), float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not isinstance(model, nn.Sequential):
        raise SpikedeployError(f"expected an nn.Sequential ReLU network, got {type(model).__name__}")
    nodes, inits, current = [], [], "input"
    for name, module in model.named_children():
        if isinstance(module, (nn.Identity, nn.Dropout)):
            continue
        out = f"{name}_out"
        if isinstance(module, nn.Linear):
            w = module.weight.detach().numpy().astype(np.float32)
            b = (module.bias.detach().numpy() if module.bias is not None
                 else np.zeros(w.shape[0])).astype(np.float32)
            inits += [numpy_helper.from_array(w, f"{name}.weight"),
                      numpy_helper.from_array(b, f"{name}.bias")]
            nodes.append(helper.make_node("Gemm", [current, f"{name}.weight", f"{name}.bias"], [out],
                                          name=name, transB=1))
        elif isinstance(module, nn.ReLU):
            nodes.append(helper.make_node("Relu", [current], [out], name=name))
        elif isinstance(module, nn.Flatten):
            nodes.append(helper.make_node("Flatten", [current], [out], name=name, axis=1))
        else:
            raise SpikedeployError(f"layer '{name}': only Linear, ReLU, Flatten are written to ONNX")
        current = out
    out_size = [m for m in model if isinstance(m, nn.Linear)][-1].out_features
    graph = helper.make_graph(
        nodes, "relu_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", input_size])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, ["N", out_size])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(proto)
    path = Path(path)
    onnx.save(proto, str(path))
    return path
