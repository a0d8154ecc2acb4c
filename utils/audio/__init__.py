"""Audio in: probe, decode to 16 kHz mono, and the long-lived decoder helpers for small files."""
