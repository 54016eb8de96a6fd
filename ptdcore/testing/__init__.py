"""Helpers for testing ptdcore and backends built on it: the corpus and the equivalence harness."""

from .corpus import CORPUS, CorpusModel, corpus_names, get_corpus_model, structured_coalescent
from .equivalence import (
    Comparison,
    assert_backends_equivalent,
    compare_backends,
    format_table,
    relative_difference,
)
from .models import random_graph

__all__ = [
    "CORPUS",
    "Comparison",
    "CorpusModel",
    "assert_backends_equivalent",
    "compare_backends",
    "corpus_names",
    "format_table",
    "get_corpus_model",
    "random_graph",
    "relative_difference",
    "structured_coalescent",
]
