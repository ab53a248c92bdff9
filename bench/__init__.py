"""The side-by-side benchmark: a bare aiohttp proxy chain against the Renkei path.

``make bench`` runs :mod:`bench.run`, ``make bench-large`` runs :mod:`bench.large`.
Nothing here is imported by the four Renkei packages; it only drives them.
"""
