"""Renkei's instance PKI: keys, CA, certificate profiles, path validation, OCSP and time-stamps."""
