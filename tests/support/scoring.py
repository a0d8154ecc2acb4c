"""Scores the benches share: how far a transcript is from what was said."""


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """Word-level edit distance over the reference's length.

    Args:
        reference: The words said.
        hypothesis: The words heard.

    Returns:
        Substitutions, insertions and deletions over the reference's word count (0 for two empty lists).
    """
    previous = list(range(len(hypothesis) + 1))
    for row, word in enumerate(reference, start=1):
        current = [row]
        for column, heard in enumerate(hypothesis, start=1):
            current.append(min(previous[column] + 1, current[-1] + 1, previous[column - 1] + (word != heard)))
        previous = current
    return previous[-1] / max(1, len(reference))
