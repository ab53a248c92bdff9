"""The bundled Smart Data Models contexts: complete for what the converters write."""

from __future__ import annotations

import pytest

from gateway.broker.convert.contexts import (
    ENVIRONMENT_CONTEXT,
    TRANSPORTATION_CONTEXT,
    URBAN_MOBILITY_CONTEXT,
    bundled_context,
    bundled_context_urls,
    context_terms,
)


@pytest.mark.parametrize("url", bundled_context_urls())
def test_each_bundled_context_maps_terms_to_smart_data_models_iris(url) -> None:
    terms = bundled_context(url)["@context"]
    assert terms["id"] == "@id"
    assert terms["type"] == "@type"
    subject = url.split("/")[4]
    for term, iri in terms.items():
        if isinstance(iri, str) and iri.startswith("https://smartdatamodels.org/dataModel."):
            assert iri.startswith(f"https://smartdatamodels.org/{subject}/"), term


@pytest.mark.parametrize(
    ("url", "names"),
    [
        (URBAN_MOBILITY_CONTEXT, {"GtfsStop", "GtfsStation", "GtfsStopTime", "hasTrip",
                                  "wheelChairAccessible", "headwaySeconds", "appliesOn"}),
        (TRANSPORTATION_CONTEXT, {"Vehicle", "speed", "bearing", "license_plate",
                                  "vehicleType", "fleetVehicleId", "serviceStatus"}),
        (ENVIRONMENT_CONTEXT, {"WaterObserved", "waterLevel", "flow", "refDevice",
                               "dateObserved"}),
    ],
)
def test_the_terms_the_converters_use_are_defined(url, names) -> None:
    assert names <= context_terms(url)


def test_an_unbundled_context_is_not_invented() -> None:
    with pytest.raises(KeyError):
        bundled_context("https://example.org/context.jsonld")
