"""What an inbound text asks for: opt out, opt back in, help, or nothing we act on.

Vendors match the whole message against one keyword list, case-insensitive and trimmed.
``classify`` does the same, a little more forgivingly (punctuation and symbols around the
word, any kind of space, full-width letters, accents: "¡Stop!", a full-width "STOP" and
"arrêt" all count), over the union of the vendors' lists and the FCC's per-se words,
because one business answers for what its recipients sent to any of its vendors.

Since 2025 US consumers may also revoke consent "by any reasonable means", so exact matching
is not enough: a message that is no keyword but reads like a revocation ("please stop
texting me") gets ``likely_revocation=True``. That flag comes from a small, documented
heuristic (see ``_revocation``) and is meant for a human to review, not to act on blindly.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from collections.abc import Iterable

import attrs

from ._errors import ConfigurationError
from ._models import Status

__all__ = ["Classification", "Intent", "Keywords", "classify"]


class Intent(str, enum.Enum):
    """What a message asks for."""

    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    HELP = "help"
    NONE = "none"

    def __str__(self) -> str:
        return self.value


# -- normalisation ---------------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'"})
_INNER_APOSTROPHE = re.compile(r"(?<=\w)'(?=\w)")


def _fold(text: str) -> str:
    """Lower case, no accents, no invisible characters, compatibility forms unified.

    NFKC turns full-width letters and non-breaking spaces into plain ones; casefold before
    stripping marks, because casefolding can itself produce combining marks ("İ").
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFKD", text)
    kept = (ch for ch in text if not unicodedata.category(ch).startswith(("M", "Cf")))
    return "".join(kept).translate(_APOSTROPHES)


def _is_separator(ch: str) -> bool:
    return ch.isspace() or ch == "_" or unicodedata.category(ch) == "Pd"


def _key(folded: str) -> str:
    """The comparable form of a whole message: edges trimmed, inner spacing and dashes unified.

    Everything before the first and after the last letter or digit goes (punctuation,
    symbols, emoji, spaces), so "STOP." and "'stop' 🛑" are "stop". Inside, runs of
    spaces, dashes and underscores become one space, so "OPT-OUT" is "opt out".
    """
    start = next((i for i, ch in enumerate(folded) if ch.isalnum()), None)
    if start is None:
        return ""
    end = next(i for i in range(len(folded) - 1, -1, -1) if folded[i].isalnum())
    core = "".join(" " if _is_separator(ch) else ch for ch in folded[start : end + 1])
    return " ".join(core.split())


def _display(key: str) -> str:
    return unicodedata.normalize("NFC", key).upper()


# -- keyword sets ----------------------------------------------------------------------------

DEFAULT_OPT_OUT = (
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPT OUT",
    "OPTOUT",
    "OPT-OUT",
    "REMOVE",
    "ARRET",
)
"""FCC per-se words plus every vendor default (RingCentral, Azure, Twilio, AWS, Telnyx, Canada).

"TD" (AWS) is left out on purpose: see ``REVIEW_ONLY``.
"""
DEFAULT_OPT_IN = ("START", "UNSTOP", "SUBSCRIBE", "RESUME", "CONTINUE", "YES")
"""RingCentral, Azure, Twilio and Telnyx defaults. YES is Twilio's: drop it with ``without``
if your campaigns ask recipients to reply YES to something else."""
DEFAULT_HELP = ("HELP", "INFO", "AIDE")

REVIEW_ONLY = {
    "td": "'TD' alone is an opt-out keyword at AWS only; two letters collide with too much "
    "(a bank, 'touchdown') to act on unseen",
}
"""Whole messages flagged as likely revocations rather than acted on, with the reason why.

A business migrating from AWS that wants AWS's behaviour adds it:
``Keywords.default().with_custom(opt_out=["TD"])`` (a configured keyword always wins).
"""


