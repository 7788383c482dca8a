"""A synthetic district, deterministic for a seed, as the CSV files ``liudong import`` reads:

* ``sites.csv``: housing sites sized as the seed counts them (of 70, 30 over 1,000 residents
  and 19 of 500 to 1,000; about 80,000 residents in sites at 260,000), with operators and
  facilities;
* ``residents.csv``: residents with valid identity numbers (region, birth date, sequence,
  check character), Chinese names, hometowns and employers, spread over the register's areas;
* ``moves.csv``: each site's residents moving in, then a year of moves between sites, to
  rented housing, departures and returns, in date order.

A few rows per thousand are deliberately wrong (a bad check character, a date in the future,
an unknown area or site) so that an import shows its report of refused rows. Import the
sites first, then the residents, then the moves."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from application.import_housing import MOVE_COLUMNS, MOVE_OPTIONAL, SITE_COLUMNS, SITE_OPTIONAL
from application.imports import OPTIONAL_COLUMNS, RESIDENT_COLUMNS
from domain.identity import check_character

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
            "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅志强玉兰海燕俊峰雪梅文斌春燕晓东"
# Where the district's migrant workers come from: province, and a region code of it.
HOMETOWNS = (("Henan", "411302"), ("Sichuan", "510122"), ("Anhui", "341222"), ("Guizhou", "520221"),
             ("Hunan", "430124"), ("Jiangxi", "360721"), ("Hubei", "421182"), ("Guangxi", "450881"),
             ("Yunnan", "530381"), ("Chongqing", "500235"), ("Gansu", "620422"), ("Shaanxi", "610427"))
EMPLOYERS = ("恒力纺织", "吉利汽车零部件", "北仑港集装箱码头", "宁钢", "大港造船", "金田铜业", "海天塑机", "申洲针织",
             "小港电子", "新碶物流")
RELATIONS = ("head", "spouse", "child", "parent", "other_relative", "unrelated", "")


SITE_NAMES = ("银杏", "春晓", "新碶", "大碶", "小港", "霞浦", "柴桥", "白峰", "梅山", "戚家山", "红联", "渡头",
              "算山", "青峙", "高塘", "凤凰", "长山", "太河", "林唐", "沙湾")
OPERATORS = (("village_cooperative", "{place}村股份经济合作社"), ("employer", "{employer}"),
             ("government_entrusted", "{place}社区服务中心"))
FACILITIES = ("kindergarten", "school", "police_post", "clinic", "canteen", "bathhouse", "market",
              "activity_room", "library", "laundry")
DEPARTURE_REASONS = ("returned to hometown", "work ended", "moved to another city")
FULL_SIZE = 260_000  # the seed's district, which the site sizes below describe


@dataclass(frozen=True)
class DistrictFiles:
    residents: Path
    rows: int
    flawed: int
    sites: Path | None = None
    site_rows: int = 0
    moves: Path | None = None
    move_rows: int = 0
    flawed_moves: int = 0


def generate_district(out: Path, *, residents: int, areas: list[str], seed: int = 7, sites: int = 70,
                      today: date = date(2026, 11, 25), flawed_per_thousand: int = 3) -> DistrictFiles:
    """Write ``sites.csv``, ``residents.csv`` and ``moves.csv`` into ``out``; returns what was written."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data, reproducible by seed)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "residents.csv"
    issued: set[str] = set()
    valid: list[tuple[str, date, str]] = []  # the rows an import registers: number, registered on, area
    flawed = 0
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(RESIDENT_COLUMNS + OPTIONAL_COLUMNS)
        for _ in range(residents):
            hometown, region = rng.choice(HOMETOWNS)
            while True:
                birth = date(1960, 1, 1) + timedelta(days=rng.randrange(16_800))
                first17 = f"{region}{birth:%Y%m%d}{rng.randint(0, 999):03d}"
                number = first17 + check_character(first17)
                if number not in issued:
                    issued.add(number)
                    break
            name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
            registered = today - timedelta(days=rng.randrange(3 * 365))
            area = rng.choice(areas)
            wrong = rng.randrange(1000) < flawed_per_thousand
            if wrong:
                flawed += 1
                flaw = rng.randrange(3)
                if flaw == 0:
                    number = first17 + ("0" if number[-1] != "0" else "1")  # a wrong check character
                elif flaw == 1:
                    registered = today + timedelta(days=10)  # in the future
                else:
                    area = "nowhere"
            writer.writerow([number, name, f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}", hometown,
                             rng.choice(EMPLOYERS) if rng.random() < 0.85 else "", area, registered.isoformat(),
                             rng.choice(RELATIONS)])
            if not wrong:
                valid.append((number, registered, area))
    site_path, codes = _write_sites(out, random.Random(seed + 1), sites, residents, areas)  # noqa: S311
    moves_path, moves, flawed_moves = _write_moves(out, random.Random(seed + 2), codes, valid, areas,  # noqa: S311
                                                   today, flawed_per_thousand)
    return DistrictFiles(path, residents, flawed, site_path, len(codes), moves_path, moves, flawed_moves)


