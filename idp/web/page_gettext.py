"""The ``gettext`` that pages call, remembering the translations of messages without variables.

A page asks for a dozen of them each time it renders, and a catalogue does not change while the
process runs, so each is translated (and escaped) once. The memory is bounded: templates may
translate a variable's value.
"""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Callable

import jinja2
from jinja2.nodes import EvalContext
from markupsafe import Markup

_MAX_REMEMBERED = 4096


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
        translated = translate(string)
        # always a format string, as in jinja2.ext: "%%" is "%" and a Markup escapes the variables
        result: str = (Markup(translated) if eval_ctx.autoescape else translated) % variables
        if not variables and len(remembered) < _MAX_REMEMBERED:
            remembered[key] = result
        return result

    return gettext
