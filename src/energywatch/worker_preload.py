"""Imported once by the extraction workers' fork server, so that every worker starts with it loaded.

Each worker used to import trafilatura and load the language model itself: ~1.3 s of CPU per
worker in every run. Forked from a server that has done it once, the workers share those pages.
"""

import contextlib

from energywatch import extract, pipeline, workers  # noqa: F401  (trafilatura, lxml, the enrichment code)
from energywatch.enrich.dedup import permutations
from energywatch.enrich.language import load_model

# an error here would take the fork server down with an unhelpful message; the workers' initializer
# loads the model again when it is missing and then reports what went wrong
with contextlib.suppress(Exception):
    load_model()
    permutations()  # numpy and the MinHash permutations, which every worker signs documents with

# the fork server ends with the run that started it, and its workers with it (see workers.die_with_parent)
workers.die_with_parent()
