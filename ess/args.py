"""What every subcommand shares: the one-line user error and the argument types."""

from __future__ import annotations

import argparse

from envsim.camera import parse_size as _size_of_text


class UserError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit status 2."""


def parse_size(text: str) -> tuple[int, int]:
    """argparse type: ``"WxH"`` -> (W, H) in pixels."""
    try:
        return _size_of_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    return _whole_number(text, 0)