def _site_sizes(rng: random.Random, sites: int, residents: int) -> list[int]:
    """Occupants per site: at full size 30 sites of 1,000 to 3,000, 19 of 500 to 1,000, the
    rest of 100 to 500 (of 70; other counts in proportion), scaled to the residents asked for."""
    large, medium = round(sites * 30 / 70), round(sites * 19 / 70)
    full = ([rng.randint(1_000, 3_000) for _ in range(large)] + [rng.randint(500, 1_000) for _ in range(medium)]
            + [rng.randint(100, 500) for _ in range(sites - large - medium)])
    scale = residents / FULL_SIZE
    return [max(1, round(n * scale)) for n in full]


def _write_sites(out: Path, rng: random.Random, sites: int, residents: int,
                 areas: list[str]) -> tuple[Path, dict[str, tuple[int, int, str]]]:
    """``sites.csv``; returns code -> (occupants planned, capacity, area)."""
    path = out / "sites.csv"
    codes: dict[str, tuple[int, int, str]] = {}
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(SITE_COLUMNS + SITE_OPTIONAL)
        for n, occupants in enumerate(_site_sizes(rng, sites, residents), start=1):
            code, area, place = f"S{n:03d}", rng.choice(areas), rng.choice(SITE_NAMES)
            capacity = occupants + max(2, occupants // 10)  # some beds free, for the year's moves
            operator_type, operator = rng.choice(OPERATORS)
            facilities = sorted(rng.sample(FACILITIES, rng.randint(2, 6)))
            writer.writerow([code, f"{place}{n}号集中居住点", area, f"{place}路{rng.randint(1, 300)}号", operator_type,
                             operator.format(place=place, employer=rng.choice(EMPLOYERS)), capacity,
                             ";".join(facilities)])
            codes[code] = (occupants, capacity, area)
    return path, codes


def _write_moves(out: Path, rng: random.Random, codes: dict[str, tuple[int, int, str]],
                 valid: list[tuple[str, date, str]], areas: list[str], today: date,
                 flawed_per_thousand: int) -> tuple[Path, int, int]:
    """``moves.csv``: each site filled to its planned occupants, then a year of changes."""
    people = list(valid)
    rng.shuffle(people)
    rows: list[tuple[date, int, list[str]]] = []  # date, order within the day, row
    free = {code: capacity for code, (_, capacity, _) in codes.items()}
    at = 0
    year_ago = today - timedelta(days=365)

    def later(than: date, days: int) -> date:
        return min(today, max(than, year_ago) + timedelta(days=rng.randint(1, days)))

    for code, (occupants, _, _) in codes.items():
        for number, registered, _ in people[at:at + occupants]:
            when = min(today, registered + timedelta(days=rng.randint(0, 60)))
            rows.append((when, len(rows), [number, "into_site", when.isoformat(), code, "", ""]))
            free[code] -= 1
            site = code
            roll = rng.random()
            if roll < 0.02:  # to another site with a bed free
                others = [c for c, beds in free.items() if beds > 0 and c != site]
                if others:
                    other = rng.choice(others)
                    when = later(when, 200)
                    rows.append((when, len(rows), [number, "into_site", when.isoformat(), other, "", ""]))
                    free[other] -= 1
                    free[site] += 1
            elif roll < 0.05:  # to a room rented from a villager
                when = later(when, 200)
                rows.append((when, len(rows), [number, "private_housing", when.isoformat(), "", rng.choice(areas), "",
                                               "rented", "", f"村民{rng.randint(1, 9999)}"]))
            elif roll < 0.09:
                when = _departure(rows, rng, number, later(when, 200), areas, later)
        at += occupants
    for number, registered, _ in people[at:]:
        if rng.random() < 0.04:
            _departure(rows, rng, number, later(registered, 300), areas, later)
    rows.sort(key=lambda r: (r[0], r[1]))
    flawed = 0
    path = out / "moves.csv"
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(MOVE_COLUMNS + MOVE_OPTIONAL)
        for _, _, row in rows:
            if rng.randrange(1000) < flawed_per_thousand:
                flawed += 1
                if rng.random() < 0.5:
                    row = [row[0], row[1], (today + timedelta(days=5)).isoformat(), *row[3:]]  # in the future
                else:
                    row = [row[0], "into_site", row[2], "S999", "", ""]  # no such site
            writer.writerow(row + [""] * (len(MOVE_COLUMNS) + len(MOVE_OPTIONAL) - len(row)))
    return path, len(rows), flawed


def _departure(rows: list[tuple[date, int, list[str]]], rng: random.Random, number: str, when: date,
               areas: list[str], later: Any) -> date:
    rows.append((when, len(rows), [number, "departed", when.isoformat(), "", "", rng.choice(DEPARTURE_REASONS)]))
    if rng.random() < 0.25:
        when = later(when, 120)
        rows.append((when, len(rows), [number, "returned", when.isoformat(), "", rng.choice(areas), ""]))
    return when