def _keys(words: Iterable[str]) -> frozenset[str]:
    if isinstance(words, str):
        words = [words]  # a single word, not its letters
    keys = set()
    for word in words:
        if not isinstance(word, str):
            raise ConfigurationError(f"keyword {word!r} is not a string")
        key = _key(_fold(word))
        if not key:
            raise ConfigurationError(f"keyword {word!r} has no letters or digits")
        keys.add(key)
    return frozenset(keys)


@attrs.frozen
class Keywords:
    """The words that mean opt out, opt in and help, kept in normalised form.

    Words are compared the way ``classify`` compares messages, so "Opt-Out" and "opt out"
    are one keyword. A word may belong to one set only: a message must not both stop and
    restart messages.
    """

    opt_out: frozenset[str] = attrs.field(converter=_keys)
    opt_in: frozenset[str] = attrs.field(converter=_keys, factory=frozenset)
    help: frozenset[str] = attrs.field(converter=_keys, factory=frozenset)

    def __attrs_post_init__(self) -> None:
        named = {"opt_out": self.opt_out, "opt_in": self.opt_in, "help": self.help}
        seen: dict[str, str] = {}
        for name, keys in named.items():
            for key in sorted(keys):
                if key in seen:
                    raise ConfigurationError(
                        f"keyword {_display(key)!r} is in both {seen[key]} and {name}"
                    )
                seen[key] = name

    @classmethod
    def default(cls) -> Keywords:
        """The union of the vendors' default lists and the FCC's per-se words."""
        return _DEFAULT

    def with_custom(
        self,
        *,
        opt_out: Iterable[str] = (),
        opt_in: Iterable[str] = (),
        help: Iterable[str] = (),
    ) -> Keywords:
        """These keywords plus custom ones, in any case.

        ConfigurationError if a word would be in two sets.
        """
        return Keywords(
            opt_out=self.opt_out | _keys(opt_out),
            opt_in=self.opt_in | _keys(opt_in),
            help=self.help | _keys(help),
        )

    def without(self, *words: str) -> Keywords:
        """These keywords minus ``words`` (from whichever set holds them), e.g. "YES"."""
        drop = _keys(words)
        return Keywords(
            opt_out=self.opt_out - drop, opt_in=self.opt_in - drop, help=self.help - drop
        )

    def intent_of(self, word: str) -> Intent:
        """The intent this set gives ``word`` as a whole message (no heuristic)."""
        return self._intent(_key(_fold(word)))

    def _intent(self, key: str) -> Intent:
        if key in self.opt_out:
            return Intent.OPT_OUT
        if key in self.opt_in:
            return Intent.OPT_IN
        if key in self.help:
            return Intent.HELP
        return Intent.NONE


_DEFAULT = Keywords(opt_out=DEFAULT_OPT_OUT, opt_in=DEFAULT_OPT_IN, help=DEFAULT_HELP)


# -- classification --------------------------------------------------------------------------


@attrs.frozen
class Classification:
    """The verdict on one message.

    ``keyword`` is the matched keyword in normalised upper case ("OPT OUT"), None when no
    keyword matched. ``likely_revocation`` is only ever True with intent NONE: the message
    is not a keyword but reads like one, and a person should decide. ``reason`` says why
    the flag was raised (or which rule matched), for the reviewer.
    """

    intent: Intent
    keyword: str | None = None
    likely_revocation: bool = False
    reason: str | None = None

    @property
    def status(self) -> Status | None:
        """The state an exact keyword asks for, None for help and for everything else."""
        return _STATUS_OF.get(self.intent)


_STATUS_OF = {Intent.OPT_OUT: Status.OPTED_OUT, Intent.OPT_IN: Status.OPTED_IN}
_NOTHING = Classification(Intent.NONE)


