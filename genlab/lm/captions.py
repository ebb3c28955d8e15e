"""Captions for the labeled digits: several phrasings naming the class.

    caption(7, 0)         # 'a handwritten seven'
    caption(7, 3)         # 'the number 7, written by hand'
    prompt_for(7)         # 'a handwritten seven': the evaluation prompt
    label_of("draw a 7")  # 7: the class a prompt names

Templates spell the digit as a word or a numeral, so a model must tie both to the image.
"""

from __future__ import annotations

import re

from genlab.data.digits import DIGIT_NAMES

TEMPLATES = (
    "a handwritten {name}",
    "the digit {name}",
    "a drawing of the number {name}",
    "the number {numeral}, written by hand",
    "a picture of the number {name}",
    "{name}",
    "a scanned {numeral}",
    "handwritten digit: {numeral}",
)


def caption(label: int, template: int) -> str:
    """``TEMPLATES[template]`` filled with digit ``label`` (0-9)."""
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(DIGIT_NAMES):
        raise ValueError(f"label={label!r} must be a digit class in 0..{len(DIGIT_NAMES) - 1}")
    if isinstance(template, bool) or not isinstance(template, int) or not 0 <= template < len(TEMPLATES):
        raise ValueError(f"template={template!r} must be an index into the {len(TEMPLATES)} caption TEMPLATES")
    return TEMPLATES[template].format(name=DIGIT_NAMES[label], numeral=label)


def label_of(prompt: str) -> int | None:
    """The digit class a prompt names (as a word or a numeral), or None if it names none or several."""
    words = re.findall(r"[a-z]+|[0-9]", prompt.lower())
    found = {DIGIT_NAMES.index(w) if w in DIGIT_NAMES else int(w) for w in words if w in DIGIT_NAMES or w.isdigit()}
    return found.pop() if len(found) == 1 else None


def prompt_for(label: int) -> str:
    """The evaluation prompt of a class: ``"a handwritten <name>"``."""
    return caption(label, 0)


__all__ = ["TEMPLATES", "caption", "label_of", "prompt_for"]
