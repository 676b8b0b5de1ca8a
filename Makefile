# One command to set up and run the demo, one to set up and run the tests (see README).
# Torch is pinned exactly: an unpinned torch pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install system-deps bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Headless Chromium renders the HTML trace report in its test; Tesseract is the `tesseract` OCR
# expert; PostgreSQL backs the durable-thread test, which starts its own server (Debian packages;
# installed when root, else their tests are skipped with the reason).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not installed (apt-get install chromium); its report test will be skipped"; fi; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else echo "note: postgresql not installed (apt-get install postgresql); its durable-thread test will be skipped"; fi; }
	@command -v tesseract >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq tesseract-ocr >/dev/null; \
	  else echo "note: tesseract not installed (apt-get install tesseract-ocr); its tests will be skipped"; fi; }

demo: install
	$(PY) examples/demo.py

test: install system-deps
	$(PY) -m pytest -q -ra

bench: install
	$(PY) benchmarks/text_search.py
	$(PY) benchmarks/tracing_overhead.py

clean:
	rm -rf $(VENV) traces out .pytest_cache
