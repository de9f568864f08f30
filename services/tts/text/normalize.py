"""Reply text as it should be spoken: what Kokoro's phonemiser (espeak-ng) would misread or read
aloud literally is rewritten before synthesis.

Order matters: control characters go first (the markdown parser turns NUL into U+FFFD, and espeak
reads what is left of the rest), then markdown (markup.py: its `*`, `#`, `[..](..)` are syntax, not words),
then emoji, addresses and abbreviations (their dots must not read as sentence ends), then numbers,
most specific first (phone numbers, money, times, percentages, units, ordinals, ranges, years), and
whatever digits are left become plain cardinals. Number words come from num2words.

Heuristics, on purpose: a bare four-digit number from 1100 to 2099 is read as a year ("in 1999",
"1500 people" -> "fifteen hundred people"); "St."/"Dr." before a capitalised word are Saint/Doctor,
otherwise Street/Drive; digits glued to letters ("mp3", "4G") are left to espeak.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal

from num2words import num2words

from .markup import drop_emoji, markdown_to_text

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

# ---- addresses ------------------------------------------------------------------------------

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_DOMAIN = re.compile(r"\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|ai|dev|co|uk|gov|edu|app)\b", re.IGNORECASE)


def _dotted(name: str) -> str:
    return " dot ".join(p for p in name.split(".") if p)


def _spoken_url(m: re.Match[str]) -> str:
    # Only the site is worth hearing; a path or query is noise on a call.
    host = re.sub(r"^(?:https?://)?(?:www\.)?", "", m.group(0), flags=re.IGNORECASE)
    return _dotted(re.split(r"[/?#:]", host, maxsplit=1)[0])


def _spoken_email(m: re.Match[str]) -> str:
    user, _, domain = m.group(0).partition("@")
    return f"{_dotted(user)} at {_dotted(domain)}"


# ---- abbreviations --------------------------------------------------------------------------

_TITLES = {
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Prof": "Professor",
    "Jr": "Junior",
    "Sr": "Senior",
    "Mt": "Mount",
    "Ave": "Avenue",
    "Rd": "Road",
    "Blvd": "Boulevard",
    "approx": "approximately",
    "dept": "department",
    "appt": "appointment",
}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTH_ABBR = {m[:3]: m for m in _MONTHS} | {"Sept": "September"}

_ABBREVIATIONS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"\b[Ee]\.g\.(?=\s|,|$)"), "for example"),
    (re.compile(r"\b[Ii]\.e\.(?=\s|,|$)"), "that is"),
    # "etc." so often ends a sentence that its full stop is kept when one is due
    (re.compile(r"\betc\.(?=\s+[A-Z]|\s*$)"), "et cetera."),
    (re.compile(r"\betc\.?"), "et cetera"),
    (re.compile(r"\bvs\.?(?=\s)"), "versus"),
    (re.compile(r"\bSt\.?(?=\s+[A-Z])"), "Saint"),
    (re.compile(r"\bSt\.(?=\s*$)"), "Street."),
    (re.compile(r"\bSt\.(?=\s+[a-z,])"), "Street"),
    (re.compile(r"\bDr\.?(?=\s+[A-Z])"), "Doctor"),
    (re.compile(r"\bDr\.(?=\s*$)"), "Drive."),
    (re.compile(r"\bDr\.(?=\s+[a-z,])"), "Drive"),
    (re.compile(r"\b(" + "|".join(_TITLES) + r")\.(?=\s)"), lambda m: _TITLES[m.group(1)]),
    (re.compile(r"\b(" + "|".join(_MONTH_ABBR) + r")\.?(?=\s+\d)"), lambda m: _MONTH_ABBR[m.group(1)]),
    (re.compile(r"\b[Nn]o\.\s?(?=\d)|#(?=\d)"), "number "),
]

# ---- numbers --------------------------------------------------------------------------------

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # 1,234,567.5 or 1234.5


def words(number: str | int) -> str:
    """Cardinal words for "1,234.5" (num2words' commas dropped: they would read as pauses)."""
    return num2words(Decimal(str(number).replace(",", ""))).replace(",", "")


def _is_one(number: str) -> bool:
    return Decimal(number.replace(",", "")) == 1


def _digits(group: str) -> str:
    return " ".join(num2words(int(d)) for d in group)


_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "sen", "sen"),
}
_SCALES = {
    "k": "thousand",
    "K": "thousand",
    "m": "million",
    "M": "million",
    "bn": "billion",
    "thousand": "thousand",
    "million": "million",
    "billion": "billion",
    "trillion": "trillion",
}


