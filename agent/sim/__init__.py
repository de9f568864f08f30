"""The simulated caller and what it drives: a call through the real session (`call.py`, `halfsec
demo`), many at once (`bench.py`, `halfsec bench calls`), and the ground truth of each turn's
latency from the audio itself (`voice.py`, `halfsec measure`)."""
