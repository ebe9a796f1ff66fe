"""The OpenAI file-upload product feed, pinned column by column to the spec
(developers.openai.com/commerce/specs/file-upload/products?version=currently-stable);
each test names the spec section it pins. Plus: items with non-http(s) URLs are left out
of every feed with a validation problem (issue 12)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.builder import (
    FeedConfig,
    ProductRow,
    VariantRow,
    openai_items,
    screen_urls,
    validate_openai_item,
)
from feeds.demo import demo_catalog
from feeds.openai_spec import CURRENTLY_STABLE, spec_for
from feeds.publish import FeedBuilder
from tests.test_feeds import read_jsonl_gz

CONFIG = FeedConfig(
    feed_id="f", seller_name="Test Store", seller_url="https://shop.test",
    privacy_url="https://shop.test/privacy", terms_url="https://shop.test/tos",
    return_policy_url="https://shop.test/returns", target_country="US", store_country="US",
    brand="Test")
SPEC = CURRENTLY_STABLE


def variant(vid: str, **kw: object) -> VariantRow:
    values: dict = {"title": f"V {vid}", "price_amount": 1999, "currency": "usd",
                    "url": f"https://shop.test/p?v={vid}",
                    "image_url": f"https://shop.test/{vid}.jpg", "description": "d"}
    values.update(kw)
    return VariantRow(id=vid, **values)


def single() -> ProductRow:
    # the product id equals its only variant's id (the case issue 18 found)
    return ProductRow(id="mug", title="Mug", url="https://shop.test/mug", brand="Kiln",
                      variants=(variant("mug"),),
                      videos=(("https://video.test/v1.mp4", "Mug reel", "vid_1"),
                              ("https://video.test/v0.mp4", "Old reel", "vid_0")))


def multi() -> ProductRow:
    return ProductRow(id="tee", title="Tee", url="https://shop.test/tee", brand="Threads",
                      media=({"type": "image", "url": "https://shop.test/tee-1.jpg"},
                             {"type": "image", "url": "https://shop.test/tee-2.jpg"}),
                      variants=(variant("tee-s", variant_options=(("Size", "S"),)),
                                variant("tee-m", variant_options=(("Size", "M"),),
                                        list_price_amount=2999)))


def test_spec_version_setting_knows_only_documented_versions() -> None:
    assert spec_for("currently-stable") is CURRENTLY_STABLE
    with pytest.raises(ValueError, match="unknown OpenAI feed spec version"):
        spec_for("2025-09-legacy")


def test_openai_flags_section_booleans_are_lower_case_strings() -> None:
    item = next(openai_items(single(), CONFIG, SPEC))
    assert item["is_eligible_search"] == "true"
    assert item["is_eligible_checkout"] == "true"
    off = ProductRow(id="p", title="P", url="https://shop.test/p",
                     variants=(variant("p-1", is_eligible_search=False),))
    item = next(openai_items(off, CONFIG, SPEC))
    assert (item["is_eligible_search"], item["is_eligible_checkout"]) == ("false", "false")


def test_basic_product_data_section_names_and_limits() -> None:
    item = next(openai_items(single(), CONFIG, SPEC))
    for legacy in ("id", "link", "image_link", "enable_search", "enable_checkout",
                   "item_group_id", "item_group_title", "additional_image_link"):
        assert legacy not in item  # outdated names are a documented ingestion failure
    assert item["item_id"] == "mug"
    assert item["url"].startswith("https://shop.test/p?v=mug")
    assert set(item) <= set(SPEC.columns)
    assert SPEC.limits["item_id"] == 100
    assert SPEC.limits["title"] == 150
    assert SPEC.limits["description"] == 5000


def test_price_and_promotions_section_number_space_iso4217() -> None:
    item = next(i for i in openai_items(multi(), CONFIG, SPEC) if i["item_id"] == "tee-m")
    assert item["price"] == "29.99 USD"  # the regular price
    assert item["sale_price"] == "19.99 USD"  # what the buyer pays, <= price
    assert re.fullmatch(r"\d+\.\d{2} [A-Z]{3}", item["price"])
    yen = ProductRow(id="y", title="Y", url="https://shop.test/y",
                     variants=(variant("y-1", price_amount=1500, currency="jpy"),))
    assert next(openai_items(yen, CONFIG, SPEC))["price"] == "1500 JPY"


def test_variants_section_single_variant_has_no_group() -> None:
    item = next(openai_items(single(), CONFIG, SPEC))
    assert item["listing_has_variations"] == "false"
    assert "group_id" not in item
    assert "variant_dict" not in item
    assert validate_openai_item(item, SPEC) == []


def test_variants_section_multi_variant_shares_a_parent_group() -> None:
    items = list(openai_items(multi(), CONFIG, SPEC))
    assert {i["group_id"] for i in items} == {"tee"}
    assert all(i["listing_has_variations"] == "true" for i in items)
    assert [i["variant_dict"] for i in items] == [{"Size": "S"}, {"Size": "M"}]
    assert all(i["group_id"] != i["item_id"] for i in items)
    clash = ProductRow(id="cap", title="Cap", url="https://shop.test/cap",
                       variants=(variant("cap"), variant("cap-red")))
    groups = {i["group_id"] for i in openai_items(clash, CONFIG, SPEC)}
    assert groups == {"cap-group"}  # never equal to a variant's item_id


def test_media_section_video_url_carries_the_featured_video() -> None:
    item = next(openai_items(single(), CONFIG, SPEC))
    assert item["video_url"] == "https://video.test/v1.mp4"  # the newest featured video
    assert "rc_video=vid_1" in item["url"]
    tee = next(openai_items(multi(), CONFIG, SPEC))
    assert tee["additional_image_urls"] == ["https://shop.test/tee-2.jpg"]  # a list
    assert "video_url" not in tee


def test_geo_tagging_section_target_countries_is_a_list() -> None:
    item = next(openai_items(single(), CONFIG, SPEC))
    assert item["target_countries"] == ["US"]
    assert item["store_country"] == "US"


def test_merchant_info_and_returns_sections() -> None:
    item = next(openai_items(single(), CONFIG, SPEC))
    assert item["seller_name"] == "Test Store"
    assert item["seller_privacy_policy"] == "https://shop.test/privacy"
    assert item["seller_tos"] == "https://shop.test/tos"
    assert item["return_policy"] == "https://shop.test/returns"


def test_availability_section_enum() -> None:
    row = ProductRow(id="p", title="P", url="https://shop.test/p", variants=(
        variant("a", availability="preorder"), variant("b", availability="discontinued")))
    assert [i["availability"] for i in openai_items(row, CONFIG, SPEC)] == [
        "pre_order", "out_of_stock"]


def test_the_demo_catalog_passes_the_validator_for_the_chosen_version(tmp_path) -> None:
    from feeds.publish import product_row
    from feeds.schemas import ProductRecord

    builder = FeedBuilder(tmp_path, CONFIG, openai_formats=("jsonl",), spec=SPEC)
    records: list[ProductRecord] = demo_catalog()
    for record in records:
        builder.add(product_row(record, record.variants))
    report = builder.finish()
    assert report.validation["spec_version"] == "currently-stable"
    assert report.validation["items"] == report.variants == 72
    assert report.validation["valid"] == 72, report.validation["problems"]
    rows = read_jsonl_gz(tmp_path / "openai/products-00001.jsonl.gz")
    assert all(isinstance(r["target_countries"], list) for r in rows)


@pytest.mark.parametrize(("where", "bad"), [
    ("variant.url", "javascript:alert(1)"),
    ("variant.image_url", "data:image/png;base64,AAAA"),
    ("product.url", "javascript:alert(document.cookie)"),
    ("video", "ftp://files.test/v.mp4"),
])
def test_items_with_non_http_urls_are_left_out_with_a_problem(where: str, bad: str,
                                                               tmp_path) -> None:
    good = variant("ok-1")
    if where == "variant.url":
        row = ProductRow(id="p", title="P", url="https://shop.test/p",
                         variants=(good, variant("bad-1", url=bad)))
    elif where == "variant.image_url":
        row = ProductRow(id="p", title="P", url="https://shop.test/p",
                         variants=(good, variant("bad-1", image_url=bad)))
    elif where == "product.url":
        row = ProductRow(id="p", title="P", url=bad, variants=(good,))
    else:
        row = ProductRow(id="p", title="P", url="https://shop.test/p", variants=(good,),
                         videos=((bad, None, "vid_x"),))
    kept, problems = screen_urls(row)
    assert problems
    assert all(p.code == "bad_url" for _, p in problems)
    builder = FeedBuilder(tmp_path, CONFIG, openai_formats=("jsonl",))
    builder.add(row)
    report = builder.finish()
    published = read_jsonl_gz(tmp_path / "openai/products-00001.jsonl.gz")
    acp = (tmp_path / "acp/products-00001.jsonl").read_text()
    google = (tmp_path / "google/products-00001.tsv").read_text()
    assert bad not in acp
    assert bad not in google
    assert all(bad not in str(item) for item in published)
    assert report.validation["excluded"] == len(problems)
    assert any(p["problem"].startswith("bad_url:") for p in report.validation["problems"])
    if where.startswith("variant"):
        assert [i["item_id"] for i in published] == ["ok-1"]  # the sibling stays
    else:
        assert published == []
        assert kept is None


@given(st.text(alphabet="hts:/.@?#%[]-_~ab1\\\t javscript", max_size=40).map(
    lambda tail: tail if tail.startswith("h") else "https://" + tail))
@settings(max_examples=400, deadline=None)
def test_the_feed_url_rule_is_the_shared_url_rule(value: str) -> None:
    from feeds.openai_spec import is_http_url
    from models.urls import url_problem

    assert is_http_url(value) == (url_problem(value) is None)


def test_merchant_info_section_a_non_http_policy_link_is_never_published() -> None:
    from feeds.builder import acp_product, validate_store

    config = FeedConfig(
        feed_id="f", seller_name="S", seller_url="https://shop.test",
        privacy_url="javascript:alert(1)", terms_url="https://shop.test/tos",
        return_policy_url="https://shop.test/returns", target_country="US",
        store_country="US", brand="B")
    item = next(openai_items(single(), config, SPEC))
    assert item["seller_privacy_policy"] == ""
    assert "missing_required:seller_privacy_policy" in {
        f"{p.code}:{p.field}" for p in validate_openai_item(item, SPEC)}
    assert "bad_url:seller_privacy_policy" in {f"{p.code}:{p.field}"
                                               for p in validate_store(config)}
    assert "javascript:" not in str(acp_product(single(), config))
