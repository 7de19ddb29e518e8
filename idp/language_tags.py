"""Language tags (BCP 47, RFC 5646) and the Babel locale identifiers of the catalogues.

Settings, the language cookie, ``<html lang>`` and OIDC ``ui_locales_supported`` use BCP 47 tags
such as ``sr-Latn``; Babel and CLDR name the same locale ``sr_Latn``, which is also the name of its
folder under ``templates/locale``. Only the language, script and region subtags are accepted
(RFC 5646 section 2.1): that is all a page catalogue is ever chosen by.
"""

from __future__ import annotations

import re

_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z]{4})?(?:[-_](?:[A-Za-z]{2}|[0-9]{3}))?$")


def language_tag(value: str) -> str:
    """The canonical BCP 47 spelling of a tag or Babel locale id: ``sr_latn`` → ``sr-Latn``.

    Case follows RFC 5646 section 2.1.1 (language lower case, script title case, region upper
    case). Raises ``ValueError`` for anything that is not language[-Script][-REGION].
    """
    text = value.strip()
    if not _TAG.match(text):
        raise ValueError(f"expected a language tag such as 'sl' or 'sr-Latn', got {value!r}")
    language, *rest = re.split(r"[-_]", text)
    return "-".join([language.lower(), *(part.title() if len(part) == 4 else part.upper() for part in rest)])


def babel_locale(tag: str) -> str:
    """The Babel/CLDR locale identifier (and catalogue folder name) of a tag: ``sr-Latn`` → ``sr_Latn``."""
    return language_tag(tag).replace("-", "_")