def _money(m: re.Match[str]) -> str:
    one, many, cent, cents = _CURRENCIES[m.group(1)]
    amount, scale = m.group(2), m.group(3)
    if scale:  # "$1.5 million" -> "one point five million dollars"
        return f"{words(amount)} {_SCALES[scale]} {many}"
    whole, _, frac = amount.replace(",", "").partition(".")
    if len(frac) != 2:
        return f"{words(amount)} {one if _is_one(amount) else many}"
    major = f"{words(whole)} {one if int(whole) == 1 else many}"
    if int(frac) == 0:
        return major
    minor = f"{words(frac)} {cent if int(frac) == 1 else cents}"
    return minor if int(whole) == 0 else f"{major} and {minor}"


def _clock(hour: int, minute: int, meridiem: str | None) -> str:
    if minute == 0:
        said = words(hour) + ("" if meridiem else " hundred" if hour > 12 or hour == 0 else " o'clock")
    elif minute < 10:
        said = f"{words(hour)} oh {words(minute)}"
    else:
        said = f"{words(hour)} {words(minute)}"
    return f"{said} {meridiem}" if meridiem else said


def _sentence_end_after(m: re.Match[str]) -> str:
    """A full stop for a match that swallowed one ("3 p.m." at the end of a sentence)."""
    swallowed = m.group(0).endswith(".")
    return "." if swallowed and re.match(r"\s*$|\s+[A-Z]", m.string[m.end() :]) else ""


def _time(m: re.Match[str]) -> str:
    meridiem = (m.group("ap").upper() + "M") if m.group("ap") else None
    return _clock(int(m.group("h")), int(m.groupdict().get("m") or 0), meridiem) + _sentence_end_after(m)


_UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"),
    "m": ("meter", "meters"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "KB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "ms": ("millisecond", "milliseconds"),
    "sec": ("second", "seconds"),
    "secs": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "mins": ("minute", "minutes"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    "¢": ("cent", "cents"),
    "USD": ("dollar", "dollars"),
    "EUR": ("euro", "euros"),
    "GBP": ("pound", "pounds"),
}
# Longest first, so "km/h" wins over "km" and "kWh" over "kW".
_UNIT_NAMES = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))


def _unit(m: re.Match[str]) -> str:
    one, many = _UNITS[m.group(2)]
    return f"{words(m.group(1))} {one if _is_one(m.group(1)) else many}"


def _year(value: str) -> str:
    return num2words(int(value), to="year")


def _decade(m: re.Match[str]) -> str:  # 1990s -> nineteen nineties, '90s -> nineties
    said = _year(m.group(1)) if len(m.group(1)) == 4 else words(m.group(1))
    return said[:-1] + "ies" if said.endswith("y") else said + "s"


def _month_day(m: re.Match[str]) -> str:
    day = int(m.group(2))
    return f"{m.group(1)} {num2words(day, to='ordinal')}" if 1 <= day <= 31 else m.group(0)


