from PIL import Image

from lookcloser import Box, Finding, Target, VisualWorkingMemory


def test_render_lines_and_crop_order():
    image = Image.new("RGB", (100, 100))
    cup = Finding(target=Target(name="cup"), status="found", box=Box(x1=1, y1=2, x2=30, y2=40), score=0.4,
                  crop=Image.new("RGB", (29, 38)), tool="t")
    sign = Finding(target=Target(name="sign", kind="text"), status="found", box=Box(x1=50, y1=50, x2=90, y2=60),
                   score=0.9, text='say "hi"', crop=Image.new("RGB", (40, 10)), tool="ocr")
    gone = Finding(target=Target(name="dog"), status="not_found", tool="t")
    broken = Finding(target=Target(name="cat"), status="failed", tool="t", error="boom")
    text, crops = VisualWorkingMemory(image, "q", [cup, sign, gone, broken]).render()
    # most confident first, small crops enlarged (aspect kept) so the VLM can read them
    assert [c.size for c in crops] == [(224, 56), (171, 224)]
    assert "cup at [1, 2, 30, 40] (shown enlarged as image 3), confidence 0.40" in text
    assert "text read from the image near \"sign\" at [50, 50, 90, 60] (shown enlarged as image 2): \"say 'hi'\"" in text
    assert "dog: not found" in text and "cat: search failed (t: boom)" in text


def test_empty_memory_and_crop_limit():
    image = Image.new("RGB", (10, 10))
    assert VisualWorkingMemory(image, "q", []).render() == ("No additional visual information was found.", [])
    many = [Finding(target=Target(name=f"o{i}"), status="found", box=Box(x1=0, y1=0, x2=1, y2=1), score=i / 10,
                    crop=Image.new("RGB", (1, 1)), tool="t") for i in range(5)]
    _, crops = VisualWorkingMemory(image, "q", many, max_crops=2).render()
    assert len(crops) == 2
