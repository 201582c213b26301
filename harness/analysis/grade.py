"""Pure answer grading: pull the final answer out of a model's text, compare it with the gold answer.

Why not string equality: "0.5", "\\frac{1}{2}" and "1/2" are one answer. Equivalence is decided by
Math-Verify (a maintained library) rather than hand-written rules; this module only finds *which* part of
the text is the answer, and normalises it so that majority vote groups equal answers together.
No I/O here.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

import sympy
from math_verify import parse, verify

_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*:?\s*\$?\s*([^\n$]+?)\s*\$?\s*(?:\.|$)",
    re.IGNORECASE | re.MULTILINE,
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_MAX_ANSWER_CHARS = 200
# C0/C1 control characters except tab and newline: terminal escapes and NULs a model may emit, which
# would otherwise end up inside an answer (and in samples.csv) and split one answer into two vote buckets.
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_UNITS = {w: i for i, w in enumerate([
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
_TENS = {w: 10 * i for i, w in enumerate(
    ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}), with nested braces matched.

    A forced answer may be cut before its closing brace; then the rest of the text is the answer.
    """
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return text[i:].strip() or None


def extract_answer(text: str) -> str | None:
    """The model's final answer as written, or None when the text holds no recognisable answer.

    Order: the last \\boxed{}; then "the answer is X" / "Final answer: X"; then the last number on the
    last non-empty line (models that ignore the format often end with a bare number).
    """
    if not text or not text.strip():
        return None
    text = _CONTROL.sub("", text)
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return _clip(boxed)
    matches = _ANSWER_IS.findall(text)
    if matches:
        return _clip(matches[-1])
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    numbers = _NUMBER.findall(lines[-1]) if lines else []
    return _clip(numbers[-1]) if numbers else None


def _clip(answer: str) -> str | None:
    answer = answer.strip()
    return answer[:_MAX_ANSWER_CHARS] if answer else None


def normalize_answer(answer: str | None) -> str | None:
    """A canonical spelling for voting: equal answers must land in one bucket.

    Numbers become their plain decimal form ("1,000" -> "1000", "42.0" -> "42"); other answers lose
    whitespace, surrounding $ and trailing full stops.
    """
    if answer is None:
        return None
    a = answer.strip().strip("$").strip().rstrip(".").strip()
    a = re.sub(r"\\text\{([^}]*)\}", r"\1", a)
    a = a.replace("\\!", "").replace("\\,", "").replace("\\ ", "")
    spelled = words_to_number(a)
    if spelled is not None:
        return str(spelled)
    compact = re.sub(r"\s+", "", a)
    plain = compact.replace(",", "")
    if re.fullmatch(r"[+-]?\d+", plain):
        return str(int(plain))  # exact at any length: two long integers never share a float bucket
    if re.fullmatch(r"[+-]?\d+(?:\.\d+)?", plain):
        value = float(plain)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return compact or None


def words_to_number(answer: str) -> int | None:
    """An integer spelled in English ("forty-two", "one hundred and five", "minus three"), else None.

    Why: a model that ignores the format may answer in words; "forty-two" and "42" are one answer for
    grading and must be one bucket for majority vote. Anything that is not purely number words is None.
    """
    words = re.sub(r"[-,]", " ", answer.lower()).split()
    sign = -1 if words[:1] in (["minus"], ["negative"]) else 1
    words = [w for w in words[1:] if w != "and"] if sign < 0 else [w for w in words if w != "and"]
    if not words or len(words) > 12:
        return None
    total, current = 0, 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
        else:
            return None
    return sign * (total + current)


_INTEGER = re.compile(r"[+-]?\d+")
_FRACTION = re.compile(r"([+-]?\d+)/(\d+)")


def is_final_integer(answer: str | None) -> bool:
    """True when the answer is a number written out (after normalize_answer: "1,000", "42.0", "forty-two"
    all are), not an expression left for the reader to evaluate ("144+70")."""
    norm = normalize_answer(answer)
    return norm is not None and _INTEGER.fullmatch(norm) is not None


@lru_cache(maxsize=65536)
def is_equivalent(answer: str | None, gold: str, integer: bool = False) -> bool:
    """True when Math-Verify judges the answer equal to the gold answer.

    `integer`: the task's answers are integers (AIME, reasoning-gym arithmetic; `data.answer_type:
    integer`). There an unevaluated expression is not a final answer and is graded wrong, although
    Math-Verify would evaluate `144+70` to 214: computing the number is the task.
    """
    if answer is None:
        return False
    norm_a, norm_g = normalize_answer(answer), normalize_answer(gold)
    if integer:
        return is_final_integer(answer) and norm_a == norm_g
    if norm_a is not None and norm_a == norm_g:
        return True
    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}")
        answer_parsed = parse(f"\\boxed{{{answer}}}")
        return bool(gold_parsed) and bool(answer_parsed) and bool(verify(gold_parsed, answer_parsed))
    except Exception:  # noqa: BLE001 - Math-Verify is defensive, but a pathological string must never crash a run
        return False


def vote_key(answer: str, integer: bool = False) -> str:
    """The vote class of an answer: answers that are mathematically equal share one key, so majority vote
    counts `\\frac{1}{2}`, `1/2` and `0.5` as one answer, not three rivals.

    Integer tasks keep the normalized spelling (an expression is a different, wrong answer there). Other
    tasks: plain numbers and fractions become an exact fraction; anything else is parsed once by
    Math-Verify and keyed by its sympy form (which orders terms and simplifies numbers), or kept as
    written when it does not parse. Cached: the vote stage calls it once per distinct answer.
    """
    norm = normalize_answer(answer) or answer
    return norm if integer else _equivalence_class(norm)


@lru_cache(maxsize=65536)
def _equivalence_class(answer: str) -> str:
    exact = _plain_fraction(answer)
    if exact is not None:
        return _fraction_key(exact)
    try:
        parsed = parse(f"\\boxed{{{answer}}}")
    except Exception:  # noqa: BLE001 - an answer Math-Verify cannot read votes as written
        return answer
    if not parsed:
        return answer
    expr = parsed[0]
    if getattr(expr, "is_number", False):  # Math-Verify keeps 144+70 and sqrt(8) as written: evaluate
        expr = _simplified(expr)
    if getattr(expr, "is_Rational", False):
        return _fraction_key(Fraction(int(expr.p), int(expr.q)))
    if getattr(expr, "is_Float", False):
        return _fraction_key(Fraction(str(expr)))
    return f"sympy:{expr}"


def _simplified(expr: object) -> object:
    """sympy's simplest form of a number; the number as read when sympy cannot simplify it."""
    try:
        return sympy.simplify(expr)
    except Exception:  # noqa: BLE001 - a number sympy cannot simplify votes in the form it was read
        return expr


def _plain_fraction(answer: str) -> Fraction | None:
    """An integer, decimal or a/b written plainly, as an exact fraction; else None."""
    plain = answer.replace(" ", "")
    match = _FRACTION.fullmatch(plain)
    if match and int(match.group(2)) != 0:
        return Fraction(int(match.group(1)), int(match.group(2)))
    try:
        return Fraction(plain) if re.fullmatch(r"[+-]?\d+(?:\.\d+)?", plain) else None
    except (ValueError, ZeroDivisionError):
        return None


def _fraction_key(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