def classify(text: str, keywords: Keywords | None = None) -> Classification:
    """Classify a whole inbound message; never raises for any string.

    An exact keyword (after normalisation) gives its intent. Anything else is Intent.NONE,
    flagged ``likely_revocation`` when the heuristic in ``_revocation`` says so.
    """
    if not isinstance(text, str):
        raise TypeError(f"classify() wants the message text as str, got {type(text).__name__}")
    keywords = _DEFAULT if keywords is None else keywords
    folded = _fold(text)
    key = _key(folded)
    intent = keywords._intent(key)
    if intent is not Intent.NONE:
        return Classification(intent, _display(key), reason="exact keyword")
    if key in REVIEW_ONLY:
        return Classification(Intent.NONE, likely_revocation=True, reason=REVIEW_ONLY[key])
    reason = _revocation(folded, keywords)
    if reason is None:
        return _NOTHING
    return Classification(Intent.NONE, likely_revocation=True, reason=reason)


# -- the revocation heuristic ----------------------------------------------------------------
#
# The message is cut into clauses at sentence punctuation (. ! ? , ; : brackets, quotes,
# line breaks), and each clause into words (letters and digits; "don't" is "dont"; dashes
# split words, so "non-stop" is "non stop"). A message is flagged when any of these holds:
#
# 1. A clause is nothing but opt-out keywords and filler words ("please", "now", "thanks",
#    "it", ...): "STOP please", "stop stop stop", "Who is this? Stop.", "ok END".
# 2. A stopping verb (stop, quit, cease, end, cancel) is followed, through at most two small
#    words ("the", "your", "all", ...), by something about messages ("texting", "texts",
#    "sending", "contacting", "subscription", ...): "pls stop sending me these", "cancel my
#    subscription". Not when a negation or question comes just before ("don't stop
#    texting", "why did you stop sending"), nor when the writer speaks of themself ("I'll
#    stop texting you").
# 3. A revocation phrase: unsubscribe, opt (me) out, revoke, remove/delete me or my number,
#    take me off, off your list, don't text/message/contact me, no more texts, leave me
#    alone, wrong number, I don't want these texts.
#
# Deliberately not flagged: "don't stop", "non-stop", "stopped by the store", "bus stop",
# "can you stop by at 5?", "cancel my appointment", "the end".
#
# Limits, accepted for a review flag: English only (beyond ARRET/AIDE and a few French
# and Spanish politeness words); a lone keyword clause is flagged even when it meant
# something else ("Stop, I'll call you", "Cancel. See you Friday"); sarcasm, typos
# ("stpo"), spelled-out or spaced letters ("S T O P") and complaints phrased as questions
# ("will you ever stop texting me?" is flagged, "you never stop texting me" is not) get
# it wrong either way. Recall matters more than precision here: a false flag costs a
# reviewer a glance, a missed revocation can cost a TCPA claim.

_CLAUSE_BREAK = re.compile(r"[^\w\s'\-\u2010-\u2015]+|\n")
"""Punctuation other than apostrophes and dashes ends a clause; so do symbols and emoji."""
_WORD = re.compile(r"[^\W_]+")

_PLEASE = re.compile(r"p+l+[eai]*[sz]+e*|plox")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_FILLER = _words(
    """
    now thanks thank you u thx thnx ty tks it already asap immediately ok okay k kk just again
    me all seriously right away forever permanently this these that texting texts text
    messages msgs sending but and so yes no sir maam hi hello hey omg lol god oh ugh
    svp merci por favor gracias
    """
)
"""Words that add no meaning around a keyword ("please" and its spellings match _PLEASE)."""

_STOP_VERBS = _words("stop quit cease end cancel")
_BETWEEN = _words("the your ur these those this that all my any with them me fucking freaking damn")
_ABOUT_MESSAGES = _words(
    """
    texting txting texts txts text txt messaging msging messages message msgs msg sending
    contacting spamming harassing bothering sms notifications alerts subscription marketing
    promos promotions ads getting receiving
    """
)
_SKIP_BEFORE_VERB = _words("please pls plz just ever you u to will kindly")
_NEGATIONS = _words(
    "dont never not non cant cannot wont didnt doesnt did why shouldnt wouldnt couldnt"
)
_SELF = _words("i ill id im we gonna going")

