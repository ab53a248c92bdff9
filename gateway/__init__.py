"""The Renkei node: client proxy, peer relay, signing, configuration client and audit log."""
