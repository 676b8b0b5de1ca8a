"""The V* searcher, the default localizer: a best-first heatmap search over sub-images (SEAL, arXiv 2312.14135).

- `search`: the cue-agnostic core (one priority queue, SEAL's split rule and constants from `config`).
- `find_one` / `read_all`: the two strategies on that core (stop at the first confident object; read every
  line of text, looking closer only where the text map says so); `localizer`: the tool that picks one.
- the cues (`cue` is their protocol): `owlv2_cue`, `detector_cue`, `vlm_cue`, `context_cue` (when a heatmap
  is weak), `text_cue` with its PP-OCR pieces (`ppocr`, `ocr_runtime`, `det_int8`); `text_match` ranks read
  lines against a quoted target; `visualize` draws a search.
Part of `lookcloser.tools`: may import the foundations only (`lookcloser.core`, `lookcloser.imaging`).
"""
