"""Kokoro's ONNX graph cut in two, so its audio can be made a window at a time.

Kokoro is a text encoder (ALBERT, the duration and prosody predictors: ~70 ms for a sentence on
the cpu profile) and a decoder (the iSTFTNet vocoder: ~0.3 s per second of audio, ~95 % of the
work). The whole graph renders a piece before its first sample exists, so first audio grew with
the piece. Cut at the tensors the decoder takes from the encoder, the decoder can run on the
first 0.4 s of frames while the rest waits (services/tts/windows.py).

The cut is exact: the two graphs one after the other give the whole graph's audio bit for bit
(tests/test_tts_windows.py). `halfsec models` writes them beside the model.
"""

from __future__ import annotations

from pathlib import Path

# What the decoder takes from the encoder (names in kokoro-v1.0.int8.onnx): the text features
# aligned to audio frames (1, 512, frames; 40 frames a second), and the pitch and energy curves
# at twice that rate (1, 2 * frames). The style vector is a graph input both halves read.
ALIGNED = "/encoder/MatMul_1_output_0"
PITCH = "/encoder/Reshape_output_0"
ENERGY = "/encoder/Reshape_1_output_0"
FRAME_SAMPLES = 600  # audio samples per aligned frame at 24 kHz
CURVE_STEPS = 2  # pitch/energy steps per aligned frame

ENCODER_SUFFIX = ".encoder.onnx"
DECODER_SUFFIX = ".decoder.onnx"


def halves(model: Path) -> tuple[Path, Path]:
    """Where the encoder and decoder of `model` live."""
    stem = model.with_suffix("")
    return stem.with_name(stem.name + ENCODER_SUFFIX), stem.with_name(stem.name + DECODER_SUFFIX)


def split(model: Path) -> tuple[Path, Path]:
    """Write `model`'s encoder and decoder graphs beside it (see `halves`)."""
    import onnx
    from onnx.utils import Extractor

    whole = onnx.load(str(model))
    extractor = Extractor(whole)
    inputs = [i.name for i in whole.graph.input]
    outputs = [o.name for o in whole.graph.output]
    encoder_path, decoder_path = halves(model)
    for path, part in (
        (encoder_path, extractor.extract_model(inputs, [ALIGNED, PITCH, ENERGY])),
        (decoder_path, extractor.extract_model([ALIGNED, PITCH, ENERGY, "style"], outputs)),
    ):
        # kokoro-onnx reads the vocabulary from the model's metadata
        part.metadata_props.extend(whole.metadata_props)
        tmp = path.with_suffix(".tmp")
        onnx.save(part, str(tmp))
        tmp.replace(path)
    return encoder_path, decoder_path
