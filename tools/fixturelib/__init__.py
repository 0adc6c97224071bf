"""Helpers for tools/make_fixtures.py: tokenizer training, tiny BitNet weights, HF and GGUF writers, references."""
