"""Text after the model: the language of a transcript."""