_M = r"(?:text|txt|message|msg|sms|contact|spam|bother)"
_PHRASES = (
    (re.compile(r"\b(?:unsubscribe|unsub)\b"), "asks to unsubscribe"),
    (re.compile(r"\bopt (?:me )?out\b|\boptout\b"), "asks to opt out"),
    (re.compile(r"\brevok(?:e|ing)\b"), "revokes consent"),
    (
        re.compile(r"\b(?:remove|delete|erase|lose) (?:me|my (?:phone )?number|this number)\b"),
        "asks to be removed",
    ),
    (re.compile(r"\btake (?:me|my (?:phone )?number|this number) off\b"), "asks to be removed"),
    (re.compile(r"\boff (?:of )?(?:your|ur|the|this|ya) (?:\w+ )?list\b"), "asks to be removed"),
    (
        re.compile(
            rf"\b(?:dont|do not|never) (?:ever )?{_M}\w*"
            r"(?: (?:me|us|this number|again|anymore|any more)\b|$)"
        ),
        "asks not to be texted",
    ),
    (
        re.compile(r"\bno more (?:texts?|txts?|messages?|msgs?|sms|texting|spam)\b"),
        "asks for no more texts",
    ),
    (re.compile(r"\b(?:leave|let) me alone\b"), "asks to be left alone"),
    (re.compile(r"\bwrong (?:number|person|phone)\b"), "wrong number: may never have consented"),
    (
        re.compile(
            r"\b(?:dont|do not|no longer) want(?: \w+){0,3} "
            r"(?:texts?|txts?|messages?|msgs?|sms|alerts|notifications|promotions|marketing)\b"
        ),
        "does not want the texts",
    ),
)


@functools.lru_cache(maxsize=64)
def _opt_out_phrases(keywords: Keywords) -> tuple[tuple[str, ...], ...]:
    """Opt-out keywords as word sequences, longest first (so "stop all" beats "stop")."""
    return tuple(sorted((tuple(key.split()) for key in keywords.opt_out), key=len, reverse=True))


def _keyword_clause(words: list[str], phrases: tuple[tuple[str, ...], ...]) -> str | None:
    """The first opt-out keyword of a clause made only of keywords and filler, else None."""
    found = None
    i = 0
    while i < len(words):
        phrase = next((p for p in phrases if tuple(words[i : i + len(p)]) == p), None)
        if phrase is not None:
            found = found or " ".join(phrase)
            i += len(phrase)
        elif words[i] in _FILLER or _PLEASE.fullmatch(words[i]):
            i += 1
        else:
            return None
    return found


def _stop_request(words: list[str]) -> str | None:
    """'stop texting', 'cancel my subscription', ... unless negated or about the writer."""
    for i, word in enumerate(words):
        if word not in _STOP_VERBS:
            continue
        j = i + 1
        while j < len(words) and j - i <= 2 and words[j] in _BETWEEN:
            j += 1
        if j >= len(words) or words[j] not in _ABOUT_MESSAGES:
            continue
        k = i - 1
        while k >= 0 and (words[k] in _SKIP_BEFORE_VERB or _PLEASE.fullmatch(words[k])):
            k -= 1
        before = words[k] if k >= 0 else ""
        if before in _NEGATIONS or before in _SELF:
            continue
        return f"{' '.join(words[i : j + 1])!r} reads as a request to stop"
    return None


def _revocation(folded: str, keywords: Keywords) -> str | None:
    """Why ``folded`` (a message after ``_fold``) reads like a revocation, or None."""
    text = _INNER_APOSTROPHE.sub("", folded)
    phrases = _opt_out_phrases(keywords)
    for clause in _CLAUSE_BREAK.split(text):
        words = _WORD.findall(clause)
        if not words:
            continue
        keyword = _keyword_clause(words, phrases) if phrases else None
        if keyword is not None:
            return f"opt-out keyword {_display(keyword)!r} with only filler words"
        reason = _stop_request(words)
        if reason is not None:
            return reason
        joined = " ".join(words)
        for pattern, why in _PHRASES:
            match = pattern.search(joined)
            if match:
                return f"{why} ({match.group(0).strip()!r})"
    return None
