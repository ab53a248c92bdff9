"""Converters at the provider node: source data into NGSI-LD entities.

- ``convert_gtfs``: a GTFS static feed into Smart Data Models UrbanMobility entities;
- ``convert_vehicle_positions``: GTFS-Realtime vehicle positions into ``Vehicle``;
- ``load_mapping`` and ``convert_payload``: CSV or JSON sensor payloads into entities
  as a declarative TOML mapping says (``WaterObserved``, a snow plough's ``Vehicle``).

Every converter checks its whole input before it hands out an entity.
"""
