from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
METHOD_MAP = [
    ("market/**.py", "python"),
    ("traceability/**.py", "python"),
    ("logistics/**.py", "python"),
    ("templates/**.html", "jinja2"),
]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def test_every_user_facing_string_has_a_chinese_translation():
    with (ROOT / "translations/zh_Hans_CN/LC_MESSAGES/messages.po").open("rb") as fh:
        catalog = read_po(fh)
    translated = {m.id for m in catalog if m.id and m.string and "fuzzy" not in m.flags}
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT),
        method_map=METHOD_MAP,
        keywords=KEYWORDS,
        directory_filter=lambda d: Path(d).name not in {".venv", "tests", "bench", "instance"},
    ):
        found.add(message if isinstance(message, str) else message[0])
    missing = sorted(found - translated)
    assert missing == [], "run `make extract-messages` and translate: " + repr(missing[:20])
