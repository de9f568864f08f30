"""Kokoro's ONNX graph cut in two, so its audio can be made a window at a time.

Kokoro is a text encoder (ALBERT, the duration and prosody predictors: ~70 ms for a sentence on
the cpu profile) and a decoder (the iSTFTNet vocoder: ~0.3 s per second of audio, ~95 % of the
work). The whole graph renders a piece before its first sample exists, so first audio grew with
the piece. Cut at the tensors the decoder takes from the encoder, the decoder can run on the
first 0.4 s of frames while the rest waits (services/tts/windows.py).

The cut is exact: the two graphs one after the other give the whole graph's audio bit for bit
(tests/test_tts_windows.py). `halfsec models` writes them beside the model.

The decoder is cut once more for CPUs with bf16 matrix units (generator.py): its front (the
AdaIN blocks, the harmonic source and its STFT: phases of a running sum, which bf16 cannot hold)
stays int8 on onnxruntime; the generator's convolutions (~60 % of the decoder's time, run by
onnxruntime as `ConvInteger` on dynamically quantised activations) are written as float `Conv`s
on the dequantised weights, for OpenVINO to run in bf16; its tail (the inverse STFT) stays float.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

# What the decoder takes from the encoder (names in kokoro-v1.0.int8.onnx): the text features
# aligned to audio frames (1, 512, frames; 40 frames a second), and the pitch and energy curves
# at twice that rate (1, 2 * frames). The style vector is a graph input both halves read.
ALIGNED = "/encoder/MatMul_1_output_0"
PITCH = "/encoder/Reshape_output_0"
ENERGY = "/encoder/Reshape_1_output_0"
FRAME_SAMPLES = 600  # audio samples per aligned frame at 24 kHz
CURVE_STEPS = 2  # pitch/energy steps per aligned frame

# Where the generator starts and ends (names in the decoder graph): the decoder's features
# (1, 512, 2 * frames), the harmonic source's STFT magnitude and phase (1, 22, 120 * frames + 1),
# and the generator's output before the inverse STFT (1, 22, 120 * frames + 1).
FEATURES = "/decoder/decoder/decode.3/Div_4_output_0"
HARMONICS = "/decoder/decoder/generator/Concat_3_output_0"
SPECTRUM = "/decoder/decoder/generator/conv_post/Conv_output_0"

ENCODER_SUFFIX = ".encoder.onnx"
DECODER_SUFFIX = ".decoder.onnx"
PART_SUFFIXES = (".decoder-front.onnx", ".generator-float.onnx", ".decoder-tail.onnx")


def halves(model: Path) -> tuple[Path, Path]:
    """Where the encoder and decoder of `model` live."""
    stem = model.with_suffix("")
    return stem.with_name(stem.name + ENCODER_SUFFIX), stem.with_name(stem.name + DECODER_SUFFIX)


def decoder_parts(model: Path) -> tuple[Path, Path, Path]:
    """Where the decoder's front, float generator and tail live (see the module's docstring)."""
    stem = model.with_suffix("")
    front, generator, tail = (stem.with_name(stem.name + suffix) for suffix in PART_SUFFIXES)
    return front, generator, tail


def split(model: Path) -> tuple[Path, Path]:
    """Write `model`'s encoder and decoder graphs beside it (see `halves`)."""
    import onnx
    from onnx.utils import Extractor

    whole = onnx.load(str(model))
    extractor = Extractor(whole)
    inputs = [i.name for i in whole.graph.input]
    outputs = [o.name for o in whole.graph.output]
    encoder_path, decoder_path = halves(model)
    decoder_inputs = [ALIGNED, PITCH, ENERGY, "style"]
    front, generator, tail = decoder_parts(model)
    floats = Extractor(float_convs(onnx.load(str(model))))  # a copy: the extractor reads the graph it is given
    for path, part in (
        (encoder_path, extractor.extract_model(inputs, [ALIGNED, PITCH, ENERGY])),
        (decoder_path, extractor.extract_model(decoder_inputs, outputs)),
        (front, extractor.extract_model(decoder_inputs, [FEATURES, HARMONICS])),
        (generator, _typed(floats.extract_model([FEATURES, HARMONICS, "style"], [SPECTRUM]))),
        (tail, _typed(floats.extract_model([SPECTRUM], outputs))),
    ):
        # kokoro-onnx reads the vocabulary from the model's metadata
        part.metadata_props.extend(whole.metadata_props)
        tmp = path.with_suffix(".tmp")
        onnx.save(part, str(tmp))
        tmp.replace(path)
    return encoder_path, decoder_path


def _typed(part: onnx.ModelProto) -> onnx.ModelProto:
    """Inputs cut from the middle of a graph carry no type; OpenVINO needs their rank."""
    from onnx import TensorProto, helper

    for i, tensor in enumerate(part.graph.input):
        if tensor.name != "style":
            shape = helper.make_tensor_type_proto(TensorProto.FLOAT, [1, f"channels{i}", f"steps{i}"])
            tensor.type.CopyFrom(shape)
    return part


def float_convs(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with each dynamically quantised convolution (DynamicQuantizeLinear -> ConvInteger
    -> [+ quantised bias] -> Cast -> Mul by the two scales, as onnxruntime's quantiser writes it)
    replaced by a float `Conv` of the unquantised input with the dequantised weights and the float
    bias; the nodes left without a consumer are dropped."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    made = {out: node for node in graph.node for out in node.output}
    used: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            used.setdefault(name, []).append(node)
    weights = {w.name: w for w in graph.initializer}

    def value(name: str) -> np.ndarray:
        return numpy_helper.to_array(weights[name])

    replaced: dict[str, onnx.NodeProto] = {}  # the Mul's name -> its float Conv
    for conv in [node for node in graph.node if node.op_type == "ConvInteger"]:
        activation = made[conv.input[0]].input[0]  # the DynamicQuantizeLinear's float input
        after = used[conv.output[0]][0]
        bias = None
        if after.op_type == "Add":  # + the bias, quantised by the two scales: Reshape(Cast(Floor(Div(bias, scale))))
            reshape = made[after.input[1]]
            bias = made[made[made[reshape.input[0]].input[0]].input[0]].input[0]
            after = used[after.output[0]][0]
        scale = used[after.output[0]][0]  # after is the Cast to float
        w_scale = next(name for name in made[scale.input[1]].input if name in weights)
        dequantised = (value(conv.input[1]).astype(np.int32) - value(conv.input[3]).astype(np.int32)) * value(w_scale)
        graph.initializer.append(numpy_helper.from_array(dequantised.astype(np.float32), conv.name + "_float_weight"))
        attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        inputs = [activation, conv.name + "_float_weight", *([bias] if bias else [])]
        replaced[scale.name] = helper.make_node(
            "Conv", inputs, list(scale.output), name=conv.name + "_float", **attributes
        )
    nodes = [replaced.get(node.name, node) for node in graph.node]
    needed, kept = {o.name for o in graph.output}, []
    for node in reversed(nodes):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    live = [w for w in graph.initializer if w.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)
    return model
