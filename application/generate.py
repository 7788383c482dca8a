"""A synthetic district, deterministic for a seed and a day, as the CSV files ``liudong import``
reads, shaped as issue 9 describes the seed's district (at 260,000 residents about 80,000 in
sites and the rest renting):

* ``sites.csv``: housing sites sized as the seed counts them (of 70, 30 over 1,000 residents
  and 19 of 500 to 1,000; about 80,000 residents in sites at 260,000), with operators and
  facilities;
* ``residents.csv``: residents with valid identity numbers (region, birth date, sequence,
  check character), Chinese names, hometowns and employers, spread over the register's areas;
* ``moves.csv``: each site's residents moving in, most of the others' rented rooms (with the
  landlord and address) or employers' dormitories from the day they registered, then a year of
  moves between sites and rooms, departures and returns, in date order;
* ``disputes.csv``: a year of disputes with a resident as a party. No import loads them yet
  (``liudong import`` takes sites, residents and moves); they are the bodies of
  ``POST /disputes``, the resident named by identity number and the site by its code.

A few rows per thousand are deliberately wrong, for reasons that do not pass with time (a bad
check character, a registration before the birth date, an unknown area or site), so that an
import shows its report of refused rows, exactly that many. A wrong move is an extra row beside
the good ones, so no later move of the same resident fails with it. Import the sites first,
then the residents, then the moves."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from application.import_housing import MOVE_COLUMNS, MOVE_OPTIONAL, SITE_COLUMNS, SITE_OPTIONAL
from application.imports import OPTIONAL_COLUMNS, RESIDENT_COLUMNS
from domain.common import OFFICE_TZ
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
# Disputes as the office logs them: category, what it is about, the other party's kind.
DISPUTES = (("wages_and_labour", "工资拖欠三个月", "employer"), ("wages_and_labour", "工伤赔偿未落实", "employer"),
            ("housing", "押金不退", "landlord"), ("housing", "房租上涨纠纷", "landlord"),
            ("neighbours", "邻里噪音纠纷", "other"), ("public_order", "电动车被盗", "other"),
            ("sanitation", "楼道垃圾堆放", "site_operator"), ("other", "子女入学咨询", "other"))
DISPUTE_COLUMNS = ("id_number", "category", "description", "other_party", "other_party_kind", "site_code", "area",
                   "priority", "occurred_on")
FULL_SIZE = 260_000  # the seed's district, which the site sizes below describe
# Of the residents not in a site: a rented room, an employer's dormitory, or housing not recorded.
RENTED, DORMITORY = 0.85, 0.08
DISPUTES_PER_THOUSAND = 10  # a year's disputes per thousand residents
NO_SITE = "S000"  # never a site's code: they run from S001
NO_AREA = "nowhere"


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
    disputes: Path | None = None
    dispute_rows: int = 0


def office_today() -> date:
    """Today where the office is (Asia/Shanghai), the day the domain judges dates by."""
    return datetime.now(OFFICE_TZ).date()


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def generate_district(out: Path, *, residents: int, areas: list[str], seed: int = 7, sites: int = 70,
                      today: date | None = None, flawed_per_thousand: int = 3) -> DistrictFiles:
    """Write ``sites.csv``, ``residents.csv``, ``moves.csv`` and ``disputes.csv`` into ``out``,
    dated up to ``today`` (default: the office's today); returns what was written. The same
    seed and day give the same files."""
    today = today or office_today()
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
            name = _person(rng)
            registered = today - timedelta(days=rng.randrange(3 * 365))
            area = rng.choice(areas)
            wrong = rng.randrange(1000) < flawed_per_thousand
            if wrong:  # wrong whatever the day it is imported
                flawed += 1
                flaw = rng.randrange(3)
                if flaw == 0:
                    number = first17 + ("0" if number[-1] != "0" else "1")  # a wrong check character
                elif flaw == 1:
                    registered = birth - timedelta(days=rng.randint(1, 365))  # before they were born
                else:
                    area = NO_AREA
            writer.writerow([number, name, f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}", hometown,
                             rng.choice(EMPLOYERS) if rng.random() < 0.85 else "", area, registered.isoformat(),
                             rng.choice(RELATIONS)])
            if not wrong:
                valid.append((number, registered, area))
    site_path, codes = _write_sites(out, random.Random(seed + 1), sites, residents, areas)  # noqa: S311
    moves = _Moves(random.Random(seed + 2), codes, areas, today)  # noqa: S311
    moves_path, move_rows, flawed_moves = moves.write(out, valid, flawed_per_thousand)
    disputes_path, dispute_rows = _write_disputes(out, random.Random(seed + 3), valid, moves.site_of,  # noqa: S311
                                                  moves.away, today)
    return DistrictFiles(path, residents, flawed, site_path, len(codes), moves_path, move_rows, flawed_moves,
                         disputes_path, dispute_rows)


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


class _Moves:
    """``moves.csv``: each site filled to its planned occupants, the others housed from the day
    they registered, then a year of changes. Every row is one the domain takes in the file's
    order: a person's rows are dated in the order they are made, and a bed given up is not given
    again (it may free up only after the day another would take it), so no site is ever full."""

    def __init__(self, rng: random.Random, codes: dict[str, tuple[int, int, str]], areas: list[str],
                 today: date) -> None:
        self.rng, self.codes, self.areas, self.today = rng, codes, areas, today
        self.year_ago = today - timedelta(days=365)
        self.rows: list[tuple[date, int, list[str]]] = []  # date, order made (within a day), row
        self.free = {code: capacity for code, (_, capacity, _) in codes.items()}
        self.site_of: dict[str, str] = {}  # number -> the site they live in at the end
        self.away: set[str] = set()  # numbers of those departed at the end

    def later(self, than: date, days: int) -> date:
        """A day of the past year after ``than`` (or ``than`` itself, if today)."""
        return min(self.today, max(than, self.year_ago) + timedelta(days=self.rng.randint(1, days)))

    def add(self, when: date, *row: str) -> None:
        self.rows.append((when, len(self.rows), [row[0], row[1], when.isoformat(), *row[2:]]))

    def room(self, number: str, when: date, area: str) -> None:
        rng = self.rng
        self.add(when, number, "private_housing", "", area, "", "rented",
                 f"{rng.choice(SITE_NAMES)}村{rng.randint(1, 300)}号{rng.randint(101, 608)}室", _person(rng))
        self.site_of.pop(number, None)

    def into_site(self, number: str, when: date, code: str) -> None:
        self.add(when, number, "into_site", code, "", "")
        self.free[code] -= 1
        self.site_of[number] = code

    def departure(self, number: str, when: date) -> None:
        rng = self.rng
        self.add(when, number, "departed", "", "", rng.choice(DEPARTURE_REASONS))
        self.site_of.pop(number, None)
        self.away.add(number)
        if rng.random() < 0.25:
            self.add(self.later(when, 120), number, "returned", "", rng.choice(self.areas), "")
            self.away.discard(number)

    def a_free_site(self, leaving: str | None = None) -> str | None:
        others = [c for c, beds in self.free.items() if beds > 0 and c != leaving]
        return self.rng.choice(others) if others else None

    def write(self, out: Path, valid: list[tuple[str, date, str]], flawed_per_thousand: int) -> tuple[Path, int, int]:
        rng = self.rng
        people = list(valid)
        rng.shuffle(people)
        at = 0
        for code, (occupants, _, _) in self.codes.items():
            for number, registered, _ in people[at:at + occupants]:
                when = min(self.today, registered + timedelta(days=rng.randint(0, 60)))
                self.into_site(number, when, code)
                roll = rng.random()
                if roll < 0.02:  # to another site with a bed free
                    other = self.a_free_site(leaving=code)
                    if other is not None:
                        self.into_site(number, self.later(when, 200), other)
                elif roll < 0.05:  # to a room rented from a villager
                    self.room(number, self.later(when, 200), rng.choice(self.areas))
                elif roll < 0.09:
                    self.departure(number, self.later(when, 200))
            at += occupants
        for number, registered, area in people[at:]:  # renting, most of them
            housed = rng.random()
            if housed < RENTED:
                self.room(number, registered, area)
            elif housed < RENTED + DORMITORY:
                self.add(registered, number, "private_housing", "", area, "", "employer_dormitory",
                         f"{rng.choice(EMPLOYERS)}职工宿舍{rng.randint(1, 20)}栋", "")
            roll = rng.random()
            if roll < 0.03:  # to another room
                self.room(number, self.later(registered, 300), rng.choice(self.areas))
            elif roll < 0.045:  # into a site with a bed free
                site = self.a_free_site()
                if site is not None:
                    self.into_site(number, self.later(registered, 300), site)
            elif roll < 0.085:
                self.departure(number, self.later(registered, 300))
        self.rows.sort(key=lambda r: (r[0], r[1]))
        flawed = 0
        path = out / "moves.csv"
        width = len(MOVE_COLUMNS) + len(MOVE_OPTIONAL)
        with path.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(MOVE_COLUMNS + MOVE_OPTIONAL)
            for _, _, row in self.rows:
                writer.writerow(row + [""] * (width - len(row)))
                if rng.randrange(1000) < flawed_per_thousand:  # an extra row, refused, changing nothing
                    flawed += 1
                    wrong = ([row[0], "into_site", row[2], NO_SITE, "", ""] if rng.random() < 0.5
                             else [row[0], "private_housing", row[2], "", NO_AREA, ""])
                    writer.writerow(wrong + [""] * (width - len(wrong)))
        return path, len(self.rows) + flawed, flawed


def _write_disputes(out: Path, rng: random.Random, valid: list[tuple[str, date, str]], site_of: dict[str, str],
                    away: set[str], today: date) -> tuple[Path, int]:
    """``disputes.csv``: a year's disputes, each with a resident on the register (by identity
    number) and an outside party, at the resident's site at the end of the year if any."""
    path = out / "disputes.csv"
    count = round(len(valid) * DISPUTES_PER_THOUSAND / 1000)
    chosen = rng.sample(valid, min(count, len(valid)))
    rows: list[tuple[date, list[str]]] = []
    for number, registered, area in chosen:
        category, description, kind = rng.choice(DISPUTES)
        other = (rng.choice(EMPLOYERS) if kind == "employer" else "集中居住点管理处" if kind == "site_operator"
                 else _person(rng))
        occurred = max(registered, today - timedelta(days=365)) + timedelta(days=rng.randint(0, 200))
        occurred = min(occurred, today)
        priority = rng.choices(("low", "normal", "high", "urgent"), weights=(2, 6, 2, 1))[0]
        code = site_of.get(number, "") if number not in away else ""
        rows.append((occurred, [number, category, description, other, kind, code, "" if code else area, priority,
                                occurred.isoformat()]))
    rows.sort(key=lambda r: r[0])
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(DISPUTE_COLUMNS)
        writer.writerows(row for _, row in rows)
    return path, len(rows)

