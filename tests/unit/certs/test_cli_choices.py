"""The command line's choices are written out (for a fast ``renkei --help``); they must
stay what the modules that implement them accept."""

from __future__ import annotations

from certs import cli
from certs.crl import REVOCATION_REASONS
from certs.keys import KEY_ALGORITHMS
from certs.profiles import PROFILES
from certs.service_profiles import SERVICE_PROFILES


def test_choices_match_the_implementations() -> None:
    assert cli.KEY_ALGORITHMS == KEY_ALGORITHMS
    assert cli.PROFILES == PROFILES
    assert cli.SERVICE_PROFILES == SERVICE_PROFILES
    assert tuple(REVOCATION_REASONS) == cli.REVOCATION_REASONS
