"""Tests for pairing.qa.reward: the four reward levels, each task's parser (variants its prompt allows are
accepted, near misses rejected), and scoring a set of responses."""

from __future__ import annotations

import pytest

from pairing import qa_reward
from pairing.qa.reward import answer_text, format_score, parse_answer, score

RECORDS = {
    "reorder": {"id": "reorder-000001-0", "task": "reorder", "meta": {"grid": [3, 3]},
                "answer": "3, 1, 2, 9, 4, 5, 6, 7, 8", "answer_struct": [3, 1, 2, 9, 4, 5, 6, 7, 8]},
    "flip": {"id": "flip-000001-0", "task": "flip", "meta": {"grid": [3, 3]}, "answer": "4, horizontal",
             "answer_struct": [4, "horizontal"]},
    "inpaint": {"id": "inpaint-000001-0", "task": "inpaint", "meta": {"grid": [3, 3]}, "answer": "C",
                "answer_struct": "C"},
    "depth": {"id": "depth-000001-0", "task": "depth", "meta": {}, "answer": "2, 3, 1", "answer_struct": [2, 3, 1]},
    "position": {"id": "position-000001-0", "task": "position", "meta": {}, "answer": "left, behind",
                 "answer_struct": ["left", "behind"]},
}
WRONG = {"reorder": "1, 3, 2, 9, 4, 5, 6, 7, 8", "flip": "4, vertical", "inpaint": "A", "depth": "2, 1, 3",
         "position": "right, behind"}


def think(answer: str) -> str:
    return f"<think>I look at the image.</think><answer>{answer}</answer>"


@pytest.mark.parametrize("task", list(RECORDS))
def test_the_four_reward_levels(task):
    record = RECORDS[task]
    assert qa_reward(think(record["answer"]), record) == 1.0
    assert qa_reward(think(WRONG[task]), record) == pytest.approx(0.1)
    assert qa_reward(record["answer"], record) == pytest.approx(0.9)  # right answer, no tags
    assert qa_reward(f"<answer>{record['answer']}</answer>", record) == pytest.approx(0.9)  # no think block
    assert qa_reward(WRONG[task], record) == 0.0
    assert qa_reward("", record) == 0.0
    assert qa_reward("<think></think><answer></answer>", record) == pytest.approx(0.1)
    assert qa_reward("I cannot tell.", record) == 0.0


def test_format_needs_think_then_answer_and_nothing_else():
    assert format_score("<think>a</think><answer>b</answer>") == 1.0
    assert format_score("  <think>\nmulti\nline\n</think>\n\n<answer> b </answer>\n") == 1.0
    assert format_score("<answer>b</answer><think>a</think>") == 0.0
    assert format_score("<think>a</think><answer>b</answer> trailing words") == 0.0
    assert format_score("preamble <think>a</think><answer>b</answer>") == 0.0
    assert format_score("<think>a<answer>x</answer></think><answer>b</answer>") == 0.0
    assert format_score("<think>a</think><answer>b</answer><answer>c</answer>") == 0.0
    assert format_score("<THINK>a</THINK><ANSWER>b</ANSWER>") == 0.0


def test_answer_text_takes_the_one_answer_block():
    assert answer_text("<think>x</think><answer> 3 </answer>") == " 3 "
    assert answer_text("just 3") == "just 3"
    assert answer_text("<answer>1</answer><answer>2</answer>") is None  # hedging never parses
    assert answer_text("<answer>1") is None  # unclosed


