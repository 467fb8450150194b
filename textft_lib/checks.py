"""Argument checks shared by the library's entry points: whole numbers, numbers in a range,
class names. Standard library only (NumPy's scalars pass as the numbers they are), so that
``data`` can use them without importing NumPy.

Each raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for one out of
range, with a message that names the argument, what it got and what it needs.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def _is_bool(value: Any) -> bool:
    """Python's and NumPy's booleans (``True`` is an int to Python: never a count or an id here)."""
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool") and hasattr(value, "dtype")


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is a whole number (not a bool) in ``[minimum, maximum]``.

    Raises ``TypeError`` for anything that is not an integer (``3.0``, ``"3"``, ``True``) and
    ``ValueError`` for one out of range; the messages name the argument.

    Example: ``check_int(8, "batch_size", minimum=1)`` is ``8`` (a NumPy int too);
    ``check_int(0, "batch_size", minimum=1)`` raises ``ValueError``.
    """
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite ``float`` in the range ``low .. high`` (ends included unless ``*_open``).

    Raises ``TypeError`` for a non-number (a string, a bool, None) and ``ValueError`` for NaN,
    infinity or a value out of range, naming the argument and the range.

    Example: ``check_number(1e-3, "lr_head", low=0, low_open=True)`` is ``0.001``;
    ``check_number(0.0, "lr_head", low=0, low_open=True)`` raises ``ValueError``.
    """
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        opening = "(" if low_open or low is None else "["
        closing = ")" if high_open or high is None else "]"
        interval = f"{opening}{left}, {right}{closing}"
        raise ValueError(f"{name} must lie in {interval}, got {value:g}")
    return value


def string_list(value: Any, name: str, *, what: str = "strings") -> list[str]:
    """``value`` as a list of strings: one string, a dict, a set or a non-iterable raise
    ``TypeError``, as does the first item that is not a string (named by its position).
    The list may be empty; callers that need texts or names check that themselves.

    Example: ``string_list(("a", "b"), "texts")`` is ``["a", "b"]``; ``string_list("ab", "texts")`` raises.
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list of {what}, not one string: wrap it as [text]")
    if isinstance(value, (dict, set, frozenset)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of {what}, got {type(value).__name__}")
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name} must be strings; item {i} is {type(item).__name__} {item!r:.60}")
    return items


def as_label_names(label_names: Any, name: str = "label_names") -> list[str]:
    """The names of classes 0..n-1 as a list: from a list/tuple of distinct strings, or from a
    dict ``{id: name}`` (as ``transformers``' ``id2label``) whose ids are exactly ``0 .. n-1``.

    Raises ``TypeError`` for a lone string (its letters would become the names), a non-string
    name or a dict with non-integer ids, and ``ValueError`` for no names, repeated or blank
    names, or dict ids that are not 0..n-1.

    Example: ``as_label_names({1: "spam", 0: "ham"})`` is ``["ham", "spam"]``.
    """
    if isinstance(label_names, (str, bytes)):
        raise TypeError(f"{name} must be a list of names, one per class, not one string "
                        f"({label_names[:30]!r}): write [{label_names[:30]!r}, ...]")
    if isinstance(label_names, dict):
        keys = list(label_names)
        if any(_is_bool(k) or not isinstance(k, numbers.Integral) for k in keys):
            raise TypeError(f"{name} as a dict maps class ids (ints) to names, like id2label; got keys {keys[:10]}")
        if sorted(int(k) for k in keys) != list(range(len(keys))):
            raise ValueError(f"{name} as a dict must have the class ids 0..{len(keys) - 1} as keys, "
                             f"got {sorted(int(k) for k in keys)[:10]}")
        label_names = [label_names[k] for k in sorted(keys, key=int)]
    names = string_list(label_names, name, what="names (or a dict {id: name})")
    if not names:
        raise ValueError(f"{name} is empty: give one name per class")
    if any(not n.strip() for n in names):
        raise ValueError(f"{name} holds a blank name: {names[:10]}")
    if len(set(names)) != len(names):
        raise ValueError(f"{name} must be distinct names, one per class; got {names[:10]}")
    return names