_NUMBER_RULES: list[Rule] = [
    # phone numbers digit by digit, in their groups: "555-123-4567"
    (
        re.compile(r"(?<![\w-])(?:\+?1[-. ])?\(?(\d{3})\)?[-. ](\d{3})[-.](\d{4})(?![\w-])"),
        lambda m: ", ".join(_digits(g) for g in m.groups()),
    ),
    (
        re.compile(r"\b(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\b"),  # ISO date
        lambda m: f"{_MONTHS[int(m.group(2)) - 1]} {num2words(int(m.group(3)), to='ordinal')}, {m.group(1)}",
    ),
    (re.compile(r"([$€£¥])\s?(" + _NUM + r")(?:\s?(thousand|million|billion|trillion|bn|[kKmM])\b)?"), _money),
    (re.compile(r"\b(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::[0-5]\d)?(?:\s?(?P<ap>[AaPp])\.?[Mm]\b\.?)?"), _time),
    (re.compile(r"\b(?P<h>1[0-2]|0?[1-9])\s?(?P<ap>[AaPp])\.?[Mm]\b\.?"), _time),
    (re.compile(r"(" + _NUM + r")\s?%"), lambda m: f"{words(m.group(1))} percent"),
    (re.compile(r"\b(" + _NUM + r")\s?(" + _UNIT_NAMES + r")(?![\w°])"), _unit),
    (re.compile(r"\b24/7\b"), lambda m: "twenty-four seven"),
    (re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(\d{1,2})(?:st|nd|rd|th)?\b(?![:\d])"), _month_day),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b"), lambda m: num2words(int(m.group(1)), to="ordinal")),
    (re.compile(r"(?:\b|')(1[1-9]\d0|20\d0|[1-9]0)s\b"), _decade),
    # ranges: "5-10 minutes" -> "five to ten minutes" (phone numbers are gone by now)
    (
        re.compile(r"(?<![\d.,])(" + _NUM + r")\s?[-\u2013]\s?(" + _NUM + r")(?![\d.,]*\d)"),
        lambda m: f"{m.group(1)} to {m.group(2)}",
    ),
    (re.compile(r"(?<![\d.,$€£¥])\b(1[1-9]\d\d|20\d\d)\b(?![.,]\d)"), lambda m: _year(m.group(1))),
    (re.compile(r"(?<![\w.])-(?=\d)"), lambda m: "minus "),
    (re.compile(r"\b(" + _NUM + r")\b"), lambda m: words(m.group(1))),
]

# ---- symbols --------------------------------------------------------------------------------

_SYMBOLS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\s*&\s*"), " and "),
    (re.compile(r"(?<=\s)\+(?=\s)"), "plus"),
    (re.compile(r"(?<=\s)=(?=\s)"), "equals"),
    (re.compile(r"\s@\s"), " at "),
    # what espeak would read out by name ("asterisk", "underscore") or choke on
    (re.compile(r"[*_#|~^<>{}\[\]\\`]+"), " "),
]


def drop_control(text: str) -> str:
    """`text` without control characters (NUL, BEL, ESC: a space each, they may sit between words)
    or format characters (zero-width spaces, soft hyphens, BOM: nothing, they sit inside words).
    Whitespace stays: markdown's lines and paragraphs are made of it."""
    return "".join(
        c if c.isspace() else " " if (cat := unicodedata.category(c)) == "Cc" else "" if cat == "Cf" else c
        for c in text
    )


def speakable(text: str) -> str:
    """`text` rewritten for speech; "" when nothing in it can be spoken."""
    text = drop_control(text)
    text = markdown_to_text(text)
    text = drop_emoji(text)
    text = _EMAIL.sub(_spoken_email, text)
    text = _URL.sub(_spoken_url, text)
    text = _DOMAIN.sub(lambda m: _dotted(m.group(0)), text)
    for pattern, repl in _ABBREVIATIONS:
        text = pattern.sub(repl, text)
    for pattern, fn in _NUMBER_RULES:
        text = pattern.sub(fn, text)
    for pattern, repl in _SYMBOLS:
        text = pattern.sub(repl, text)
    text = " ".join(text.split())
    # "dropped 🎉 ." -> "dropped.": the marks that hug the word before them (a dash does not), a
    # matter of spelling, not of punctuation.py's cuts and pauses
    text = re.sub(r"\s+([.,!?;:])", r"\1", text)
    return text if re.search(r"\w", text) else ""
