import pytest

from lookcloser.core.parsing import parse_choice, parse_show


def test_strict_json_answer():
    parsed = parse_show('{"answer": "a red bus", "missing": []}')
    assert (parsed.answer, parsed.targets, parsed.parse_path) == ("a red bus", [], "json")


def test_strict_json_missing_targets_with_kinds():
    parsed = parse_show('{"answer": null, "missing": [{"name": "the wait board", "kind": "text"}, {"name": "mug"}]}')
    assert parsed.parse_path == "json"
    assert parsed.answer is None
    assert [(t.name, t.kind) for t in parsed.targets] == [("the wait board", "text"), ("mug", "object")]


def test_json_inside_fence_with_chatter():
    text = 'Sure! Here is my reply:\n```json\n{"answer": null, "missing": [{"name": "logo", "kind": "object"}]}\n```'
    parsed = parse_show(text)
    assert parsed.parse_path == "json_fence"
    assert [t.name for t in parsed.targets] == ["logo"]


def test_bare_object_inside_prose():
    parsed = parse_show('I think {"answer": "blue", "missing": []} is right')
    assert (parsed.parse_path, parsed.answer) == ("json_fence", "blue")


def test_seal_phrase():
    text = ("Sorry, I can not answer the question. Some visual information about the following objects is "
            "missing or unclear: the black framed board, the dog's collar.")
    parsed = parse_show(text)
    assert parsed.parse_path == "seal_phrase"
    assert [t.name for t in parsed.targets] == ["the black framed board", "the dog's collar"]
    assert all(t.kind == "object" for t in parsed.targets)


def test_plain_text_is_the_answer():
    parsed = parse_show("  The cup is green.  ")
    assert (parsed.parse_path, parsed.answer, parsed.targets) == ("text", "The cup is green.", [])


def test_duplicate_and_empty_targets_are_dropped():
    parsed = parse_show('{"answer": null, "missing": [{"name": "cup"}, {"name": " CUP "}, {"name": "  "}]}')
    assert [t.name for t in parsed.targets] == ["cup"]


def test_json_without_contract_keys_is_not_taken_as_contract():
    parsed = parse_show('{"foo": 1}')
    assert parsed.parse_path == "text"


def test_unknown_kind_maps_to_object_and_ocr_like_kinds_to_text():
    parsed = parse_show('{"answer": null, "missing": [{"name": "a", "kind": "thing"}, {"name": "b", "kind": "OCR"}]}')
    assert [t.kind for t in parsed.targets] == ["object", "text"]


@pytest.mark.parametrize(
    "reply, expected",
    [("(B)", 1), ("B", 1), ("B. blue", 1), ("The answer is (A) red", 0), ("Answer: C", 2), ("blue", 1),
     ("It is green.", 2), ("I cannot tell", None), ("", None)],
)
def test_parse_choice(reply, expected):
    assert parse_choice(reply, ["red", "blue", "green"]) == expected


TRUCK_CAR = ["a red truck", "a blue car"]


@pytest.mark.parametrize(
    "reply",
    ["A blue car.", "a blue car", "A blue car", "The answer is a blue car.", "The answer is A blue car",
     "(a blue car)", "It is a blue car.", "an image of a blue car"],
)
def test_leading_article_is_not_the_letter_a(reply):
    assert parse_choice(reply, TRUCK_CAR) == 1


@pytest.mark.parametrize(
    "reply, expected",
    [("A", 0), ("a", 0), ("(B)", 1), ("[B]", 1), ("B.", 1), ("B)", 1), ("A.", 0), ("A. a red truck", 0),
     ("A: a red truck", 0), ("Answer: B", 1), ("answer: a", 0), ("The answer is (B)", 1), ("The answer is A.", 0),
     ("B) a blue car", 1), ("A) a red truck", 0), ("Option A is correct.", 0), ("I think (B).", 1), ("**B**", 1),
     ('"B"', 1), ("B - a blue car", 1)],
)
def test_letter_answers(reply, expected):
    assert parse_choice(reply, TRUCK_CAR) == expected


def test_letter_wins_when_letter_and_option_text_disagree():
    """Documented rule: an explicit letter beats another option's text in the same reply."""
    assert parse_choice("B) a red truck", TRUCK_CAR) == 1
    assert parse_choice("The answer is (A), a blue car.", TRUCK_CAR) == 0


def test_letter_outside_the_options_is_ignored():
    assert parse_choice("E", TRUCK_CAR) is None
    assert parse_choice("(E) a blue car", TRUCK_CAR) == 1  # no usable letter: the text decides


def test_capital_i_is_a_word_not_option_i():
    options = [f"option {n}" for n in range(10)]  # letters A..J, so "I" is a real option letter
    assert parse_choice("I", options) == 8
    assert parse_choice("I think it is (C)", options) == 2
    assert parse_choice("I'm not sure", options) is None


def test_option_text_matching_uses_whole_words_and_prefers_the_longer_option():
    assert parse_choice("reddish", ["red", "blue"]) is None
    assert parse_choice("It's a blue car.", ["car", "blue car"]) == 1
    assert parse_choice("red and blue", ["red", "blue"]) is None
    assert parse_choice("Blue car", ["car", "blue car"]) == 1
    assert parse_choice("I cannot answer the question", TRUCK_CAR) is None
