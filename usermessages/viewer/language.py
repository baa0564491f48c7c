"""The viewer's language for catalog texts: the reader's choice (a cookie), else the browser's.

Only the texts of messages (summaries, remediations) are translated; the
pages' own words stay English.
"""

from __future__ import annotations

from fastapi import Request

from usermessages.reader import Reader
from usermessages.translations import content_language

COOKIE = "usermessages_language"
COOKIE_SECONDS = 365 * 24 * 3600
# Each language by its own name, as language pickers show them.
NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "ja": "日本語", "zh_CN": "简体中文"}


def chosen(request: Request) -> str:
    """The cookie's language if the catalog has it, else Accept-Language's best, else English."""
    found = getattr(request.state, "viewer_language", None)
    if found is None:
        reader: Reader = request.app.state.reader
        cookie = request.cookies.get(COOKIE, "")
        found = (cookie if cookie in reader.translator.languages
                 else reader.translator.negotiate(request.headers.get("accept-language")))
        request.state.viewer_language = found
    return found


def choices(request: Request) -> list[tuple[str, str]]:
    """(language, its name) for the picker, the catalog's languages in its order."""
    reader: Reader = request.app.state.reader
    return [(code, NAMES.get(code, content_language(code)))
            for code in reader.translator.languages]


def safe_back(path: str) -> str:
    """Where to return after a choice: a viewer page of this site, nothing else."""
    if path.startswith("/viewer/") and not path.startswith("//") and "\\" not in path \
            and all(c.isprintable() and not c.isspace() for c in path) and len(path) <= 2048:
        return path
    return "/viewer/messages"
