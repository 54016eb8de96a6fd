"""Helpers for testing ptdcore and backends built on it."""

from .models import random_graph

__all__ = ["random_graph"]
