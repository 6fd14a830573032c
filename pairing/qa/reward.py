"""The verifiable reward of a QA answer: ``0.9 * accuracy + 0.1 * format``.

- ``format`` is 1 when the whole response is ``<think>...</think><answer>...</answer>`` (white space
  around and between the blocks allowed, neither block holding another tag).
- ``accuracy`` is 1 when the answer text parses, with the task's parser, to the record's ``answer_struct``.
  The answer text is what lies inside the one ``<answer>...</answer>`` of the response; a response
  without answer tags is parsed whole; two or more answer blocks never parse.

So the stored answer in the right format scores 1.0, a wrong one in the right format 0.1, the right answer
without the tags 0.9, and an empty or unparseable response 0.

Parsers ignore case and surrounding white space and brackets, and accept the separators the prompts allow
(commas, semicolons, spaces); each returns the canonical JSON value of its task or None:

- ``reorder`` / ``depth``: ``3, 1, 2`` -> ``[3, 1, 2]``: exactly the numbers 1..K once each;
- ``flip``: ``4, horizontal`` -> ``[4, "horizontal"]``: one tile number in 1..K (``tile 4`` and ``#4``
  too) and one of horizontal(ly) / vertical(ly), in either order;
- ``inpaint``: ``B`` -> ``"B"``: one letter A-D (``(B)``, ``B.``, ``candidate B``, ``option B`` too);
- ``position``: ``left, behind`` -> ``["left", "behind"]``: one of left / right and one of front
  (``in front``) / behind, in either order.

Reference: Liu et al., "Spatial-SSRL", arXiv:2510.27606, 2025 (format and accuracy rewards).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

ACCURACY_WEIGHT = 0.9
FORMAT_WEIGHT = 0.1

_NO_TAG = r"(?:(?!</?think>|</?answer>).)*"
_FORMAT = re.compile(rf"\s*<think>{_NO_TAG}</think>\s*<answer>{_NO_TAG}</answer>\s*", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_SPLIT = re.compile(r"[\s,;]+")
_DIRECTION = {"horizontal": "horizontal", "horizontally": "horizontal", "vertical": "vertical",
              "vertically": "vertical"}


def format_score(response: str) -> float:
    """1.0 when ``response`` is ``<think>...</think><answer>...</answer>``, else 0.0."""
    return 1.0 if _FORMAT.fullmatch(response or "") else 0.0


def answer_text(response: str) -> str | None:
    """The text inside the response's only ``<answer>`` block, the whole response without one, or None when
    it has several blocks or an unclosed tag."""
    response = response or ""
    found = _ANSWER.findall(response)
    if len(found) == 1:
        return found[0]
    if found or re.search(r"</?answer>", response, re.IGNORECASE):
        return None
    return response


def _tokens(text: str) -> list[str]:
    text = text.strip().lower().strip("[](){}.!").strip()
    return [t for t in _SPLIT.split(text) if t]


def parse_order(text: str, n: int) -> list[int] | None:
    """A permutation of 1..n written as numbers (``3, 1, 2``), or None."""
    tokens = _tokens(text)
    if len(tokens) != n or not all(t.isdigit() for t in tokens):
        return None
    values = [int(t) for t in tokens]
    return values if sorted(values) == list(range(1, n + 1)) else None


def parse_flip(text: str, n: int) -> list[Any] | None:
    """``[tile, direction]`` from ``4, horizontal`` (tile in 1..n), or None."""
    tokens = [t.lstrip("#") for t in _tokens(text) if t != "tile"]
    numbers = [t for t in tokens if t.isdigit()]
    words = [_DIRECTION.get(t) for t in tokens if not t.isdigit()]
    if len(tokens) != 2 or len(numbers) != 1 or len(words) != 1 or words[0] is None:
        return None
    tile = int(numbers[0])
    return [tile, words[0]] if 1 <= tile <= n else None


def parse_letter(text: str) -> str | None:
    """One candidate letter A-D from ``B``, ``(B)``, ``B.``, ``candidate B``, or None."""
    tokens = _tokens(text)
    if len(tokens) == 2 and tokens[0] in ("candidate", "option"):
        tokens = tokens[1:]
    if len(tokens) != 1:
        return None
    letter = tokens[0].strip("()[].")
    return letter.upper() if len(letter) == 1 and letter in "abcd" else None


def parse_position(text: str) -> list[str] | None:
    """``[left|right, front|behind]`` from ``left, behind`` (``in front`` allowed), or None."""
    tokens = _tokens(re.sub(r"\bin\s+front\b", "front", text.lower()))
    sides = [t for t in tokens if t in ("left", "right")]
    depths = [t for t in tokens if t in ("front", "behind")]
    if len(tokens) != 2 or len(sides) != 1 or len(depths) != 1:
        return None
    return [sides[0], depths[0]]


def tile_count(record: Mapping[str, Any]) -> int:
    """Tiles of a reorder or flip record's grid."""
    rows, cols = record["meta"]["grid"]
    return int(rows) * int(cols)


def parse_answer(record: Mapping[str, Any], text: str) -> Any:
    """The canonical answer ``text`` stands for under ``record``'s task, or None.

    Raises:
        ValueError: the record's task is unknown.
    """
    task = record["task"]
    if task == "reorder":
        return parse_order(text, tile_count(record))
    if task == "depth":
        return parse_order(text, 3)
    if task == "flip":
        return parse_flip(text, tile_count(record))
    if task == "inpaint":
        return parse_letter(text)
    if task == "position":
        return parse_position(text)
    raise ValueError(f"unknown QA task {task!r} in record {record.get('id')!r}")


def answer_accuracy(response: str, record: Mapping[str, Any]) -> float:
    """1.0 when the response's answer parses to ``record["answer_struct"]``, else 0.0."""
    text = answer_text(response)
    return 1.0 if text is not None and parse_answer(record, text) == record["answer_struct"] else 0.0


def qa_reward(response: str, record: Mapping[str, Any]) -> float:
    """The reward of a model's response to a QA record: ``0.9 * accuracy + 0.1 * format``.

    Args:
        response: the model's full output text.
        record: the question's record from ``qa.jsonl`` (``task``, ``answer_struct``; ``meta.grid`` for the
            tile tasks).

    Returns:
        A reward in {0, 0.1, 0.9, 1.0}.
    """
    return round(ACCURACY_WEIGHT * answer_accuracy(response, record) + FORMAT_WEIGHT * format_score(response), 6)


def score(records: Iterable[Mapping[str, Any]], responses: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Accuracy and mean reward per task (and ``all``) of responses keyed by record id.

    Args:
        records: the export's records.
        responses: record id -> response text; records without one count as missing.

    Returns:
        task -> ``{"questions", "answered", "accuracy", "format", "reward"}`` (means over the answered ones,
        0.0 when none), tasks in record order, then ``"all"``.
    """
    sums: dict[str, list[float]] = {}
    for record in records:
        row = sums.setdefault(record["task"], [0, 0, 0.0, 0.0, 0.0])
        row[0] += 1
        if record["id"] not in responses:
            continue
        text = responses[record["id"]]
        row[1] += 1
        row[2] += answer_accuracy(text, record)
        row[3] += format_score(text)
        row[4] += qa_reward(text, record)
    sums["all"] = [sum(r[i] for r in sums.values()) for i in range(5)]
    return {task: {"questions": int(n), "answered": int(k), "accuracy": acc / k if k else 0.0,
                   "format": fmt / k if k else 0.0, "reward": rew / k if k else 0.0}
            for task, (n, k, acc, fmt, rew) in sums.items()}
