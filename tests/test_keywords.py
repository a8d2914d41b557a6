"""Keywords: the vendors' lists, forgiving matching, custom words, and the revocation flag."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optouts import ConfigurationError, Status
from optouts.keywords import Classification, Intent, Keywords, classify

# The vendor defaults and FCC per-se words, as compliance-and-vendors.md lists them.
VENDOR_LISTS = {
    "ringcentral": (
        ["STOP", "UNSUBSCRIBE", "QUIT", "CANCEL", "END"],
        ["START", "SUBSCRIBE", "RESUME", "CONTINUE", "UNSTOP"],
        [],
    ),
    "azure short codes": (
        ["STOP", "QUIT", "END", "REVOKE", "OPT OUT", "CANCEL", "UNSUBSCRIBE"],
        ["START"],
        ["HELP"],
    ),
    "twilio": (
        ["STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "REVOKE", "OPTOUT", "CANCEL"],
        ["START", "YES", "UNSTOP"],
        ["HELP", "INFO"],
    ),
    "aws (but TD)": (
        ["ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP", "UNSUBSCRIBE"],
        [],
        [],
    ),
    "telnyx": (
        ["STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"],
        ["START", "UNSTOP"],
        [],
    ),
    "canada": (["STOP", "ARRET"], [], ["HELP", "AIDE", "INFO"]),
    "fcc per se": (["STOP", "QUIT", "END", "REVOKE", "OPT OUT", "CANCEL", "UNSUBSCRIBE"], [], []),
}


@pytest.mark.parametrize("vendor", VENDOR_LISTS)
def test_every_vendor_default_is_covered(vendor: str) -> None:
    opt_out, opt_in, help_words = VENDOR_LISTS[vendor]
    for words, intent in ((opt_out, Intent.OPT_OUT), (opt_in, Intent.OPT_IN)):
        for word in words:
            assert classify(word).intent is intent, word
    for word in help_words:
        assert classify(word).intent is Intent.HELP, word


def test_an_exact_keyword_reports_itself_normalised() -> None:
    result = classify("  opt-out! ")
    assert result == Classification(Intent.OPT_OUT, "OPT OUT", False, "exact keyword")
    assert result.status is Status.OPTED_OUT
    assert classify("Start").status is Status.OPTED_IN
    assert classify("help").status is None
    assert classify("hello").status is None


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("stop", "STOP"),
        ("Stop", "STOP"),
        ("  STOP \n", "STOP"),
        ("STOP.", "STOP"),
        ("STOP!", "STOP"),
        ("stop!!!", "STOP"),
        ("¡Stop!", "STOP"),
        ("'stop'", "STOP"),
        ("\u201cStop\u201d", "STOP"),
        ("(stop)", "STOP"),
        ("STOP 🛑", "STOP"),
        ("\u00a0stop\u00a0", "STOP"),
        ("\uff33\uff34\uff2f\uff30", "STOP"),  # full-width letters
        ("st\u200bop", "STOP"),  # a zero-width space inside
        ("stop\u00a0 \tall", "STOP ALL"),
        ("Stop-All", "STOP ALL"),
        ("opt out", "OPT OUT"),
        ("Opt-Out", "OPT OUT"),
        ("OPT\u2013OUT", "OPT OUT"),  # en dash
        ("opt_out", "OPT OUT"),
        ("optout", "OPTOUT"),
        ("Arrêt", "ARRET"),
        ("ARRET", "ARRET"),
        ("unsubscribe.", "UNSUBSCRIBE"),
    ],
)
def test_case_space_and_punctuation_variants_of_opt_out(text: str, keyword: str) -> None:
    result = classify(text)
    assert result.intent is Intent.OPT_OUT
    assert result.keyword == keyword
    assert not result.likely_revocation


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("start", Intent.OPT_IN),
        ("UNSTOP!", Intent.OPT_IN),
        ("Yes.", Intent.OPT_IN),
        ("resume", Intent.OPT_IN),
        ("help?", Intent.HELP),
        ("Info", Intent.HELP),
        ("aide", Intent.HELP),
        ("Aidé", Intent.HELP),
    ],
)
def test_opt_in_and_help(text: str, intent: Intent) -> None:
    assert classify(text).intent is intent


@pytest.mark.parametrize(
    "text", ["", "   ", "!!!", "🛑", "hello", "stopp", "S T O P", "yes please"]
)
def test_everything_else_is_none(text: str) -> None:
    result = classify(text)
    assert result.intent is Intent.NONE
    assert result.keyword is None


def test_td_is_flagged_for_review_not_acted_on() -> None:
    result = classify("TD")
    assert result.intent is Intent.NONE
    assert result.likely_revocation
    assert "AWS" in str(result.reason)
    custom = Keywords.default().with_custom(opt_out=["td"])
    assert classify("td", custom) == Classification(Intent.OPT_OUT, "TD", False, "exact keyword")


# -- custom keywords -------------------------------------------------------------------------


def test_custom_keywords_are_added_case_insensitively() -> None:
    keywords = Keywords.default().with_custom(
        opt_out=["Baja", "no más"], opt_in=["alta"], help=["Ayuda"]
    )
    assert classify("BAJA", keywords).intent is Intent.OPT_OUT
    assert classify("No Mas!", keywords) == Classification(
        Intent.OPT_OUT, "NO MAS", False, "exact keyword"
    )
    assert classify("Alta", keywords).intent is Intent.OPT_IN
    assert classify("ayuda", keywords).intent is Intent.HELP
    assert classify("stop", keywords).intent is Intent.OPT_OUT  # defaults kept
    assert classify("baja") == Classification(Intent.NONE)  # the default set is unchanged


def test_a_single_string_is_one_keyword_not_its_letters() -> None:
    keywords = Keywords.default().with_custom(opt_out="BAJA")
    assert "baja" in keywords.opt_out
    assert "b" not in keywords.opt_out


def test_custom_opt_out_words_count_in_the_heuristic() -> None:
    keywords = Keywords.default().with_custom(opt_out=["baja"])
    assert classify("baja por favor", keywords).likely_revocation
    assert not classify("baja por favor").likely_revocation


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        ({"opt_in": ["STOP"]}, "'STOP' is in both opt_out and opt_in"),
        ({"help": ["opt-out"]}, "'OPT OUT' is in both opt_out and help"),
        ({"opt_out": ["yes"]}, "'YES' is in both opt_out and opt_in"),
        ({"opt_out": ["Hola"], "help": ["HOLA"]}, "'HOLA' is in both opt_out and help"),
    ],
)
def test_a_word_in_two_sets_is_a_configuration_error(
    custom: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Keywords.default().with_custom(**custom)


@pytest.mark.parametrize("word", ["", "  ", "?!", "🛑"])
def test_a_keyword_needs_letters_or_digits(word: str) -> None:
    with pytest.raises(ConfigurationError, match="no letters or digits"):
        Keywords.default().with_custom(opt_out=[word])


def test_a_keyword_must_be_a_string() -> None:
    with pytest.raises(ConfigurationError, match="not a string"):
        Keywords.default().with_custom(opt_out=[7])  # type: ignore[list-item]


def test_without_drops_words_from_any_set() -> None:
    keywords = Keywords.default().without("yes", "Info")
    assert classify("YES", keywords).intent is Intent.NONE
    assert classify("info", keywords).intent is Intent.NONE
    assert classify("help", keywords).intent is Intent.HELP
    # now free to be put elsewhere
    assert keywords.with_custom(help=["yes"]).intent_of("Yes!") is Intent.HELP


def test_keywords_built_directly_are_normalised_and_checked() -> None:
    keywords = Keywords(opt_out=["Opt-Out", "STOP"], opt_in=["start"])
    assert keywords.opt_out == frozenset({"opt out", "stop"})
    assert keywords.help == frozenset()
    assert keywords.intent_of("OPT OUT") is Intent.OPT_OUT
    with pytest.raises(ConfigurationError):
        Keywords(opt_out=["stop"], opt_in=["STOP."])


def test_default_is_shared_and_equal_to_a_fresh_build() -> None:
    assert Keywords.default() is Keywords.default()
    assert Keywords.default() == Keywords.default().with_custom()


# -- likely revocations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "please stop texting me",
        "Please stop!",
        "STOP please",
        "stop pls",
        "Stop it now!",
        "stop stop stop",
        "ok STOP, thanks",
        "Who is this? Stop.",
        "STOP\n\nSent from my iPhone",
        "unsubscribe me",
        "How do I unsubscribe?",
        "opt me out",
        "I revoke my consent",
        "don't text me again",
        "Do not contact me",
        "dont txt me",
        "remove me from this list",
        "Remove my number",
        "take me off your list",
        "Please take me off the mailing list",
        "no more texts",
        "leave me alone",
        "wrong number",
        "I don't want these messages anymore",
        "I want you to stop messaging me",
        "Can you stop sending me these?",
        "stop sending me stuff",
        "pls stop the texts",
        "quit texting me",
        "cancel my subscription",
        "i want to stop receiving these",
        "Stop\u2019s enough, stop texting",
    ],
)
def test_likely_revocations_are_flagged(text: str) -> None:
    result = classify(text)
    assert result.intent is Intent.NONE
    assert result.keyword is None
    assert result.likely_revocation, text
    assert result.reason


@pytest.mark.parametrize(
    "text",
    [
        "don't stop",
        "Don't stop!",
        "non-stop",
        "I love your non-stop texts",
        "stopped by the store",
        "bus stop",
        "meet me at the bus stop please",
        "can you stop by at 5?",
        "I'll stop by later",
        "don't stop texting me, I love these deals",
        "why did you stop sending coupons?",
        "I'll stop texting you now",
        "cancel my appointment",
        "Please cancel my order",
        "quit my job today",
        "The end",
        "the end of the movie was great",
        "I want to remove the item from my cart",
        "Can you text me the address?",
        "don't text while driving",
        "take me to the airport",
        "who is this?",
        "yes please",
        "START please",
    ],
)
def test_ordinary_messages_are_not_flagged(text: str) -> None:
    assert classify(text) == Classification(Intent.NONE), text


def test_the_reason_names_the_rule() -> None:
    assert classify("STOP please").reason == "opt-out keyword 'STOP' with only filler words"
    reason = classify("please quit spamming my phone").reason
    assert reason == "'quit spamming' reads as a request to stop"
    assert classify("remove me from this list").reason == "asks to be removed ('remove me')"


def test_classify_wants_a_string() -> None:
    with pytest.raises(TypeError, match="str"):
        classify(b"STOP")  # type: ignore[arg-type]


# -- invariants ------------------------------------------------------------------------------

ALL_KEYWORDS = sorted(
    {
        *VENDOR_LISTS["telnyx"][0],
        *VENDOR_LISTS["aws (but TD)"][0],
        *VENDOR_LISTS["azure short codes"][0],
        "START",
        "UNSTOP",
        "SUBSCRIBE",
        "RESUME",
        "CONTINUE",
        "YES",
        "HELP",
        "INFO",
        "AIDE",
    }
)
SPACES = st.text(alphabet=" \t\n\r\u00a0\u2003\u3000", max_size=3)
LEADING = st.text(alphabet="¡¿'\"\u201c(*-", max_size=2)
TRAILING = st.text(alphabet=".!?…'\"\u201d)*:", max_size=3)


@st.composite
def decorated(draw: st.DrawFn) -> tuple[str, str]:
    word = draw(st.sampled_from(ALL_KEYWORDS))
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    cased = "".join(ch.lower() if flip else ch for ch, flip in zip(word, flips, strict=True))
    text = draw(SPACES) + draw(LEADING) + cased + draw(TRAILING) + draw(SPACES)
    return word, text


@given(decorated())
def test_keywords_survive_case_space_and_punctuation(case: tuple[str, str]) -> None:
    word, text = case
    assert classify(text) == classify(word)
    assert classify(text).intent is not Intent.NONE


@given(st.text())
def test_never_raises_and_stays_consistent(text: str) -> None:
    result = classify(text)
    assert (result.intent is Intent.NONE) == (result.keyword is None)
    if result.likely_revocation:
        assert result.intent is Intent.NONE
        assert result.reason


@given(st.text(), SPACES, SPACES)
def test_surrounding_whitespace_never_matters(text: str, before: str, after: str) -> None:
    assert classify(before + text + after) == classify(text)


@given(st.text(), st.sampled_from([".", "!", "!!!", "?", "…", " :)"]))
def test_trailing_punctuation_never_matters(text: str, tail: str) -> None:
    assert classify(text + tail) == classify(text)


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)))
def test_case_never_matters(text: str) -> None:
    assert classify(text.upper()) == classify(text) == classify(text.lower())
