"""Text to speech: one Kokoro-82M model served to every call."""
