"""Speech to text with NeMo Parakeet: the only package that imports torch and NeMo, lazily.

- `model`: loading the model once per process (hub name or `.nemo`), device and precision;
- `plans`: full attention, local attention or windows, by length and free memory (pure);
- `attention`: switching the encoder between full and local attention;
- `batching`: grouping items into model calls (pure);
- `windows`: cutting long audio into overlapping windows and stitching their words;
- `records`: the typed `Word`, `Segment`, `Char` and `Transcript` records;
- `transcribe`: model calls with the out-of-memory fallbacks.
"""
