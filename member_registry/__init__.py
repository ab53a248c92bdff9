"""The member registry: who belongs to the federation, published as a signed configuration."""
