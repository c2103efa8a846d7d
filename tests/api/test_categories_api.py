"""The violation taxonomy on both profiles: defaults, tree, export/import round trip,
re-import semantics (update, deactivate, key moves), admin only, bad files write nothing."""

from __future__ import annotations

from typing import Any

import yaml

from backend.accounts.models import Role
from backend.categories.service import default_file
from tests.api.test_grids_api import assert_problem
from tests.support.apps import ApiHarness


def upload(api: ApiHarness, data: bytes, headers: dict[str, str], **params: Any) -> Any:
    return api.client.post(
        "/api/v1/categories/import",
        files={"file": ("categories.yaml", data, "application/yaml")},
        params=params,
        headers=headers,
    )


def test_defaults_tree_and_one_category(api: ApiHarness) -> None:
    admin = api.token_for("chief", Role.admin)
    done = upload(api, default_file(), admin)
    assert done.status_code == 200, done.text
    assert len(done.json()["created"]) == 29 and done.json()["deactivated"] == []
    viewer = api.token_for("viewer")
    tree = api.client.get("/api/v1/categories", headers=viewer).json()["items"]
    assert [major["code"] for major in tree] == ["01", "02", "03", "04", "05"]
    street = tree[4]
    assert street["name"] == "街面秩序" and street["key"] == "street_order"
    assert [c["code"] for c in street["children"]][:3] == ["0501", "0503", "0504"]
    one = api.client.get("/api/v1/categories/0504", headers=viewer).json()
    assert one["name"] == "店外经营" and one["limits"]["handle"] == "4h" and one["active"]
    assert_problem(
        api.client.get("/api/v1/categories/0999", headers=viewer), 404, "category_not_found"
    )
    assert api.client.get("/api/v1/categories").status_code == 401


def test_export_import_round_trip_and_a_city_renumbering(api: ApiHarness) -> None:
    admin = api.token_for("chief", Role.admin)
    upload(api, default_file(), admin)
    exported = api.client.get("/api/v1/categories/export", headers=admin)
    assert exported.headers["content-type"].startswith("application/yaml")
    again = upload(api, exported.content, admin).json()
    assert again["created"] == again["updated"] == again["deactivated"] == []
    assert again["unchanged"] == 29
    as_json = api.client.get("/api/v1/categories/export?format=json", headers=admin)
    assert as_json.json()["version"] == 1

    # The city renumbers 店外经营 to 0509, drops 僵尸车, and gives 0504's key to no one.
    document = yaml.safe_load(exported.content)
    street = document["categories"][4]
    for child in street["children"]:
        if child["code"] == "0504":
            child["code"] = "0509"
            child["limits"]["handle"] = "2h"
    appearance = document["categories"][0]
    appearance["children"] = [c for c in appearance["children"] if c["code"] != "0108"]
    dry = upload(api, yaml.safe_dump(document, allow_unicode=True).encode(), admin, dry_run=True)
    assert dry.json()["dry_run"] and dry.json()["created"] == ["0509"]
    assert api.client.get("/api/v1/categories/0509", headers=admin).status_code == 404
    done = upload(api, yaml.safe_dump(document, allow_unicode=True).encode(), admin).json()
    assert done["created"] == ["0509"] and sorted(done["deactivated"]) == ["0108", "0504"]
    moved = api.client.get("/api/v1/categories/0509", headers=admin).json()
    assert moved["key"] == "shop_front_trading" and moved["limits"]["handle"] == "2h"
    retired = api.client.get("/api/v1/categories/0504", headers=admin).json()
    assert not retired["active"] and retired["key"] == "shop_front_trading~0504"
    codes = [
        c["code"]
        for c in api.client.get("/api/v1/categories", headers=admin).json()["items"][4]["children"]
    ]
    assert "0504" not in codes and "0509" in codes
    # Bringing the old code back reactivates it.
    back = upload(api, default_file(), admin).json()
    assert "0504" in back["updated"] and "0108" in back["updated"]
    assert back["deactivated"] == ["0509"]


def test_only_admins_import_and_bad_files_change_nothing(api: ApiHarness) -> None:
    admin = api.token_for("chief", Role.admin)
    upload(api, default_file(), admin)
    inspector = api.token_for("zhang", Role.inspector)
    assert_problem(upload(api, default_file(), inspector), 403, "forbidden")
    broken = default_file().replace(b"key: shop_front_trading", b"key: Shop Front")
    refused = upload(api, broken, admin)
    body = assert_problem(refused, 422, "category_file_invalid")
    assert any("lower_snake_case" in p for p in body["problems"])
    assert api.client.get("/api/v1/categories/0504", headers=admin).json()["key"] == (
        "shop_front_trading"
    )
    huge = upload(api, b"#" * 1_000_001, admin)
    assert huge.status_code == 413
