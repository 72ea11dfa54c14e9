"""Synthetic Peruvian plates and the keyed hash that stands in for them everywhere.

A plate is three letters or digits, a hyphen and three digits (``ABC-123``, ``A1B-234``). Plates
exist only inside the gate model: a camera's read is turned into an HMAC-SHA256 of the plate
under the deployment's secret at once, and only that hash (truncated to 80 bits) leaves it.
Without the secret a hash cannot be tied back to a plate by trying all 46 million of them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string

import numpy as np

PLATE_PATTERN = re.compile(r"(?<![A-Za-z0-9])[A-Z0-9]{3}-[0-9]{3}(?![A-Za-z0-9])")
"""A plate-shaped string anywhere in a text (what the privacy test scans every output for)."""

HEAD = string.ascii_uppercase + string.digits
CONFUSABLE = {"0": "O", "O": "0", "1": "I", "I": "1", "8": "B", "B": "8", "5": "S", "S": "5",
              "2": "Z", "Z": "2", "6": "G", "G": "6"}  # fmt: skip
"""Characters plate readers mistake for one another."""
DIGIT_CONFUSABLE = {"1": "7", "7": "1", "3": "8", "8": "3", "5": "6", "6": "5", "0": "8"}


def random_plate(rng: np.random.Generator) -> str:
    head = "".join(HEAD[i] for i in rng.integers(0, len(HEAD), 3))
    return f"{head}-{int(rng.integers(0, 1000)):03d}"


def misread(plate: str, rng: np.random.Generator) -> str:
    """``plate`` with one character read wrong (a confusable one where there is one)."""
    i = int(rng.choice([0, 1, 2, 4, 5, 6]))
    c = plate[i]
    if i < 3:
        wrong = CONFUSABLE.get(c) or HEAD[(HEAD.index(c) + 1 + int(rng.integers(0, 35))) % len(HEAD)]
    else:
        wrong = DIGIT_CONFUSABLE.get(c) or str((int(c) + 1 + int(rng.integers(0, 9))) % 10)
    return plate[:i] + wrong + plate[i + 1 :]


def plate_hash(secret: str, plate: str) -> str:
    """The keyed hash of ``plate`` (20 hex digits): equal plates give equal hashes under one
    secret, and nothing else can be learnt from it without the secret."""
    return hmac.new(secret.encode(), plate.encode(), hashlib.sha256).hexdigest()[:20]
