"""Enrichment stages: language, relevance, entities, near-duplicates."""
