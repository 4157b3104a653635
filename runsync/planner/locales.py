"""The locales a saved sheet may come from, and each one's conventions (separators, months, day periods: CLDR)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

# The locales whose conventions are checked: the five the tests run LibreOffice in, and others with other
# separators, orders or month names (pt-BR and es-ES: `,` decimal; de-CH: `’` grouping; ru-RU: space grouping).
LOCALES = ("en_US", "en_GB", "de_DE", "de_CH", "fr_FR", "pl_PL", "ja_JP", "pt_BR", "es_ES", "it_IT", "nl_NL",
           "ru_RU", "zh_CN", "ko_KR", "sv_SE", "tr_TR")

# Booleans as Excel and LibreOffice show them in their display languages (their TRUE()/FALSE() function names).
BOOLEANS = {"true": True, "false": False, "wahr": True, "falsch": False, "vrai": True, "faux": False,
            "prawda": True, "fałsz": False, "verdadeiro": True, "falso": False, "vero": True, "verdadero": True,
            "waar": True, "onwaar": False, "истина": True, "ложь": False, "sant": True, "falskt": False,
            "doğru": True, "yanliş": False, "yanlış": False}
# Currency symbols a program strips when it reads an amount (each locale's own, from CLDR, and these).
CURRENCIES = ("€", "$", "£", "¥", "￥", "₹", "₩", "₽", "R$", "zł", "CHF", "Fr.", "kr", "US$", "USD", "EUR", "JPY",
              "GBP", "PLN", "BRL", "₺", "元")


@dataclass(frozen=True)
class LocaleData:
    """One locale's conventions, as its readers of numbers, dates and times need them."""

    name: str
    decimal: str
    groups: tuple[str, ...]
    months: dict[str, int]
    periods: dict[str, int]  # day period text (lower case) -> 0 for am, 12 for pm


@cache
def locale_data(name: str) -> LocaleData:
    """The conventions of locale `name` (`de_DE`), from Babel's CLDR tables."""
    from babel import (  # CLDR data: loaded only when a cell needs judging
        Locale,
        numbers,
    )

    loc = Locale.parse(name)
    group = numbers.get_group_symbol(name)
    groups = {group}
    if group in ("\u202f", "\u00a0", " "):  # programs write any of the three spaces for these locales
        groups |= {"\u202f", "\u00a0", " "}
    if group in ("’", "'"):
        groups |= {"’", "'"}
    months: dict[str, int] = {}
    for context in ("format", "stand-alone"):
        for width in ("abbreviated", "wide"):
            try:
                names = dict(loc.months[context][width])
            except KeyError:
                continue
            for number, text in names.items():
                months[text.lower().rstrip(".")] = number
    periods: dict[str, int] = {}
    for context in ("format", "stand-alone"):
        for width in ("abbreviated", "wide", "narrow"):
            try:
                table = dict(loc.day_periods[context][width])
            except KeyError:
                continue
            for key, add in (("am", 0), ("pm", 12)):
                if key in table:
                    periods[table[key].lower().replace(".", "")] = add
    return LocaleData(name, numbers.get_decimal_symbol(name), tuple(sorted(groups)), months, periods)


def locales_for_delimiter(delimiter: str | None) -> tuple[str, ...]:
    """The locales that may have written a CSV with this delimiter: `;` is what locales with a `,` decimal
    separator save (their list separator); any other delimiter could come from any locale."""
    if delimiter == ";":
        return tuple(name for name in LOCALES if locale_data(name).decimal == ",")
    return LOCALES
