"""Registry reads over the sample fleet: real pagination, filters, details, groups, endpoints."""

from __future__ import annotations

import pytest

from iot_tui.aws import fleet, registry

NOW = 1_780_000_000.0


@pytest.fixture
def sample(clients) -> fleet.Fleet:
    sample = fleet.sample_fleet(seed=3, now=NOW)
    assert all(not e.failed for e in fleet.setup(clients.iot, sample))
    return sample


def test_pages_follow_next_token(clients, sample):
    names, token, sizes = [], None, []
    while True:
        page = registry.list_things_page(clients.iot, 7, token)
        names += [t["thingName"] for t in page.items]
        sizes.append(len(page.items))
        token = page.next_token
        if not token:
            break
    assert sizes == [7, 7, 6]
    assert names == sorted(t.name for t in sample.things)


def test_filters_by_type_and_attribute(clients, sample):
    sedans = registry.list_things_page(clients.iot, 100, thing_type="SedanVehicle").items
    assert {t["thingName"] for t in sedans} == {t.name for t in sample.things if t.thing_type == "SedanVehicle"}
    country = sample.things[0].attributes["country"]
    exact = registry.list_things_page(clients.iot, 100, attribute=registry.AttributeFilter.parse(f"country={country}"))
    assert {t["thingName"] for t in exact.items} == {t.name for t in sample.things
                                                      if t.attributes["country"] == country}
    prefix = registry.list_things_page(clients.iot, 100, attribute=registry.AttributeFilter.parse("country=U*"))
    assert {t["thingName"] for t in prefix.items} == {t.name for t in sample.things
                                                       if t.attributes["country"].startswith("U")}


def test_attribute_filter_parsing():
    assert registry.AttributeFilter.parse("") is None
    assert registry.AttributeFilter.parse(" country = USA ") == registry.AttributeFilter("country", "USA")
    assert registry.AttributeFilter.parse("country=US*") == registry.AttributeFilter("country", "US", True)
    with pytest.raises(ValueError, match="name=value"):
        registry.AttributeFilter.parse("country")


def test_describe_thing_has_groups_and_principals(clients, sample):
    thing = sample.things[0]
    cert = clients.iot.create_keys_and_certificate(setAsActive=True)
    clients.iot.attach_thing_principal(thingName=thing.name, principal=cert["certificateArn"])
    detail = registry.describe_thing(clients.iot, thing.name)
    assert detail.thing["attributes"] == thing.attributes
    assert detail.thing["thingTypeName"] == thing.thing_type
    assert detail.groups == [thing.group]
    assert detail.principals == [cert["certificateArn"]]
    certificates = registry.list_certificates(clients.iot)
    assert [(c.certificate_id, c.status, c.things, c.policies) for c in certificates] == [
        (cert["certificateId"], "ACTIVE", [thing.name], [])]


def test_group_tree_nests_children_with_members(clients, sample):
    clients.iot.create_thing_group(thingGroupName="EuropeDealers", parentGroupName="DealerFleet")
    clients.iot.add_thing_to_thing_group(thingGroupName="EuropeDealers", thingName="Vehicle-VIN-001")
    roots = {node.name: node for node in registry.thing_group_tree(clients.iot)}
    assert set(roots) == set(sample.groups)
    dealer = roots["DealerFleet"]
    assert [child.name for child in dealer.children] == ["EuropeDealers"]
    assert dealer.children[0].members == ["Vehicle-VIN-001"]
    assert sorted(dealer.members) == sorted(t.name for t in sample.things if t.group == "DealerFleet")


def test_thing_types_and_endpoints(clients, sample):
    types = registry.list_thing_types(clients.iot)
    assert {t["thingTypeName"] for t in types} == set(sample.types)
    assert all(t["thingTypeProperties"]["searchableAttributes"] == fleet.SEARCHABLE for t in types)
    endpoints = registry.describe_endpoints(clients.iot)
    assert [e.endpoint_type for e in endpoints] == list(registry.ENDPOINT_TYPES)
    assert all(e.address == "localhost" and e.purpose for e in endpoints)
