"""The division register: complete, correctly read aloud by initials, and able to read a card's
address down to the county."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kiosk.divisions import (
    COUNTY,
    DATASET,
    PREFECTURE,
    PROVINCE,
    DivisionError,
    children,
    full_name,
    load,
    match_address,
    register,
    search,
)

ROOT = Path(__file__).resolve().parents[2]
IDENTITIES = ROOT / "assets" / "demo" / "identities.json"
MUNICIPALITIES = ("110000", "120000", "310000", "500000")


def _kind(name: str, level: int) -> str:
    if level == COUNTY and name in ("神农架林区", "六枝特区"):
        return name[-2:]
    kinds = ("自治州", "地区", "盟", "市") if level == PREFECTURE else ("自治县", "自治旗")
    for kind in (*kinds, "区", "县", "市", "旗"):
        if name.endswith(kind):
            return kind
    return "?"


def test_the_file_says_where_it_comes_from_and_under_which_licence() -> None:
    document = json.loads(DATASET.read_text(encoding="utf-8"))
    assert "民政部" in document["source"]
    assert document["edition_date"] >= "2026-01-01"
    assert document["licence"].startswith("CC BY 4.0")
    assert document["built_by"] == "scripts/build_divisions.py"
    assert (DATASET.parent / "README.md").is_file()


def test_totals_match_the_published_structure_of_the_edition() -> None:
    everything = register().all()
    levels = Counter(d.level for d in everything)
    # 23 provinces, 5 autonomous regions, 4 municipalities, 2 special administrative regions.
    assert levels[PROVINCE] == 34
    provinces = [d for d in everything if d.level == PROVINCE]
    assert sum(d.name.endswith("省") for d in provinces) == 23
    assert sum(d.name.endswith("自治区") for d in provinces) == 5
    assert sum(d.name.endswith("特别行政区") for d in provinces) == 2
    # The Ministry's totals: 333 prefecture-level units = 293 cities, 7 prefectures,
    # 30 autonomous prefectures, 3 leagues.
    prefecture = Counter(_kind(d.name, PREFECTURE) for d in everything if d.level == PREFECTURE)
    assert prefecture == {"市": 293, "地区": 7, "自治州": 30, "盟": 3}
    # County level: the categories that have not changed for years, and a total in the band
    # of the recent editions (2,844 at the end of 2023; this edition counts 2,847).
    county = Counter(_kind(d.name, COUNTY) for d in everything if d.level == COUNTY)
    assert county["自治县"] == 117
    assert county["旗"] == 49
    assert county["自治旗"] == 3
    assert county["林区"] == 1
    assert county["特区"] == 1
    assert 2840 <= levels[COUNTY] <= 2860
    document = json.loads(DATASET.read_text(encoding="utf-8"))
    assert document["totals"] == {
        "provincial": levels[PROVINCE],
        "prefecture": levels[PREFECTURE],
        "county": levels[COUNTY],
    }


def test_every_division_hangs_under_one_a_person_would_name() -> None:
    reg = register()
    for division in reg.all():
        assert len(division.code) == 6 and division.code.isdigit()
        assert division.name != "市辖区" and "直辖县级" not in division.name
        assert len(division.initials) == len(division.name)
        assert division.name.startswith(division.short)
        if division.parent is None:
            assert division.level == PROVINCE
        else:
            parent = reg.get(division.parent)
            assert parent.level < division.level
            assert division.code[:2] == parent.code[:2]


@pytest.mark.parametrize("code", MUNICIPALITIES)
def test_municipalities_go_straight_to_their_districts(code: str) -> None:
    districts = children(code)
    assert districts and all(d.level == COUNTY for d in districts)


def test_counties_a_province_runs_itself_sit_beside_its_cities() -> None:
    hubei = {d.name: d for d in children("420000")}
    assert hubei["武汉市"].level == PREFECTURE
    for name in ("仙桃市", "潜江市", "天门市", "神农架林区"):
        assert hubei[name].level == COUNTY
        assert children(hubei[name].code) == ()
    assert [d.name for d in children("420000")][-4:] == ["仙桃市", "潜江市", "天门市", "神农架林区"]


@pytest.mark.parametrize(
    ("name", "initials"),
    [
        ("重庆市", "cqs"),
        ("长沙市", "css"),
        ("长春市", "ccs"),
        ("长治市", "czs"),
        ("长子县", "zzx"),
        ("厦门市", "xms"),
        ("蚌埠市", "bbs"),
        ("六安市", "las"),
        ("乐清市", "yqs"),
        ("单县", "sx"),
        ("洪洞县", "htx"),
        ("闵行区", "mhq"),
        ("番禺区", "pyq"),
        ("铅山县", "ysx"),
        ("朝阳市", "cys"),
        ("漯河市", "lhs"),
        ("广东省", "gds"),
    ],
)
def test_initials_of_names_with_more_than_one_reading(name: str, initials: str) -> None:
    found = [d for d in register().all() if d.name == name]
    assert found, name
    assert {d.initials for d in found} == {initials}


def test_search_by_initials_and_by_text() -> None:
    assert search("gd")[0].name == "广东省"
    sz = [d.name for d in search("sz") if d.level == PREFECTURE]
    assert {"深圳市", "苏州市", "宿州市", "随州市"} <= set(sz)
    assert all(d.initials.startswith("sz") for d in search("SZ"))
    assert [d.name for d in search("ft", within="440300")] == ["福田区"]
    assert [d.name for d in search("cq") if d.level == PROVINCE] == ["重庆市"]
    assert {d.name for d in search("仙桃")} == {"仙桃市"}
    assert search("") == children(None)
    assert search("g1") == ()
    assert all(d.code != "440000" for d in search("gd", within="440000"))


def test_full_name_from_codes() -> None:
    assert full_name(("440000", "440300", "440304")) == "广东省深圳市福田区"
    assert full_name("440304") == "广东省深圳市福田区"
    assert full_name(("110000", None, "110101")) == "北京市东城区"
    assert full_name(("420000", None, "429004")) == "湖北省仙桃市"
    assert full_name((None, None, None)) == ""


def test_the_demo_cards_addresses_name_the_county_of_their_id_numbers() -> None:
    people = json.loads(IDENTITIES.read_text(encoding="utf-8"))
    assert people
    for person in people:
        found = match_address(person["address"])
        assert found.county == person["id_number"][:6], person["address"]
        region = full_name(found.codes)
        assert person["address"] == region + found.street
        assert found.street and not found.street.startswith(("市", "区", "县"))


@pytest.mark.parametrize(
    ("address", "codes", "street"),
    [
        (
            "北京市东城区景山前街4号院2号楼3单元101室",
            ("110000", None, "110101"),
            "景山前街4号院2号楼3单元101室",
        ),
        (
            "广东省深圳市福田区福华路88号12栋803",
            ("440000", "440300", "440304"),
            "福华路88号12栋803",
        ),
        ("北京市市辖区东城区东华门街道", ("110000", None, "110101"), "东华门街道"),
        ("湖北省仙桃市干河街道", ("420000", None, "429004"), "干河街道"),
        ("湖北省省直辖县级行政区划潜江市园林街道", ("420000", None, "429005"), "园林街道"),
        ("四川省凉山彝族自治州西昌市航天大道1号", ("510000", "513400", "513401"), "航天大道1号"),
        ("四川省凉山州西昌市", ("510000", "513400", "513401"), ""),
        ("吉林省延边朝鲜族自治州延吉市", ("220000", "222400", "222401"), ""),
        ("广西壮族自治区桂林市龙胜各族自治县龙胜镇", ("450000", "450300", "450328"), "龙胜镇"),
        ("内蒙古自治区锡林郭勒盟锡林浩特市", ("150000", "152500", "152502"), ""),
        ("内蒙古鄂尔多斯市伊金霍洛旗阿勒腾席热镇", ("150000", "150600", "150627"), "阿勒腾席热镇"),
        ("广东深圳福田区", ("440000", "440300", "440304"), ""),
        ("深圳市福田区", ("440000", "440300", "440304"), ""),
        ("吉林省吉林市船营区", ("220000", "220200", "220204"), ""),
        ("吉林市船营区", ("220000", "220200", "220204"), ""),
        ("江西南昌市东湖区", ("360000", "360100", "360102"), ""),
        ("广东省东莞市莞城街道", ("440000", "441900", None), "莞城街道"),
        ("广东省福田区", ("440000", "440300", "440304"), ""),
        ("上海市 浦东新区 世纪大道", ("310000", None, "310115"), "世纪大道"),
        ("北京路1号", (None, None, None), "北京路1号"),
        ("朝阳区安贞里", (None, None, None), "朝阳区安贞里"),
        ("湖北省襄樊市", ("420000", None, None), "襄樊市"),
        ("", (None, None, None), ""),
    ],
)
def test_match_address(address: str, codes: tuple[str | None, ...], street: str) -> None:
    found = match_address(address)
    assert found.codes == codes
    assert found.street == street


def test_a_broken_register_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "divisions.json"
    bad.write_text('{"source": "x"}', encoding="utf-8")
    with pytest.raises(DivisionError):
        load(bad)
    with pytest.raises(DivisionError):
        load(tmp_path / "missing.json")
