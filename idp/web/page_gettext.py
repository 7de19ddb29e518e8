"""The ``gettext`` and ``ngettext`` that pages call.

A page asks for a dozen messages without variables each time it renders, and a catalogue does
not change while the process runs, so each is translated (and escaped) once. The memory is
bounded: templates may translate a variable's value.

In Slovenian, Croatian and Serbian a word of one letter (v, z, s, k, o, u, a, i) must not end a
line: on a page, the space after it is a no-break space (:func:`glue_one_letter_words`). Mails
and SMS are left as they are (an SMS with a no-break space would no longer be GSM 7-bit).
"""

from __future__ import annotations

import gettext as gettext_module
import re
from collections.abc import Callable, Mapping

import jinja2
from jinja2.nodes import EvalContext
from markupsafe import Markup

_MAX_REMEMBERED = 4096
# a word of one letter, with the space after it, before a word on the same line
_ONE_LETTER_WORD = re.compile(r"(?<![^\s(„«\"])([^\W\d_]) (?=\S)")
NO_BREAK_SPACE = "\u00a0"
_TAG = re.compile(r"(<[^>]*>)")


def one_full_stop(translated: str, variables: Mapping[str, object]) -> str:
    """``translated`` less the full stop right after a placeholder whose value ends with one.

    "Someone asked for a link to sign in to %(client_name)s with this email address." ends on the
    client's name in Slovenian ("… v storitev %(client_name)s."), and names of companies often end
    with a full stop ("Podpis d.o.o.", "Banka d.d."): the sentence would end with two.
    """
    for name, value in variables.items():
        if isinstance(value, str) and value.endswith("."):
            translated = translated.replace(f"%({name})s.", f"%({name})s")
    return translated


def glue_one_letter_words(text: str) -> str:
    """``text`` with a no-break space after each word of one letter: "Prijava v storitev" keeps
    "v" on the line of "storitev". Markup in a message (``<strong class="…">``) is left alone."""
    parts = _TAG.split(text)
    parts[::2] = [_ONE_LETTER_WORD.sub(rf"\1{NO_BREAK_SPACE}", part) for part in parts[::2]]
    return "".join(parts)


def page_gettext(translations: gettext_module.NullTranslations, *, glue: bool = False) -> Callable[..., str]:
    """jinja2.ext's new-style ``gettext`` over ``translations``, with the same results (and, with
    ``glue``, one-letter words glued to the next on pages)."""
    translate = _translator(translations.gettext, glue)
    remembered: dict[tuple[str, bool], str] = {}

    @jinja2.pass_eval_context
    def gettext(eval_ctx: EvalContext, string: str, /, **variables: object) -> str:
        if not variables:
            key = (string, eval_ctx.autoescape)
            found = remembered.get(key)
            if found is not None:
                return found
        translated = one_full_stop(translate(string, eval_ctx.autoescape), variables)
        # always a format string, as in jinja2.ext: "%%" is "%" and a Markup escapes the variables
        result: str = (Markup(translated) if eval_ctx.autoescape else translated) % variables
        if not variables and len(remembered) < _MAX_REMEMBERED:
            remembered[key] = result
        return result

    return gettext


def page_ngettext(translations: gettext_module.NullTranslations, *, glue: bool = False) -> Callable[..., str]:
    """jinja2.ext's new-style ``ngettext`` over ``translations`` (``num`` is a variable too)."""

    @jinja2.pass_eval_context
    def ngettext(eval_ctx: EvalContext, singular: str, plural: str, num: int, /, **variables: object) -> str:
        variables.setdefault("num", num)
        translated = translations.ngettext(singular, plural, num)
        if glue and eval_ctx.autoescape:
            translated = glue_one_letter_words(translated)
        translated = one_full_stop(translated, variables)
        return (Markup(translated) if eval_ctx.autoescape else translated) % variables

    return ngettext


def _translator(gettext: Callable[[str], str], glue: bool) -> Callable[[str, bool], str]:
    if not glue:
        return lambda string, _on_page: gettext(string)
    return lambda string, on_page: glue_one_letter_words(gettext(string)) if on_page else gettext(string)
