"""Errors that speak to the user: the command line prints their message as one line (exit status 2)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration (or a command-line argument) that cannot run; the message says where and how to fix it."""


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite; training stops, and nothing since the last checkpoint is kept."""
