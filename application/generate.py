"""A synthetic district, deterministic for a seed, as CSV files ``liudong import`` reads:
residents with valid identity numbers (region, birth date, sequence, check character), Chinese
names, hometowns and employers, spread over the register's areas; a few rows per thousand are
deliberately wrong (a bad check character, a date in the future, an unknown area) so that an
import shows its report of refused rows."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

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


@dataclass(frozen=True)
class DistrictFiles:
    residents: Path
    rows: int
    flawed: int


def generate_district(out: Path, *, residents: int, areas: list[str], seed: int = 7,
                      today: date = date(2026, 11, 25), flawed_per_thousand: int = 3) -> DistrictFiles:
    """Write ``out/residents.csv``; returns what was written."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data, reproducible by seed)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "residents.csv"
    issued: set[str] = set()
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
            if rng.randrange(1000) < flawed_per_thousand:
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
    return DistrictFiles(path, residents, flawed)
