# One command to set up and run the demo, one to set up and run the tests (see README).
# Torch is pinned exactly: an unpinned torch pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# `lookcloser serve`: the Postgres + Redis runtime for the stock LangGraph server and its CLI, without their
# dependency pins (langgraph-api==0.11.1, End of Life); their other dependencies are the [serve] extra
SERVER_PINS ?= langgraph-runtime-pg==0.11.1.post1 langhost==0.11.1.post1

.PHONY: demo test install system-deps chat-ui chat-ui-build bench serve clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	$(PY) -m pip install -q --no-deps $(SERVER_PINS)
	touch $@

install: $(VENV)/.installed

# Headless Chromium renders the HTML trace report in its test; Tesseract is the `tesseract` OCR
# expert; PostgreSQL backs the durable-thread test, which starts its own server, and with Redis the production
# server (`lookcloser serve`) and its tests (Debian packages; installed when root, else their tests are skipped
# with the reason).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium not installed (apt-get install chromium); its report test will be skipped"; fi; }
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  else echo "note: postgresql not installed (apt-get install postgresql); its durable-thread test will be skipped"; fi; }
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	  else echo "note: redis-server not installed (apt-get install redis-server); the production server tests will be skipped"; fi; }
	@command -v tesseract >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq tesseract-ocr >/dev/null; \
	  else echo "note: tesseract not installed (apt-get install tesseract-ocr); its tests will be skipped"; fi; }

# Agent Chat UI (clients/agent-chat-ui, a pinned copy of langchain-ai/agent-chat-ui) built for `next start`, and
# the browser driver of its test (tests/chat_ui): npm packages pinned by their lockfiles; the UI's own package
# manager, pnpm, at the version its package.json names, fetched from npm. Without npm the test is skipped.
UI := clients/agent-chat-ui
PNPM := npx --yes pnpm@10.5.1
UI_SOURCES := $(shell find $(UI)/src -type f 2>/dev/null) \
	$(addprefix $(UI)/,next.config.mjs postcss.config.mjs tailwind.config.js tsconfig.json components.json)

$(UI)/node_modules/.installed: $(UI)/package.json $(UI)/pnpm-lock.yaml
	cd $(UI) && $(PNPM) install --frozen-lockfile --reporter=append-only --config.confirm-modules-purge=false
	touch $@

$(UI)/.next/BUILD_ID: $(UI)/node_modules/.installed $(UI_SOURCES)
	cd $(UI) && NEXT_TELEMETRY_DISABLED=1 $(PNPM) build

tests/chat_ui/node_modules/.installed: tests/chat_ui/package.json tests/chat_ui/package-lock.json
	cd tests/chat_ui && npm ci --no-audit --no-fund
	touch $@

chat-ui-build: $(UI)/.next/BUILD_ID tests/chat_ui/node_modules/.installed

chat-ui:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory chat-ui-build; \
	else echo "note: node/npm not installed; the Agent Chat UI test will be skipped"; fi

demo: install
	$(PY) examples/demo.py

# The production server on this machine: PostgreSQL + Redis started for it, data in .lookcloser-serve
# (LOOKCLOSER_VLM / LOOKCLOSER_CONFIG: the operator's setup; DATABASE_URI / REDIS_URI: servers of your own).
serve: install system-deps
	$(VENV)/bin/lookcloser serve

test: install system-deps chat-ui
	$(PY) -m pytest -q -ra

bench: install
	$(PY) benchmarks/text_search.py
	$(PY) benchmarks/tracing_overhead.py

clean:
	rm -rf $(VENV) traces out .pytest_cache .lookcloser-serve $(UI)/node_modules $(UI)/.next tests/chat_ui/node_modules
