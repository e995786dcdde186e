"""Word error rate after lowercasing and dropping punctuation: the Python twin of
`word_error_rate` in tests/support/lib.rs, for the Python tests and the shell scripts.

usage: python3 tests/python/wer.py REFERENCE_FILE HYPOTHESIS_FILE   (prints the rate)
"""

import re
import sys


def words(text: str) -> list[str]:
    """The words of `text`, lowercased, without punctuation (apostrophes kept inside)."""
    return [w.strip("'") for w in re.sub(r"[^\w']+", " ", text.lower()).split() if w.strip("'")]


def wer(reference: str, hypothesis: str) -> float:
    """Word-level edit distance divided by the number of reference words."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j - 1] + (r != h), previous[j] + 1, current[j - 1] + 1)
        previous = current
    return previous[-1] / max(len(ref), 1)


if __name__ == "__main__":
    reference, hypothesis = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])
    print(f"{wer(reference, hypothesis):.3f}")
