"""The city's NGSI-LD broker inside the node; ``convert/`` turns source data into entities."""
