"""Text models: encoder, embedding cache, sentiment heads, prototypes, topics, tagging, impact.

Imports types and config only (and torch / transformers / scikit-learn); training loops, the
labelled data sets and the registry that stores trained heads live in ``app.models``.
"""