@pytest.mark.parametrize(
    ("task", "text", "expected"),
    [
        ("reorder", "3,1,2,9,4,5,6,7,8", [3, 1, 2, 9, 4, 5, 6, 7, 8]),
        ("reorder", " 3 1 2 9 4 5 6 7 8 ", [3, 1, 2, 9, 4, 5, 6, 7, 8]),
        ("reorder", "[3, 1, 2, 9, 4, 5, 6, 7, 8]", [3, 1, 2, 9, 4, 5, 6, 7, 8]),
        ("reorder", "3; 1; 2; 9; 4; 5; 6; 7; 8.", [3, 1, 2, 9, 4, 5, 6, 7, 8]),
        ("depth", "2, 3, 1", [2, 3, 1]),
        ("depth", "2 3 1", [2, 3, 1]),
        ("depth", "(2,3,1)", [2, 3, 1]),
        ("flip", "4, horizontal", [4, "horizontal"]),
        ("flip", "4 Horizontally", [4, "horizontal"]),
        ("flip", "tile 4, vertical", [4, "vertical"]),
        ("flip", "#4; VERTICAL", [4, "vertical"]),
        ("flip", "vertical, 4", [4, "vertical"]),
        ("inpaint", "C", "C"),
        ("inpaint", " c ", "C"),
        ("inpaint", "(C)", "C"),
        ("inpaint", "C.", "C"),
        ("inpaint", "Candidate C", "C"),
        ("inpaint", "option c", "C"),
        ("position", "left, behind", ["left", "behind"]),
        ("position", "Left Behind", ["left", "behind"]),
        ("position", "right; in front", ["right", "front"]),
        ("position", "behind, left", ["left", "behind"]),
        ("position", "RIGHT, FRONT.", ["right", "front"]),
    ],
)
def test_parsers_accept_the_allowed_variants(task, text, expected):
    assert parse_answer(RECORDS[task], text) == expected


@pytest.mark.parametrize(
    ("task", "text"),
    [
        ("reorder", "3, 1, 2, 9, 4, 5, 6, 7"),  # one short
        ("reorder", "3, 1, 2, 9, 4, 5, 6, 7, 8, 9"),  # one too many
        ("reorder", "3, 1, 2, 9, 4, 5, 6, 7, 7"),  # a repeat
        ("reorder", "2, 0, 1, 8, 3, 4, 5, 6, 7"),  # 0-based
        ("reorder", "3, 1, 2, 9, 4, 5, 6, 7, eight"),
        ("reorder", "312945678"),
        ("depth", "2, 3"),
        ("depth", "2, 3, 4"),
        ("depth", "2, 2, 1"),
        ("depth", "2 > 3 > 1"),
        ("flip", "4"),
        ("flip", "horizontal"),
        ("flip", "4, diagonal"),
        ("flip", "4, horizontal, vertical"),
        ("flip", "4, 5, horizontal"),
        ("flip", "10, horizontal"),  # no tile 10 in a 3x3 grid
        ("flip", "0, horizontal"),
        ("flip", "4horizontal"),
        ("inpaint", "E"),
        ("inpaint", "B C"),
        ("inpaint", "AB"),
        ("inpaint", "the answer is B"),
        ("inpaint", ""),
        ("position", "left"),
        ("position", "left, right"),
        ("position", "front, behind"),
        ("position", "left, front, behind"),
        ("position", "up, front"),
        ("position", "leftbehind"),
        ("position", "left, in front of"),
    ],
)
def test_parsers_reject_near_misses(task, text):
    assert parse_answer(RECORDS[task], text) is None


def test_a_parsed_near_miss_scores_like_a_wrong_answer():
    record = RECORDS["reorder"]
    assert qa_reward(think("3, 1, 2, 9, 4, 5, 6, 7"), record) == pytest.approx(0.1)


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="unknown QA task"):
        parse_answer({"task": "jigsaw", "id": "x"}, "1")


def test_score_per_task_and_overall():
    records = list(RECORDS.values())
    responses = {
        RECORDS["reorder"]["id"]: think(RECORDS["reorder"]["answer"]),  # 1.0
        RECORDS["flip"]["id"]: RECORDS["flip"]["answer"],  # 0.9
        RECORDS["depth"]["id"]: think("1, 2, 3"),  # 0.1
    }
    s = score(records, responses)
    assert list(s) == ["reorder", "flip", "inpaint", "depth", "position", "all"]
    assert s["reorder"] == {"questions": 1, "answered": 1, "accuracy": 1.0, "format": 1.0, "reward": 1.0}
    assert s["flip"]["accuracy"] == 1.0 and s["flip"]["reward"] == pytest.approx(0.9)
    assert s["depth"]["accuracy"] == 0.0 and s["depth"]["reward"] == pytest.approx(0.1)
    assert s["inpaint"] == {"questions": 1, "answered": 0, "accuracy": 0.0, "format": 0.0, "reward": 0.0}
    assert s["all"]["questions"] == 5 and s["all"]["answered"] == 3
    assert s["all"]["reward"] == pytest.approx(2.0 / 3)
