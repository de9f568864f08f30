"""Speech to text: one faster-whisper model served to every call."""
