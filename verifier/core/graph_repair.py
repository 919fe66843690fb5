"""Load-time repair and optimisation of ONNX graphs (pure: bytes in, bytes out).

The int8 block-quantized OpenCV Zoo files do not load in ONNX Runtime as
shipped (dangling weight inputs, per-tensor DequantizeLinear nodes carrying a
block size). We fold every constant DequantizeLinear/Reshape chain into fp32
weights, drop graph inputs nothing consumes, free the batch and spatial
dimensions, and rewrite per-channel PRelu into ops that stay inside ONNX
Runtime's blocked (NCHWc) layout. Output is numerically the same model.

onnx (and the ml_dtypes it loads, over half a second) is imported only when a model is repaired: the
runtime caches repaired models by SHA-256, and a process that finds its models there never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

REPAIR_VERSION = 4


@dataclass(frozen=True)
class RepairOptions:
    """Which passes to apply; all are exact (no change beyond float rounding)."""

    fold_dequantize: bool = True
    drop_dangling_inputs: bool = True
    dynamic_batch: bool = True
    dynamic_spatial: bool = False
    prelu_to_nchwc: bool = True


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int) -> np.ndarray:
    """Evaluate DequantizeLinear in numpy (per-tensor, per-axis or blocked)."""
    qf = q.astype(np.float32)
    zf = np.zeros_like(scale, dtype=np.float32) if zero is None else zero.astype(np.float32)
    if scale.ndim == 0 or scale.size == 1:
        return (qf - zf.reshape(())) * scale.reshape(()).astype(np.float32)
    axis = axis % q.ndim
    if block > 0 and scale.ndim == q.ndim:
        reps = [1] * q.ndim
        reps[axis] = block
        idx = tuple(slice(0, d) for d in q.shape)
        s = np.repeat(scale, block, axis=axis)[idx]
        z = np.repeat(zf, block, axis=axis)[idx]
        return (qf - z) * s.astype(np.float32)
    shape = [1] * q.ndim
    shape[axis] = q.shape[axis]
    return (qf - zf.reshape(shape)) * scale.reshape(shape).astype(np.float32)


def _attrs(node: onnx.NodeProto) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fold_constants(graph: onnx.GraphProto) -> None:
    """Replace DequantizeLinear (and Reshape) of constants with fp32 initializers."""
    from onnx import numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        ins = list(node.input)
        if node.op_type == "DequantizeLinear" and all(i in consts for i in ins if i):
            a = _attrs(node)
            zero = consts[ins[2]] if len(ins) > 2 and ins[2] else None
            consts[node.output[0]] = _dequantize(consts[ins[0]], consts[ins[1]], zero, a.get("axis", 1), a.get("block_size", 0))
        elif node.op_type == "Reshape" and all(i in consts for i in ins):
            consts[node.output[0]] = consts[ins[0]].reshape(consts[ins[1]].astype(np.int64))
        else:
            kept.append(node)
    used = {i for n in kept for i in n.input} | {o.name for o in graph.output}
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items() if k in used)


def _drop_dangling_inputs(graph: onnx.GraphProto) -> None:
    """Remove graph inputs no node reads, and inputs that shadow initializers."""
    used = {i for n in graph.node for i in n.input}
    inits = {i.name for i in graph.initializer}
    keep = [i for i in graph.input if i.name in used and i.name not in inits]
    del graph.input[:]
    graph.input.extend(keep)


def _free_dims(graph: onnx.GraphProto, spatial: bool) -> None:
    """Make the batch (and optionally H, W) dimensions symbolic."""
    for vi in graph.input:
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "N"
        if spatial and len(dims) == 4:
            dims[2].dim_param = "H"
            dims[3].dim_param = "W"
    for vi in graph.output:
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "N"
        if spatial and len(dims) >= 2:
            dims[1].dim_param = "A" if len(dims) == 3 else dims[1].dim_param
    del graph.value_info[:]


def _rewrite_prelu(graph: onnx.GraphProto) -> None:
    """PRelu(y) = s*y + (1-s)*Relu(y), the scalings as depthwise 1x1 convs.

    ONNX Runtime's CPU PRelu is slow and forces layout reorders around every
    call; depthwise convs, Relu and Add all stay in the NCHWc layout and the
    Add fuses into a conv. Where every slope is <= 1, (1-s)*Relu(y) is
    written Relu((1-s)*y) so the Relu fuses into its conv as well.
    """
    from onnx import helper, numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    extra: list[onnx.TensorProto] = []
    for node in graph.node:
        slope = consts.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is None or slope.ndim != 3 or slope.shape[1:] != (1, 1):
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        c = slope.shape[0]
        s = slope.reshape(c, 1, 1, 1).astype(np.float32)
        extra.append(numpy_helper.from_array(s, f"{y}__prelu_s"))
        extra.append(numpy_helper.from_array((1.0 - s).astype(np.float32), f"{y}__prelu_1ms"))
        if np.all(s <= 1.0):
            nodes.append(helper.make_node("Conv", [x, f"{y}__prelu_1ms"], [f"{y}__pre"], group=c, kernel_shape=[1, 1]))
            nodes.append(helper.make_node("Relu", [f"{y}__pre"], [f"{y}__pos"]))
        else:
            nodes.append(helper.make_node("Relu", [x], [f"{y}__relu"]))
            nodes.append(helper.make_node("Conv", [f"{y}__relu", f"{y}__prelu_1ms"], [f"{y}__pos"], group=c, kernel_shape=[1, 1]))
        nodes.append(helper.make_node("Conv", [x, f"{y}__prelu_s"], [f"{y}__lin"], group=c, kernel_shape=[1, 1]))
        nodes.append(helper.make_node("Add", [f"{y}__lin", f"{y}__pos"], [y]))
    used = {i for n in nodes for i in n.input}
    del graph.node[:]
    graph.node.extend(nodes)
    inits = [i for i in graph.initializer if i.name in used] + extra
    del graph.initializer[:]
    graph.initializer.extend(inits)


def repair_model(data: bytes, options: RepairOptions = RepairOptions()) -> bytes:
    """Return a repaired, loadable and faster copy of an ONNX model."""
    import onnx

    model = onnx.load_from_string(data)
    graph = model.graph
    if options.fold_dequantize:
        _fold_constants(graph)
    if options.drop_dangling_inputs:
        _drop_dangling_inputs(graph)
    if options.prelu_to_nchwc:
        _rewrite_prelu(graph)
    if options.dynamic_batch or options.dynamic_spatial:
        _free_dims(graph, options.dynamic_spatial)
    model.ir_version = max(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model.SerializeToString()
