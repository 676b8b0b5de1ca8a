import pytest

from lookcloser.parsing import parse_choice, parse_show


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
