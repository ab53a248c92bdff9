"""The city's NGSI-LD broker (ETSI GS CIM 009 V1.8.1) inside the node.

Modules, each with one job:

- ``errors``: the spec's ProblemDetails error types (clause 6.3.2, table 5.5.2-1);
- ``ldcontext``: the bundled core ``@context``, user contexts, term expansion and
  compaction with PyLD on cached active contexts (clause 5.5.7);
- ``entities``: validation of entities and attributes, normalized or concise, into the
  stored form (full IRIs as names);
- ``representation``: the stored form rendered normalized, concise or keyValues (4.5);
- ``qlang``: the query language ``q`` (4.9); ``geoquery``: geo-queries (4.10);
- ``store``: the entity store in the node's database; ``service``: the operations of
  clause 5 on it; ``negotiation``: media types and the JSON-LD ``Link`` header (6.3.4,
  6.3.5); ``views``: the HTTP binding (clause 6) for the node's ports.

The converters from GTFS, GTFS-Realtime and mapped sensor payloads live apart, in
``convert/``.
"""
