"""The messages a form shows beside its fields, as templates a translation catalogue can hold.

Validation produces English text with the values filled in ("Must be at least
0."); :func:`translate_message` recognises a filled-in template and returns it
translated by the caller's *gettext*, so the web app shows it in the user's
language. Texts that match no template (a schema's own wording) pass unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache


def N_(text: str) -> str:
    """Mark *text* for translation catalogues (Babel extracts ``N_``) without translating it here."""
    return text


REQUIRED = N_("This field is required.")
NOT_A_NUMBER = N_("Enter a number.")
NOT_A_WHOLE_NUMBER = N_("Enter a whole number.")
NOT_A_CHOICE = N_("Choose one of the options.")
NOT_YES_OR_NO = N_("Choose yes or no.")
NOT_A_DATE = N_("Enter a date as YYYY-MM-DD.")
NOT_A_DATE_TIME = N_("Enter a date and time as YYYY-MM-DD HH:MM.")
NOT_IN_THE_PAST = N_("Must not be in the past.")
NOT_AN_EMAIL = N_("Enter an e-mail address.")
WRONG_FORMAT = N_("The value does not have the expected format.")
AT_LEAST = N_("Must be at least %(limit)s.")
MORE_THAN = N_("Must be more than %(limit)s.")
AT_MOST = N_("Must be at most %(limit)s.")
LESS_THAN = N_("Must be less than %(limit)s.")
MIN_LENGTH = N_("Must be at least %(limit)s characters long.")
MAX_LENGTH = N_("Must be at most %(limit)s characters long.")
MIN_ROWS = N_("Add at least %(limit)s row(s).")
MAX_ROWS = N_("Enter at most %(limit)s row(s).")
TOTAL = N_("The rows must add up to %(limit)s; they add up to %(total)s.")
NONE_CHOSEN = N_("None of the rows is chosen.")

TEMPLATES = (
    REQUIRED,
    NOT_A_NUMBER,
    NOT_A_WHOLE_NUMBER,
    NOT_A_CHOICE,
    NOT_YES_OR_NO,
    NOT_A_DATE,
    NOT_A_DATE_TIME,
    NOT_IN_THE_PAST,
    NOT_AN_EMAIL,
    WRONG_FORMAT,
    AT_LEAST,
    MORE_THAN,
    AT_MOST,
    LESS_THAN,
    MIN_LENGTH,
    MAX_LENGTH,
    MIN_ROWS,
    MAX_ROWS,
    TOTAL,
    NONE_CHOSEN,
)


@cache
def _pattern(template: str) -> re.Pattern[str]:
    placeholder = re.escape(re.escape("%(")) + r"(\w+)" + re.escape(re.escape(")s"))
    return re.compile("^" + re.sub(placeholder, r"(?P<\1>\\S+?)", re.escape(template)) + "$")


def translate_message(message: str, gettext: Callable[[str], str]) -> str:
    """Return *message* translated through *gettext* if it fills in one of :data:`TEMPLATES`."""
    for template in TEMPLATES:
        match = _pattern(template).match(message)
        if match:
            translated = gettext(template)
            return translated % match.groupdict() if match.groupdict() else translated
    return message
