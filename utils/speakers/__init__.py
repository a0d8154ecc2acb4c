"""Who spoke when: the Sortformer diarizer, words labelled with speakers, transcripts per channel."""
