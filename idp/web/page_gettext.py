"""The ``gettext`` that pages call, remembering the translations of messages without variables.

A page asks for a dozen of them each time it renders, and a catalogue does not change while the
process runs, so each is translated (and escaped) once. The memory is bounded: templates may
translate a variable's value.
"""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Callable, Mapping

import jinja2
from jinja2.nodes import EvalContext
from markupsafe import Markup

_MAX_REMEMBERED = 4096


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


def page_gettext(translations: gettext_module.NullTranslations) -> Callable[..., str]:
    """jinja2.ext's new-style ``gettext`` over ``translations``, with the same results."""
    translate = translations.gettext
    remembered: dict[tuple[str, bool], str] = {}

    @jinja2.pass_eval_context
    def gettext(eval_ctx: EvalContext, string: str, /, **variables: object) -> str:
        if not variables:
            key = (string, eval_ctx.autoescape)
            found = remembered.get(key)
            if found is not None:
                return found
        translated = one_full_stop(translate(string), variables)
        # always a format string, as in jinja2.ext: "%%" is "%" and a Markup escapes the variables
        result: str = (Markup(translated) if eval_ctx.autoescape else translated) % variables
        if not variables and len(remembered) < _MAX_REMEMBERED:
            remembered[key] = result
        return result

    return gettext
