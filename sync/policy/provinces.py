"""Vietnam's provinces before and after the 2025 administrative reform.

Since 2025-07-01 (Resolution 202/2025/QH15 of the National Assembly) there are 34
provincial-level units instead of 63: 11 kept their territory, 52 were merged into 23, and
the district level was abolished. Each merged province carries the statistical code of the
former province whose seat it keeps (Binh Duong, 74, and Ba Ria-Vung Tau, 77, are now part of
Ho Chi Minh City, 79). :data:`MERGED_INTO` maps every code of the 63 to its province today, so a
source can rewrite its province codes and a manifest can offer either map.
"""

from __future__ import annotations

# the 63 provinces and centrally-run cities from 2008 to 2025-06-30, by their statistical code
PROVINCES_BEFORE_2025: tuple[str, ...] = tuple(
    (
        "01 02 04 06 08 10 11 12 14 15 17 19 20 22 24 25 26 27 30 31 33 34 35 36 37 38 40 42 "
        "44 45 46 48 49 51 52 54 56 58 60 62 64 66 67 68 70 72 74 75 77 79 80 82 83 84 86 87 "
        "89 91 92 93 94 95 96"
    ).split()
)

# the 34 provincial-level units since 2025-07-01: code -> name, and the former codes each holds
PROVINCES_2025: dict[str, tuple[str, tuple[str, ...]]] = {
    "01": ("Hà Nội", ("01",)),
    "04": ("Cao Bằng", ("04",)),
    "08": ("Tuyên Quang", ("02", "08")),
    "11": ("Điện Biên", ("11",)),
    "12": ("Lai Châu", ("12",)),
    "14": ("Sơn La", ("14",)),
    "15": ("Lào Cai", ("10", "15")),
    "19": ("Thái Nguyên", ("06", "19")),
    "20": ("Lạng Sơn", ("20",)),
    "22": ("Quảng Ninh", ("22",)),
    "24": ("Bắc Ninh", ("24", "27")),
    "25": ("Phú Thọ", ("17", "25", "26")),
    "31": ("Hải Phòng", ("30", "31")),
    "33": ("Hưng Yên", ("33", "34")),
    "37": ("Ninh Bình", ("35", "36", "37")),
    "38": ("Thanh Hóa", ("38",)),
    "40": ("Nghệ An", ("40",)),
    "42": ("Hà Tĩnh", ("42",)),
    "44": ("Quảng Trị", ("44", "45")),
    "46": ("Huế", ("46",)),
    "48": ("Đà Nẵng", ("48", "49")),
    "51": ("Quảng Ngãi", ("51", "62")),
    "52": ("Gia Lai", ("52", "64")),
    "56": ("Khánh Hòa", ("56", "58")),
    "66": ("Đắk Lắk", ("54", "66")),
    "68": ("Lâm Đồng", ("60", "67", "68")),
    "75": ("Đồng Nai", ("70", "75")),
    "79": ("Thành phố Hồ Chí Minh", ("74", "77", "79")),
    "80": ("Tây Ninh", ("72", "80")),
    "82": ("Đồng Tháp", ("82", "87")),
    "86": ("Vĩnh Long", ("83", "84", "86")),
    "91": ("An Giang", ("89", "91")),
    "92": ("Cần Thơ", ("92", "93", "94")),
    "96": ("Cà Mau", ("95", "96")),
}

# every code of the 63 -> the code of its province since 2025-07-01
MERGED_INTO: dict[str, str] = {
    old: new for new, (_, olds) in PROVINCES_2025.items() for old in olds
}
